// RUN: ds-opt %s --split-input-file --convert-ds-to-scf
// convert-ds-to-scf, one case per construct.

// Loads and stores become memref.load and memref.store on appended (noalias) field arguments.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 16>} : () -> ()
func.func @load_store(%i: index, %v: f32) attributes {ds.kernel} {
  %x = "ds.load"(%i) {field = @x} : (index) -> f32
  %y = arith.addf %x, %v : f32
  "ds.store"(%y, %i) {field = @x} : (f32, index) -> ()
  return
}

// -----

// Atomic add, sub, min and max become memref.atomic_rmw, on f32 and on a 2-D i32 field.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 16>} : () -> ()
"ds.field"() {sym_name = "c", element_type = i32, shape = array<i64: 4, 4>} : () -> ()
func.func @atomics(%i: index, %j: index, %v: f32) attributes {ds.kernel} {
  "ds.atomic_add"(%v, %j) {field = @x} : (f32, index) -> ()
  "ds.atomic_sub"(%v, %j) {field = @x} : (f32, index) -> ()
  "ds.atomic_min"(%v, %j) {field = @x} : (f32, index) -> ()
  "ds.atomic_max"(%v, %j) {field = @x} : (f32, index) -> ()
  %one = arith.constant 1 : i32
  "ds.atomic_sub"(%one, %i, %j) {field = @c} : (i32, index, index) -> ()
  return
}

// -----

// ds.assert writes its number to the status buffer when its condition fails.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 16>} : () -> ()
func.func @assert(%i: index, %v: f32) attributes {ds.kernel} {
  %x = "ds.load"(%i) {field = @x} : (index) -> f32
  %ok = arith.cmpf oge, %v, %x : f32
  "ds.assert"(%ok) {message = "x grows"} : (i1) -> ()
  return
}

// -----

// A ds.parallel_for left in a function runs as scf.for.
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
