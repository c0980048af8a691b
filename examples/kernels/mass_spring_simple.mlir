// The paper's sec. 2.2 mass-spring triangle (SIMULATORS.md, mass_spring_simple):
// 3 masses, 3 springs, state per time step in [t, i, axis] fields.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 1024, 3, 2>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f32, shape = array<i64: 1024, 3, 2>} : () -> ()
"ds.field"() {sym_name = "v", element_type = f32, shape = array<i64: 1024, 3, 2>, grad = @v_grad} : () -> ()
"ds.field"() {sym_name = "v_grad", element_type = f32, shape = array<i64: 1024, 3, 2>} : () -> ()
"ds.field"() {sym_name = "force", element_type = f32, shape = array<i64: 1024, 3, 2>, grad = @force_grad} : () -> ()
"ds.field"() {sym_name = "force_grad", element_type = f32, shape = array<i64: 1024, 3, 2>} : () -> ()
"ds.field"() {sym_name = "spring_length", element_type = f32, shape = array<i64: 3>, grad = @spring_length_grad} : () -> ()
"ds.field"() {sym_name = "spring_length_grad", element_type = f32, shape = array<i64: 3>} : () -> ()
"ds.field"() {sym_name = "spring_a", element_type = i32, shape = array<i64: 3>} : () -> ()
"ds.field"() {sym_name = "spring_b", element_type = i32, shape = array<i64: 3>} : () -> ()
"ds.field"() {sym_name = "loss", element_type = f32, shape = array<i64>, grad = @loss_grad} : () -> ()
"ds.field"() {sym_name = "loss_grad", element_type = f32, shape = array<i64>} : () -> ()

