//! The ds-opt test binary: the lit snapshot harness and the robustness test.

mod autodiff_rules;
mod builders;
mod lit;
mod robustness;
