// RUN: ds-opt %s --split-input-file --convert-ds-to-scf
// Field accesses become memref ops on appended (noalias) arguments; atomics
// become memref.atomic_rmw; a ds loop left in a function runs as scf.for;
// ds.assert writes its number to the status buffer when it fails.

"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 16>} : () -> ()
"ds.field"() {sym_name = "c", element_type = i32, shape = array<i64: 4, 4>} : () -> ()
func.func @accesses(%i: index, %j: index, %v: f32) attributes {ds.kernel} {
  %x = "ds.load"(%i) {field = @x} : (index) -> f32
  %y = arith.addf %x, %v : f32
  "ds.store"(%y, %i) {field = @x} : (f32, index) -> ()
  "ds.atomic_add"(%v, %j) {field = @x} : (f32, index) -> ()
  "ds.atomic_sub"(%v, %j) {field = @x} : (f32, index) -> ()
  "ds.atomic_min"(%v, %j) {field = @x} : (f32, index) -> ()
  "ds.atomic_max"(%v, %j) {field = @x} : (f32, index) -> ()
  %one = arith.constant 1 : i32
  "ds.atomic_sub"(%one, %i, %j) {field = @c} : (i32, index, index) -> ()
  %ok = arith.cmpf oge, %y, %x : f32
  "ds.assert"(%ok) {message = "x grows"} : (i1) -> ()
  return
}

// -----

"ds.field"() {sym_name = "x", element_type = f64, shape = array<i64: 8>} : () -> ()
func.func @serial_loop(%n: index) attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %v = "ds.load"(%i) {field = @x} : (index) -> f64
    %w = arith.mulf %v, %v : f64
    "ds.store"(%w, %i) {field = @x} : (f64, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
