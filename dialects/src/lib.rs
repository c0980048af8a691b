//! The `ds` dialect of DiffSim.
//!
//! The dialect is defined in IRDL (`ds.irdl.mlir`) and loaded into an MLIR
//! context at run time by [`context`], together with every upstream dialect,
//! pass and LLVM translation, so one context can parse, transform and lower a
//! DiffSim module all the way to machine code. [`ops`] names and builds the ds
//! ops; [`ir`] is the small safe layer over the MLIR C API that passes use.

pub mod diag;
pub mod ir;
pub mod ops;

use melior::{Context, dialect::DialectRegistry, ir::Module, utility};
use std::sync::Once;

/// The IRDL source of the ds dialect.
pub const IRDL_SOURCE: &str = include_str!("ds.irdl.mlir");

/// A context with all upstream dialects and translations and the ds dialect
/// loaded. Every DiffSim tool starts from this call.
pub fn context() -> Context {
    static PASSES: Once = Once::new();
    PASSES.call_once(utility::register_all_passes);
    let registry = DialectRegistry::new();
    utility::register_all_dialects(&registry);
    let context = Context::new_with_registry(&registry, false);
    context.load_all_available_dialects();
    utility::register_all_llvm_translations(&context);
    register(&context);
    context
}

/// Loads the ds dialect into `context`.
pub fn register(context: &Context) {
    let irdl = Module::parse(context, IRDL_SOURCE).expect("the ds IRDL definition parses");
    assert!(utility::load_irdl_dialects(&irdl), "the ds IRDL definition loads");
    // The loaded dialect's verifiers refer to the IRDL ops: keep them alive as
    // long as the context (one small module per context).
    std::mem::forget(irdl);
}

/// Parses `text` as a module whose locations name `filename`. Top-level ops
/// that are not a `builtin.module` are wrapped in one, as mlir-opt does.
/// Errors are reported through the context's diagnostics.
pub fn parse_module<'c>(context: &'c Context, text: &str, filename: &str) -> Option<Module<'c>> {
    ir::parse_module(context, text, filename)
}
