// A serial loop carrying a value (the autodiff stack runs per GPU thread).
"ds.field"() {sym_name = "a", element_type = f32, shape = array<i64: 2048>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f32, shape = array<i64: 2048>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f32, shape = array<i64: 2048>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f32, shape = array<i64: 2048>} : () -> ()
func.func @k() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %n = arith.constant 2048 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %a = "ds.load"(%i) {field = @a} : (index) -> f32
    %c0b = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c8 = arith.constant 8 : index
    %m = arith.remui %i, %c8 : index
    %k = arith.constant 0.9 : f32
    %r = scf.for %j = %c0b to %m step %c1 iter_args(%x = %a) -> (f32) {
      %y = arith.mulf %x, %k : f32
      %s = math.sin %y : f32
      %t = arith.addf %y, %s : f32
      scf.yield %t : f32
    }
    "ds.store"(%r, %i) {field = @out} : (f32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
