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
pub mod rng;

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
/// Errors are reported through the context's diagnostics. Input that MLIR's
/// parser is known to crash on is rejected first, with a located error (see
/// [`check_text`]).
pub fn parse_module<'c>(context: &'c Context, text: &str, filename: &str) -> Option<Module<'c>> {
    parse_module_at(context, text, filename, 0)
}

/// [`parse_module`] of a piece of a file that starts after its first
/// `first_line` lines (`--split-input-file`): the module's op locations get
/// the whole file's line numbers. Diagnostics of the parse itself are
/// located in `text` (line 1 is its first line): shift them by `first_line`.
pub fn parse_module_at<'c>(context: &'c Context, text: &str, filename: &str, first_line: usize) -> Option<Module<'c>> {
    if let Err(e) = check_text(text) {
        let ctx = ir::Ctx::of(context);
        ctx.emit_error(ctx.file_line_col(filename, e.line, e.col), &e.message);
        return None;
    }
    ir::parse_module(context, text, filename, first_line)
}

/// Deepest nesting of brackets (`{}`, `()`, `[]`, `<>`) [`parse_module`]
/// accepts. MLIR's parser recurses per level and overflows an 8 MiB stack at
/// about 3,900 levels (our passes recurse per region too).
pub const MAX_NESTING: usize = 1024;

/// Why [`check_text`] rejected a text, at line:col of the text (from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextError {
    pub line: u32,
    pub col: u32,
    pub message: String,
}

/// Finds, without parsing, what would crash MLIR's parser: nesting deeper
/// than [`MAX_NESTING`], and `array<index` (an array attribute of index
/// elements, which the parser dereferences as a null type). Strings and `//`
/// comments are skipped; `->` is not a bracket. One pass over the text.
pub fn check_text(text: &str) -> Result<(), TextError> {
    let (mut line, mut col, mut depth) = (1u32, 0u32, 0usize);
    let (mut in_string, mut in_comment, mut escaped) = (false, false, false);
    let bytes = text.as_bytes();
    let at = |line, col, message: String| Err(TextError { line, col, message });
    for (i, &b) in bytes.iter().enumerate() {
        col += 1;
        if b == b'\n' {
            (line, col, in_comment, in_string) = (line + 1, 0, false, false);
            continue;
        }
        if in_comment {
            continue;
        }
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                (false, _) => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'/' if bytes.get(i + 1) == Some(&b'/') => in_comment = true,
            b'{' | b'(' | b'[' | b'<' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return at(line, col, format!("nesting deeper than {MAX_NESTING} levels is not supported (MLIR's parser recurses per level and would overflow its stack)"));
                }
                if b == b'<' && text[..i].ends_with("array") && text[i + 1..].trim_start().starts_with("index") {
                    return at(line, col.saturating_sub(5), "array<index: ...> is not supported (MLIR's parser crashes on it); write array<i64: ...>".into());
                }
            }
            b'>' if i > 0 && bytes[i - 1] == b'-' => {}
            b'}' | b')' | b']' | b'>' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}
