// RUN: ds-run %s --launch 'k()'
// A module that does not verify: the error is the module's, at its line.
"ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 8, 8>} : () -> ()

func.func @k() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %v = "ds.load"(%c0) {field = @x} : (index) -> f32
  return
}
