//! The ds-opt test binary: the lit snapshot harness and the robustness test.

mod lit;
mod robustness;
