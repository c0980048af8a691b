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
