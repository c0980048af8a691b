//! `ds-opt`, the mlir-opt of DiffSim: parses a module (ds ops mixed with any
//! upstream dialect), runs DiffSim and upstream passes, prints the result.
//!
//! ```text
//! ds-opt [FILE|-] [-o OUT] [--pass-pipeline='builtin.module(ds-verify, cse)']
//!        [--ds-verify --canonicalize ...] [--split-input-file] [--verify-diagnostics]
//!        [--print-ir-after-all] [--mlir-print-debuginfo] [--list-passes]
//! ```
//!
//! Exit status 0 on success and 1 on any error diagnostic, bad flag or missing
//! file. The whole tool is the library function [`run`], so tests drive it
//! in-process.

mod expect;
pub mod mutate;

use ds_dialects::diag::{self, Diagnostic, Severity};
use ds_dialects::ir::Op;
use ds_lowering::pipeline::{self, PipelineError, Step};
use melior::ir::Module;

/// What a run printed and its exit status.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

const USAGE: &str = "usage: ds-opt [FILE|-] [-o OUT] [--pass-pipeline=PIPELINE | --PASS[{opts}] ...] \
[--split-input-file] [--verify-diagnostics] [--print-ir-after-all] [--mlir-print-debuginfo] \
[--mlir-print-op-generic] [--list-passes]";

/// Upstream passes listed by `--list-passes`: those DiffSim pipelines use and
/// the common clean-ups. Any other registered MLIR pass can be named as well.
const UPSTREAM_LISTED: &[&str] = &[
    "canonicalize",
    "cse",
    "symbol-dce",
    "inline",
    "loop-invariant-code-motion",
    "lower-affine",
    "convert-scf-to-cf",
    "convert-math-to-llvm",
    "expand-strided-metadata",
    "finalize-memref-to-llvm",
    "convert-arith-to-llvm",
    "convert-cf-to-llvm",
    "convert-func-to-llvm",
    "convert-index-to-llvm",
    "reconcile-unrealized-casts",
    "gpu-kernel-outlining",
    "convert-gpu-to-nvvm",
    "gpu-to-llvm",
    "gpu-module-to-binary",
];

#[derive(Default)]
struct Options {
    input: Option<String>,
    output: Option<String>,
    pipeline: Option<String>,
    pass_flags: Vec<String>,
    split: bool,
    verify_diagnostics: bool,
    print_after_all: bool,
    debug_info: bool,
    generic: bool,
    list_passes: bool,
    help: bool,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-o" => o.output = Some(it.next().ok_or("-o needs a file name")?.clone()),
            "--split-input-file" => o.split = true,
            "--verify-diagnostics" => o.verify_diagnostics = true,
            "--print-ir-after-all" => o.print_after_all = true,
            "--mlir-print-debuginfo" => o.debug_info = true,
            "--mlir-print-op-generic" => o.generic = true,
            "--list-passes" => o.list_passes = true,
            "-h" | "--help" => o.help = true,
            "--pass-pipeline" => o.pipeline = Some(it.next().ok_or("--pass-pipeline needs a value")?.clone()),
            "-" => o.input = Some("-".into()),
            _ => {
                if let Some(p) = a.strip_prefix("--pass-pipeline=") {
                    o.pipeline = Some(p.to_string());
                } else if let Some(out) = a.strip_prefix("-o=") {
                    o.output = Some(out.to_string());
                } else if let Some(flag) = a.strip_prefix("--") {
                    // `--pass=opts` is `pass{opts}`; `--pass{opts}` is taken as it is.
                    let element = match flag.split_once('=') {
                        Some((name, opts)) if !name.contains('{') => format!("{name}{{{opts}}}"),
                        _ => flag.to_string(),
                    };
                    o.pass_flags.push(element);
                } else if a.starts_with('-') {
                    return Err(format!("unknown option `{a}`\n{USAGE}"));
                } else if o.input.replace(a.clone()).is_some() {
                    return Err(format!("more than one input file given\n{USAGE}"));
                }
            }
        }
    }
    if o.pipeline.is_some() && !o.pass_flags.is_empty() {
        return Err("give either --pass-pipeline or per-pass flags, not both".into());
    }
    Ok(o)
}

/// Runs ds-opt with `args` (without the program name). `stdin` is called only
/// when the input is standard input.
pub fn run(args: &[String], stdin: impl FnOnce() -> std::io::Result<String>) -> Outcome {
    let fail = |msg: String| Outcome { stderr: format!("ds-opt: {msg}\n"), code: 1, ..Outcome::default() };
    let opts = match parse_args(args) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    if opts.help {
        return Outcome { stdout: format!("{USAGE}\n"), ..Outcome::default() };
    }
    if opts.list_passes {
        return Outcome { stdout: list_passes(), ..Outcome::default() };
    }
    let steps = match opts.pipeline.as_deref() {
        Some(text) => pipeline::parse(text),
        None => opts.pass_flags.iter().map(|f| pipeline::parse_element(f)).collect::<Result<Vec<_>, _>>().map(
            |v| v.concat(),
        ),
    };
    let steps = match steps {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let (name, text) = match opts.input.as_deref() {
        None | Some("-") => match stdin() {
            Ok(t) => ("<stdin>".to_string(), t),
            Err(e) => return fail(format!("cannot read standard input: {e}")),
        },
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => (path.to_string(), t),
            Err(e) => return fail(format!("cannot read {path}: {e}")),
        },
    };
    let chunks = if opts.split { split_input(&text) } else { vec![(0, text.as_str())] };
    let mut out = Outcome::default();
    let mut printed = Vec::new();
    // One context for all chunks, as mlir-opt does (a context costs ~10 ms).
    let context = ds_dialects::context();
    for (first_line, chunk) in chunks {
        let r = process_chunk(&context, &opts, &steps, &name, first_line, chunk);
        out.stderr.push_str(&r.stderr);
        out.code = out.code.max(r.code);
        if !r.stdout.is_empty() {
            printed.push(r.stdout);
        }
    }
    let joined = printed.join("// -----\n");
    match &opts.output {
        Some(path) if path != "-" => {
            if let Err(e) = std::fs::write(path, joined) {
                return fail(format!("cannot write {path}: {e}"));
            }
        }
        _ => out.stdout = joined,
    }
    out
}

