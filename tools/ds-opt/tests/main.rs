//! The ds-opt test binary: the lit snapshot harness, the robustness test, and
//! checks of the op table, the builders and the autodiff rule table.

mod autodiff_rules;
mod builders;
mod catalogue;
mod lit;
mod robustness;
mod shell_words;
