// RUN: ds-opt %s --ds-verify | ds-opt
// Every ds op, printed and parsed back. IRDL ops print in generic form.

"ds.dense"() {sym_name = "grid", shape = array<i64: 8, 8>} : () -> ()
"ds.pointer"() {sym_name = "blocks", shape = array<i64: 4>} : () -> ()
"ds.bitmasked"() {sym_name = "mask", shape = array<i64: 4>, parent = @blocks} : () -> ()
"ds.dynamic"() {sym_name = "list", shape = array<i64: 64>} : () -> ()
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 16>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f32, shape = array<i64: 16>} : () -> ()
"ds.field"() {sym_name = "m", element_type = f64, shape = array<i64: 8, 8>, layout = @grid} : () -> ()
"ds.field"() {sym_name = "count", element_type = i32, shape = array<i64: 4>} : () -> ()
"ds.field"() {sym_name = "loss", element_type = f32, shape = array<i64>} : () -> ()
"ds.field"() {sym_name = "s", element_type = f32, shape = array<i64: 16>, layout = @mask} : () -> ()
"ds.dense"() {sym_name = "heads", shape = array<i64: 4, 1>} : () -> ()
"ds.dynamic"() {sym_name = "items", shape = array<i64: 1, 8>, parent = @heads} : () -> ()
"ds.field"() {sym_name = "l", element_type = f32, shape = array<i64: 4, 8>, layout = @items} : () -> ()

func.func @all_ops(%n: index, %scale: f32) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %v = "ds.load"(%i) {field = @x} : (index) -> f32
    %w = arith.mulf %v, %scale : f32
    "ds.store"(%w, %i) {field = @x} : (f32, index) -> ()
    "ds.atomic_add"(%w) {field = @loss} : (f32) -> ()
    "ds.atomic_sub"(%w) {field = @loss} : (f32) -> ()
    "ds.atomic_min"(%w) {field = @loss} : (f32) -> ()
    "ds.atomic_max"(%w) {field = @loss} : (f32) -> ()
    %one = arith.constant 1 : i32
    %c3 = arith.constant 3 : index
    %b = arith.remui %i, %c3 : index
    "ds.atomic_add"(%one, %b) {field = @count} : (i32, index) -> ()
    %pos = arith.cmpf oge, %v, %w : f32
    "ds.assert"(%pos) {message = "x must not grow"} : (i1) -> ()
    "ds.activate"(%i) {field = @s} : (index) -> ()
    %act = "ds.is_active"(%i) {field = @s, node = @blocks} : (index) -> i1
    "ds.deactivate"(%i) {field = @s, node = @mask} : (index) -> ()
    %z = arith.constant 0 : index
    %at = "ds.append"(%w, %b, %z) {field = @l} : (f32, index, index) -> i32
    %len = "ds.length"(%b, %z) {field = @l} : (index, index) -> i32
    gpu.yield
  }) : (index, index) -> ()
  "ds.struct_for"() ({
  ^bb0(%i: index, %j: index):
    %m = "ds.load"(%i, %j) {field = @m} : (index, index) -> f64
    %m2 = arith.addf %m, %m : f64
    "ds.store"(%m2, %i, %j) {field = @m} : (f64, index, index) -> ()
    gpu.yield
  }) {field = @m} : () -> ()
  return
}