/// Splits at `// -----` lines; each chunk comes with the number of lines
/// before it. Linear in the text.
pub fn split_input(text: &str) -> Vec<(usize, &str)> {
    let mut chunks = Vec::new();
    let mut start_byte = 0;
    let mut start_line = 0;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_end() == "// -----" {
            chunks.push((start_line, &text[start_byte..offset]));
            start_byte = offset + line.len();
            start_line = i + 1;
        }
        offset += line.len();
    }
    chunks.push((start_line, &text[start_byte..]));
    chunks
}

/// Moves a diagnostic of `file` (and its notes) down by `by` lines.
fn shift_diagnostic(d: &mut Diagnostic, file: &str, by: usize) {
    if let Some(p) = d.pos.as_mut().filter(|p| p.file == file) {
        let old = p.to_string();
        p.line += by as u32;
        if d.loc == old {
            d.loc = p.to_string();
        }
    }
    for n in &mut d.notes {
        shift_diagnostic(n, file, by);
    }
}

fn process_chunk(
    context: &melior::Context,
    opts: &Options,
    steps: &[Step],
    name: &str,
    first_line: usize,
    chunk: &str,
) -> Outcome {
    let mut dump = String::new();
    // Locations keep the lines of the whole file: the parser shifts the ops',
    // and the parse's own diagnostics are shifted here.
    let (module, mut diags) =
        diag::capture(context, || ds_dialects::parse_module_at(context, chunk, name, first_line));
    for d in &mut diags {
        shift_diagnostic(d, name, first_line);
    }
    let mut printed = String::new();
    if let Some(mut module) = module {
        let mut after = |label: &str, m: &Module| {
            dump.push_str(&format!("// -----// IR Dump After {label} //----- //\n"));
            dump.push_str(&print_module(opts, m));
        };
        let hook: Option<pipeline::AfterEach> = if opts.print_after_all { Some(&mut after) } else { None };
        match pipeline::run(context, &mut module, steps, hook) {
            Ok(d) => {
                diags.extend(d);
                printed = print_module(opts, &module);
            }
            Err(PipelineError::Failed(d)) => diags.extend(d),
            Err(PipelineError::Invalid(msg)) => {
                return Outcome { stderr: format!("ds-opt: {msg}\n"), code: 1, ..Outcome::default() };
            }
        }
        if diags.is_empty() && !Op::of_module(&module).verify() {
            diags.push(Diagnostic {
                severity: Severity::Error,
                pos: None,
                loc: name.to_string(),
                message: "the module does not verify".into(),
                notes: vec![],
            });
        }
    }
    let failed = diags.iter().any(|d| d.severity == Severity::Error) || printed.is_empty();
    if opts.verify_diagnostics {
        let problems = expect::check(chunk, first_line, name, &diags);
        let code = i32::from(!problems.is_empty());
        let stdout = if failed { String::new() } else { printed };
        return Outcome { stdout, stderr: dump + &problems.join(""), code };
    }
    let mut stderr = dump;
    for d in &diags {
        stderr.push_str(&format!("{d}\n"));
    }
    if failed && diags.is_empty() {
        stderr.push_str(&format!("{name}: error: could not process the input\n"));
    }
    Outcome { stdout: if failed { String::new() } else { printed }, stderr, code: i32::from(failed) }
}

fn print_module(opts: &Options, module: &Module) -> String {
    let mut s = Op::of_module(module).print(opts.generic, opts.debug_info);
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

fn list_passes() -> String {
    let mut s = String::from("DiffSim passes:\n");
    for p in pipeline::all_passes() {
        s.push_str(&format!("  --{:<28} {}\n", p.name, p.summary));
        if !p.options.is_empty() {
            s.push_str(&format!("  {:<30} options: {}\n", "", p.options.join(", ")));
        }
    }
    s.push_str("Named pipelines:\n");
    for p in ds_lowering::PIPELINES {
        s.push_str(&format!("  --{:<28} {}\n", p.name, p.summary));
    }
    s.push_str("Upstream MLIR passes (any registered MLIR pass works; these are the ones DiffSim uses):\n");
    for name in pipeline::registered_upstream(UPSTREAM_LISTED) {
        s.push_str(&format!("  --{name}\n"));
    }
    s
}