// Hooke's law per spring, scattered into force[t] with atomics.
func.func @apply_spring_force(%t: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c3 = arith.constant 3 : index
  "ds.parallel_for"(%c0, %c3) ({
  ^bb0(%s: index):
    %c0b = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %tp = arith.subi %t, %c1 : index
    %ai = "ds.load"(%s) {field = @spring_a} : (index) -> i32
    %bi = "ds.load"(%s) {field = @spring_b} : (index) -> i32
    %a = arith.index_cast %ai : i32 to index
    %b = arith.index_cast %bi : i32 to index
    %xax = "ds.load"(%tp, %a, %c0b) {field = @x} : (index, index, index) -> f32
    %xay = "ds.load"(%tp, %a, %c1) {field = @x} : (index, index, index) -> f32
    %xbx = "ds.load"(%tp, %b, %c0b) {field = @x} : (index, index, index) -> f32
    %xby = "ds.load"(%tp, %b, %c1) {field = @x} : (index, index, index) -> f32
    %dx = arith.subf %xax, %xbx : f32
    %dy = arith.subf %xay, %xby : f32
    %dx2 = arith.mulf %dx, %dx : f32
    %dy2 = arith.mulf %dy, %dy : f32
    %d2 = arith.addf %dx2, %dy2 : f32
    %norm = math.sqrt %d2 : f32
    %eps = arith.constant 1.0e-4 : f32
    %len = arith.addf %norm, %eps : f32
    %rest = "ds.load"(%s) {field = @spring_length} : (index) -> f32
    %stretch = arith.subf %len, %rest : f32
    %k = arith.constant 10.0 : f32
    %ks = arith.mulf %stretch, %k : f32
    %scale = arith.divf %ks, %len : f32
    %fx = arith.mulf %scale, %dx : f32
    %fy = arith.mulf %scale, %dy : f32
    "ds.atomic_sub"(%fx, %t, %a, %c0b) {field = @force} : (f32, index, index, index) -> ()
    "ds.atomic_sub"(%fy, %t, %a, %c1) {field = @force} : (f32, index, index, index) -> ()
    "ds.atomic_add"(%fx, %t, %b, %c0b) {field = @force} : (f32, index, index, index) -> ()
    "ds.atomic_add"(%fy, %t, %b, %c1) {field = @force} : (f32, index, index, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

// Symplectic Euler with damping; a wall at x = 0.4 with friction projection.
func.func @time_integrate(%t: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c3 = arith.constant 3 : index
  "ds.parallel_for"(%c0, %c3) ({
  ^bb0(%i: index):
    %c0b = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %tp = arith.subi %t, %c1 : index
    %vx0 = "ds.load"(%tp, %i, %c0b) {field = @v} : (index, index, index) -> f32
    %vy0 = "ds.load"(%tp, %i, %c1) {field = @v} : (index, index, index) -> f32
    %fx = "ds.load"(%t, %i, %c0b) {field = @force} : (index, index, index) -> f32
    %fy = "ds.load"(%t, %i, %c1) {field = @force} : (index, index, index) -> f32
    %x0 = "ds.load"(%tp, %i, %c0b) {field = @x} : (index, index, index) -> f32
    %y0 = "ds.load"(%tp, %i, %c1) {field = @x} : (index, index, index) -> f32
    // exp(-dt * damping) = exp(-0.001 * 20); dt / mass = 0.001.
    %s = arith.constant 0.98019867 : f32
    %dt = arith.constant 0.001 : f32
    %svx = arith.mulf %s, %vx0 : f32
    %svy = arith.mulf %s, %vy0 : f32
    %dfx = arith.mulf %dt, %fx : f32
    %dfy = arith.mulf %dt, %fy : f32
    %vx = arith.addf %svx, %dfx : f32
    %vy = arith.addf %svy, %dfy : f32
    %dxx = arith.mulf %dt, %vx : f32
    %dxy = arith.mulf %dt, %vy : f32
    %nx = arith.addf %x0, %dxx : f32
    %ny = arith.addf %y0, %dxy : f32
    %wall = arith.constant 0.4 : f32
    %z = arith.constant 0.0 : f32
    %hit = arith.cmpf ogt, %nx, %wall : f32
    %moving = arith.cmpf ogt, %vx, %z : f32
    %both = arith.andi %hit, %moving : i1
    %ovx, %ovy = scf.if %both -> (f32, f32) {
      %friction = arith.constant 0.01 : f32
      %limit = arith.mulf %friction, %vx : f32
      %avy = math.absf %vy : f32
      %shrink = arith.minimumf %avy, %limit : f32
      %up = arith.cmpf ogt, %vy, %z : f32
      %down = arith.negf %shrink : f32
      %delta = arith.select %up, %down, %shrink : f32
      %pvy = arith.addf %vy, %delta : f32
      scf.yield %z, %pvy : f32, f32
    } else {
      scf.yield %vx, %vy : f32, f32
    }
    "ds.store"(%ovx, %t, %i, %c0b) {field = @v} : (f32, index, index, index) -> ()
    "ds.store"(%ovy, %t, %i, %c1) {field = @v} : (f32, index, index, index) -> ()
    "ds.store"(%nx, %t, %i, %c0b) {field = @x} : (f32, index, index, index) -> ()
    "ds.store"(%ny, %t, %i, %c1) {field = @x} : (f32, index, index, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

// loss = (|triangle area| - 0.1)^2 at step t.
func.func @compute_loss(%t: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %x0 = "ds.load"(%t, %c0, %c0) {field = @x} : (index, index, index) -> f32
  %y0 = "ds.load"(%t, %c0, %c1) {field = @x} : (index, index, index) -> f32
  %x1 = "ds.load"(%t, %c1, %c0) {field = @x} : (index, index, index) -> f32
  %y1 = "ds.load"(%t, %c1, %c1) {field = @x} : (index, index, index) -> f32
  %x2 = "ds.load"(%t, %c2, %c0) {field = @x} : (index, index, index) -> f32
  %y2 = "ds.load"(%t, %c2, %c1) {field = @x} : (index, index, index) -> f32
  %ax = arith.subf %x0, %x1 : f32
  %ay = arith.subf %y0, %y1 : f32
  %bx = arith.subf %x0, %x2 : f32
  %by = arith.subf %y0, %y2 : f32
  %p = arith.mulf %ax, %by : f32
  %q = arith.mulf %ay, %bx : f32
  %cross = arith.subf %p, %q : f32
  %half = arith.constant 0.5 : f32
  %signed = arith.mulf %half, %cross : f32
  %area = math.absf %signed : f32
  %target = arith.constant 0.1 : f32
  %d = arith.subf %area, %target : f32
  %l = arith.mulf %d, %d : f32
  "ds.store"(%l) {field = @loss} : (f32) -> ()
  return
}
