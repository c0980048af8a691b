// Scatter with atomics under contention, and a gather.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 8192>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f32, shape = array<i64: 8192>} : () -> ()
"ds.field"() {sym_name = "bins", element_type = f32, shape = array<i64: 16>, grad = @bins_grad} : () -> ()
"ds.field"() {sym_name = "bins_grad", element_type = f32, shape = array<i64: 16>} : () -> ()
"ds.field"() {sym_name = "count", element_type = i32, shape = array<i64: 16>} : () -> ()
func.func @k() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %n = arith.constant 8192 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %c16 = arith.constant 16 : index
    %c7 = arith.constant 7 : index
    %b = arith.remui %i, %c16 : index
    %i7 = arith.muli %i, %c7 : index
    %j = arith.remui %i7, %n : index
    %x = "ds.load"(%i) {field = @x} : (index) -> f32
    %xj = "ds.load"(%j) {field = @x} : (index) -> f32
    %p = arith.mulf %x, %xj : f32
    "ds.atomic_add"(%p, %b) {field = @bins} : (f32, index) -> ()
    %one = arith.constant 1 : i32
    "ds.atomic_add"(%one, %b) {field = @count} : (i32, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
