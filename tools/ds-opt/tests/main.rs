//! The ds-opt test binary: the lit snapshot harness, the robustness test, the
//! size of autodiff output on deep nesting, reading input (split, parser
//! guards), and
//! checks of the op table, the builders and the autodiff rule table.

mod autodiff_rules;
mod autodiff_size;
mod builders;
mod catalogue;
mod input;
mod lit;
mod robustness;
mod harness;
