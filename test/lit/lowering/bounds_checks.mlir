// RUN: ds-opt %s --convert-ds-to-scf=check-bounds=1
// With check-bounds=1 every index is compared with its extent; an access out
// of bounds is skipped and records its check number and the index.

"ds.field"() {sym_name = "g", element_type = f32, shape = array<i64: 8, 4>} : () -> ()
func.func @read(%i: index, %j: index) attributes {ds.kernel} {
  %v = "ds.load"(%i, %j) {field = @g} : (index, index) -> f32
  "ds.store"(%v, %j, %i) {field = @g} : (f32, index, index) -> ()
  return
}
