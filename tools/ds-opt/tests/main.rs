//! The ds-opt test binary: the lit snapshot harness and the robustness test.

mod autodiff_rules;
mod lit;
mod robustness;
