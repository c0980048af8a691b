// The ds dialect, defined with IRDL and loaded at run time by `ds_dialects::register`.
// IRDL checks operand and result types, attribute kinds and region shapes; the
// semantic rules (field symbols exist, index counts match ranks, ...) live in the
// ds-verify pass. Each op's documentation is in `docs/ds-dialect.md`.
module {
irdl.dialect @ds {
  // ---- Data declarations (module level) ------------------------------------
  irdl.operation @field {
    %name = irdl.base "#builtin.string"
    %ty = irdl.base "#builtin.type"
    %shape = irdl.base "#builtin.dense_array"
    irdl.attributes { "sym_name" = %name, "element_type" = %ty, "shape" = %shape }
  }
  irdl.operation @dense {
    %name = irdl.base "#builtin.string"
    %shape = irdl.base "#builtin.dense_array"
    irdl.attributes { "sym_name" = %name, "shape" = %shape }
  }
  irdl.operation @pointer {
    %name = irdl.base "#builtin.string"
    %shape = irdl.base "#builtin.dense_array"
    irdl.attributes { "sym_name" = %name, "shape" = %shape }
  }
  irdl.operation @bitmasked {
    %name = irdl.base "#builtin.string"
    %shape = irdl.base "#builtin.dense_array"
    irdl.attributes { "sym_name" = %name, "shape" = %shape }
  }
  irdl.operation @dynamic {
    %name = irdl.base "#builtin.string"
    %shape = irdl.base "#builtin.dense_array"
    irdl.attributes { "sym_name" = %name, "shape" = %shape }
  }

  // ---- Loops (kernel bodies) ------------------------------------------------
  irdl.operation @parallel_for {
    %index = irdl.is index
    %body = irdl.region(%index)
    irdl.operands(lower: %index, upper: %index)
    irdl.regions(body: %body)
  }
  irdl.operation @struct_for {
    %field = irdl.base "#builtin.symbol_ref"
    %body = irdl.region
    irdl.attributes { "field" = %field }
    irdl.regions(body: %body)
  }

  // ---- Field access -----------------------------------------------------------
  irdl.operation @load {
    %index = irdl.is index
    %f32 = irdl.is f32
    %f64 = irdl.is f64
    %i32 = irdl.is i32
    %elem = irdl.any_of(%f32, %f64, %i32)
    %field = irdl.base "#builtin.symbol_ref"
    irdl.operands(indices: variadic %index)
    irdl.results(result: %elem)
    irdl.attributes { "field" = %field }
  }
  irdl.operation @store {
    %index = irdl.is index
    %f32 = irdl.is f32
    %f64 = irdl.is f64
    %i32 = irdl.is i32
    %elem = irdl.any_of(%f32, %f64, %i32)
    %field = irdl.base "#builtin.symbol_ref"
    irdl.operands(value: %elem, indices: variadic %index)
    irdl.attributes { "field" = %field }
  }
  irdl.operation @atomic_add {
    %index = irdl.is index
    %f32 = irdl.is f32
    %f64 = irdl.is f64
    %i32 = irdl.is i32
    %elem = irdl.any_of(%f32, %f64, %i32)
    %field = irdl.base "#builtin.symbol_ref"
    irdl.operands(value: %elem, indices: variadic %index)
    irdl.attributes { "field" = %field }
  }
  irdl.operation @atomic_sub {
    %index = irdl.is index
    %f32 = irdl.is f32
    %f64 = irdl.is f64
    %i32 = irdl.is i32
    %elem = irdl.any_of(%f32, %f64, %i32)
    %field = irdl.base "#builtin.symbol_ref"
    irdl.operands(value: %elem, indices: variadic %index)
    irdl.attributes { "field" = %field }
  }
  irdl.operation @atomic_min {
    %index = irdl.is index
    %f32 = irdl.is f32
    %f64 = irdl.is f64
    %i32 = irdl.is i32
    %elem = irdl.any_of(%f32, %f64, %i32)
    %field = irdl.base "#builtin.symbol_ref"
    irdl.operands(value: %elem, indices: variadic %index)
    irdl.attributes { "field" = %field }
  }
  irdl.operation @atomic_max {
    %index = irdl.is index
    %f32 = irdl.is f32
    %f64 = irdl.is f64
    %i32 = irdl.is i32
    %elem = irdl.any_of(%f32, %f64, %i32)
    %field = irdl.base "#builtin.symbol_ref"
    irdl.operands(value: %elem, indices: variadic %index)
    irdl.attributes { "field" = %field }
  }
  // Activity of sparse cells (optional attribute `node`: the layout node meant).
  irdl.operation @activate {
    %index = irdl.is index
    %field = irdl.base "#builtin.symbol_ref"
    irdl.operands(indices: variadic %index)
    irdl.attributes { "field" = %field }
  }
  irdl.operation @deactivate {
    %index = irdl.is index
    %field = irdl.base "#builtin.symbol_ref"
    irdl.operands(indices: variadic %index)
    irdl.attributes { "field" = %field }
  }
  irdl.operation @is_active {
    %index = irdl.is index
    %i1 = irdl.is i1
    %field = irdl.base "#builtin.symbol_ref"
    irdl.operands(indices: variadic %index)
    irdl.results(result: %i1)
    irdl.attributes { "field" = %field }
  }
  // Lists of dynamic nodes.
  irdl.operation @append {
    %index = irdl.is index
    %f32 = irdl.is f32
    %f64 = irdl.is f64
    %i32 = irdl.is i32
    %elem = irdl.any_of(%f32, %f64, %i32)
    %field = irdl.base "#builtin.symbol_ref"
    irdl.operands(value: %elem, indices: variadic %index)
    irdl.results(result: %i32)
    irdl.attributes { "field" = %field }
  }
  irdl.operation @length {
    %index = irdl.is index
    %i32 = irdl.is i32
    %field = irdl.base "#builtin.symbol_ref"
    irdl.operands(indices: variadic %index)
    irdl.results(result: %i32)
    irdl.attributes { "field" = %field }
  }

  // ---- Values ----------------------------------------------------------------------
  irdl.operation @stop_grad {
    %f32 = irdl.is f32
    %f64 = irdl.is f64
    %elem = irdl.any_of(%f32, %f64)
    irdl.operands(value: %elem)
    irdl.results(result: %elem)
  }

  // ---- Run-time checks ------------------------------------------------------------
  irdl.operation @assert {
    %cond = irdl.is i1
    %message = irdl.base "#builtin.string"
    irdl.operands(condition: %cond)
    irdl.attributes { "message" = %message }
  }
}
}
