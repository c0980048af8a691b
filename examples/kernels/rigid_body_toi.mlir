// The paper's Fig. 8 ball: elastic bounce off the ground y = 0, no gravity,
// dt = 0.002, with a naive integrator and with time of impact (TOI).
"ds.field"() {sym_name = "y", element_type = f64, shape = array<i64: 205>, grad = @y_grad} : () -> ()
"ds.field"() {sym_name = "y_grad", element_type = f64, shape = array<i64: 205>} : () -> ()
"ds.field"() {sym_name = "vy", element_type = f64, shape = array<i64: 205>, grad = @vy_grad} : () -> ()
"ds.field"() {sym_name = "vy_grad", element_type = f64, shape = array<i64: 205>} : () -> ()

// Collision detected at multiples of dt; the whole step uses the new velocity.
func.func @advance_naive(%t: index) attributes {ds.kernel} {
  %c1 = arith.constant 1 : index
  %tp = arith.subi %t, %c1 : index
  %y = "ds.load"(%tp) {field = @y} : (index) -> f64
  %v = "ds.load"(%tp) {field = @vy} : (index) -> f64
  %dt = arith.constant 0.002 : f64
  %z = arith.constant 0.0 : f64
  %step = arith.mulf %dt, %v : f64
  %ahead = arith.addf %y, %step : f64
  %below = arith.cmpf olt, %ahead, %z : f64
  %falling = arith.cmpf olt, %v, %z : f64
  %hit = arith.andi %below, %falling : i1
  %rv = arith.negf %v : f64
  %nv = arith.select %hit, %rv, %v : f64
  %move = arith.mulf %dt, %nv : f64
  %ny = arith.addf %y, %move : f64
  "ds.store"(%ny, %t) {field = @y} : (f64, index) -> ()
  "ds.store"(%nv, %t) {field = @vy} : (f64, index) -> ()
  return
}

// The step is split at the time of impact toi = -y / v.
func.func @advance_toi(%t: index) attributes {ds.kernel} {
  %c1 = arith.constant 1 : index
  %tp = arith.subi %t, %c1 : index
  %y = "ds.load"(%tp) {field = @y} : (index) -> f64
  %v = "ds.load"(%tp) {field = @vy} : (index) -> f64
  %dt = arith.constant 0.002 : f64
  %z = arith.constant 0.0 : f64
  %step = arith.mulf %dt, %v : f64
  %ahead = arith.addf %y, %step : f64
  %below = arith.cmpf olt, %ahead, %z : f64
  %falling = arith.cmpf olt, %v, %z : f64
  %hit = arith.andi %below, %falling : i1
  %ny, %nv = scf.if %hit -> (f64, f64) {
    %ny0 = arith.negf %y : f64
    %toi = arith.divf %ny0, %v : f64
    %rv = arith.negf %v : f64
    %before = arith.mulf %toi, %v : f64
    %rest = arith.subf %dt, %toi : f64
    %after = arith.mulf %rest, %rv : f64
    %y1 = arith.addf %y, %before : f64
    %y2 = arith.addf %y1, %after : f64
    scf.yield %y2, %rv : f64, f64
  } else {
    scf.yield %ahead, %v : f64, f64
  }
  "ds.store"(%ny, %t) {field = @y} : (f64, index) -> ()
  "ds.store"(%nv, %t) {field = @vy} : (f64, index) -> ()
  return
}
