// Branches: if/else with results, nested, and an if guarding a store.
"ds.field"() {sym_name = "a", element_type = f32, shape = array<i64: 1024>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f32, shape = array<i64: 1024>} : () -> ()
"ds.field"() {sym_name = "b", element_type = f32, shape = array<i64: 1024>, grad = @b_grad} : () -> ()
"ds.field"() {sym_name = "b_grad", element_type = f32, shape = array<i64: 1024>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f32, shape = array<i64: 1024>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f32, shape = array<i64: 1024>} : () -> ()
func.func @k() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %n = arith.constant 1024 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %a = "ds.load"(%i) {field = @a} : (index) -> f32
    %b = "ds.load"(%i) {field = @b} : (index) -> f32
    %z = arith.constant 0.0 : f32
    %p = arith.cmpf ogt, %a, %z : f32
    %q = arith.cmpf ogt, %b, %z : f32
    %r = scf.if %p -> (f32) {
      %inner = scf.if %q -> (f32) {
        %x = arith.mulf %a, %b : f32
        scf.yield %x : f32
      } else {
        %x = math.cos %b : f32
        scf.yield %x : f32
      }
      scf.yield %inner : f32
    } else {
      %x = arith.mulf %b, %b : f32
      scf.yield %x : f32
    }
    scf.if %q {
      "ds.store"(%r, %i) {field = @out} : (f32, index) -> ()
    }
    gpu.yield
  }) : (index, index) -> ()
  return
}
