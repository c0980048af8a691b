// Two parallel loops, a struct-for and top-level serial code in one kernel.
"ds.field"() {sym_name = "g", element_type = f32, shape = array<i64: 32, 16>, grad = @g_grad} : () -> ()
"ds.field"() {sym_name = "g_grad", element_type = f32, shape = array<i64: 32, 16>} : () -> ()
"ds.field"() {sym_name = "t", element_type = f32, shape = array<i64: 32, 16>, grad = @t_grad} : () -> ()
"ds.field"() {sym_name = "t_grad", element_type = f32, shape = array<i64: 32, 16>} : () -> ()
"ds.field"() {sym_name = "loss", element_type = f32, shape = array<i64>, grad = @loss_grad} : () -> ()
"ds.field"() {sym_name = "loss_grad", element_type = f32, shape = array<i64>} : () -> ()
func.func @k() attributes {ds.kernel} {
  "ds.struct_for"() ({
  ^bb0(%i: index, %j: index):
    %v = "ds.load"(%i, %j) {field = @g} : (index, index) -> f32
    %e = math.exp %v : f32
    "ds.store"(%e, %i, %j) {field = @t} : (f32, index, index) -> ()
    gpu.yield
  }) {field = @g} : () -> ()
  %c0 = arith.constant 0 : index
  %c32 = arith.constant 32 : index
  "ds.parallel_for"(%c0, %c32) ({
  ^bb0(%i: index):
    %c0b = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c16 = arith.constant 16 : index
    scf.for %j = %c0b to %c16 step %c1 {
      %t = "ds.load"(%i, %j) {field = @t} : (index, index) -> f32
      %h = arith.constant 0.5 : f32
      %th = arith.mulf %t, %h : f32
      "ds.atomic_add"(%th) {field = @loss} : (f32) -> ()
    }
    gpu.yield
  }) : (index, index) -> ()
  %g0 = "ds.load"(%c0, %c0) {field = @g} : (index, index) -> f32
  %sq = arith.mulf %g0, %g0 : f32
  "ds.atomic_add"(%sq) {field = @loss} : (f32) -> ()
  return
}
