// A 2-D five-point stencil with a serial inner loop.
"ds.field"() {sym_name = "u", element_type = f32, shape = array<i64: 64, 48>, grad = @u_grad} : () -> ()
"ds.field"() {sym_name = "u_grad", element_type = f32, shape = array<i64: 64, 48>} : () -> ()
"ds.field"() {sym_name = "v", element_type = f32, shape = array<i64: 64, 48>, grad = @v_grad} : () -> ()
"ds.field"() {sym_name = "v_grad", element_type = f32, shape = array<i64: 64, 48>} : () -> ()
func.func @k() attributes {ds.kernel} {
  %c1 = arith.constant 1 : index
  %hm = arith.constant 63 : index
  "ds.parallel_for"(%c1, %hm) ({
  ^bb0(%i: index):
    %c1b = arith.constant 1 : index
    %wm = arith.constant 47 : index
    scf.for %j = %c1b to %wm step %c1b {
      %im = arith.subi %i, %c1b : index
      %ip = arith.addi %i, %c1b : index
      %jm = arith.subi %j, %c1b : index
      %jp = arith.addi %j, %c1b : index
      %a = "ds.load"(%im, %j) {field = @u} : (index, index) -> f32
      %b = "ds.load"(%ip, %j) {field = @u} : (index, index) -> f32
      %c = "ds.load"(%i, %jm) {field = @u} : (index, index) -> f32
      %d = "ds.load"(%i, %jp) {field = @u} : (index, index) -> f32
      %e = "ds.load"(%i, %j) {field = @u} : (index, index) -> f32
      %s1 = arith.addf %a, %b : f32
      %s2 = arith.addf %c, %d : f32
      %s3 = arith.addf %s1, %s2 : f32
      %four = arith.constant 4.0 : f32
      %e4 = arith.mulf %four, %e : f32
      %lap = arith.subf %s3, %e4 : f32
      "ds.store"(%lap, %i, %j) {field = @v} : (f32, index, index) -> ()
    }
    gpu.yield
  }) : (index, index) -> ()
  return
}
