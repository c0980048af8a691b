//! Helpers shared by the test modules.

/// Field declarations with their adjoint fields: (name, element type,
/// extents such as "4, 8" or "" for 0-D).
pub fn fields(decls: &[(&str, &str, &str)]) -> String {
    decls
        .iter()
        .map(|(name, ty, shape)| {
            let shape = if shape.is_empty() { "array<i64>".to_string() } else { format!("array<i64: {shape}>") };
            format!(
                "\"ds.field\"() {{sym_name = \"{name}\", element_type = {ty}, shape = {shape}, grad = @{name}_grad}} : () -> ()\n\
                 \"ds.field\"() {{sym_name = \"{name}_grad\", element_type = {ty}, shape = {shape}}} : () -> ()\n"
            )
        })
        .collect()
}

/// A kernel `@name(params)` whose body is one parallel loop over `[0, %n)`
/// running `body` with the index `%i`. `n` is a constant extent, or None when
/// `%n: index` is among the parameters.
pub fn loop_kernel(name: &str, params: &str, n: Option<usize>, body: &str) -> String {
    let extent = n.map_or(String::new(), |n| format!("\n  %n = arith.constant {n} : index"));
    format!(
        r#"func.func @{name}({params}) attributes {{ds.kernel}} {{
  %c0 = arith.constant 0 : index{extent}
  "ds.parallel_for"(%c0, %n) ({{
  ^bb0(%i: index):
{body}
    gpu.yield
  }}) : (index, index) -> ()
  return
}}
"#
    )
}
