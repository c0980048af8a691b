//! `ds-run`: runs any ds module from the command line, so that the output of
//! another frontend (or a hand-written module) can be run, differentiated and
//! timed without writing a Rust host program.
//!
//! ```text
//! ds-run examples/kernels/appendix_c.mlir \
//!     --field x=x.npy --field y=y.npy --launch 'reduce()' \
//!     --grad L --print L --out x_grad=x_grad.npy
//! ds-run examples/kernels/mass_spring_simple.mlir --field x=x0.npy ... \
//!     --launch 'apply_spring_force(%t); time_integrate(%t)' --for t=1..1024 \
//!     --launch 'compute_loss(1023)' --print loss
//! ```
//!
//! The steps, in order: the module is read (and transformed by
//! `--pass-pipeline`, parsed as ds-opt parses it), compiled for `--arch`
//! (with autodiff when `--grad` is given or a `*_grad` kernel is launched),
//! every field name and launch is checked against it (kernel names, the
//! number and types of scalar arguments, loop variables), fields are set up
//! (`--field`, `--fill`, in the order given), the launches run (recorded on a
//! [`ds_runtime::Tape`] under `--grad`; each loop iteration is a step for
//! checkpointing), backward runs from the loss, and fields are printed
//! (`--print`) and saved (`--out`). Under `--grad`, fields that are not
//! adjoints are read before backward (a checkpointed backward leaves the
//! state of an early step), adjoints after it.
//!
//! The whole tool is [`run`]; the binary prints its [`Output`] or the
//! [`Error`] (exit status 1).

pub mod cli;
pub mod device;
pub mod error;
pub mod launch;
pub mod npy;
mod transform;

pub use error::{ArgAt, Error};
pub use npy::Values;

use cli::{Arch, Init, Options};
use device::Timed;
use ds_runtime::cuda::CudaProgram;
use ds_runtime::tape::Plan as TapePlan;
use ds_runtime::{Backend, BackwardOptions, CompileOptions, Program, Tape};
use std::fmt::Write as _;

/// A field as printed or saved after the run.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldValues {
    /// As given to `--print` (`x`, `x[3]`) or `--out`.
    pub label: String,
    pub field: String,
    /// The shape of the part printed.
    pub shape: Vec<usize>,
    pub values: Values,
}

/// Launch times of one kernel (`--time`), in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    pub kernel: String,
    pub launches: usize,
    pub median: f64,
    pub min: f64,
}

/// What a run produced.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// What ds-run prints on standard output: the plan (`--print-plan`),
    /// the fields (`--print`), the timings (`--time`).
    pub stdout: String,
    /// The fields named by `--print`, in order.
    pub printed: Vec<FieldValues>,
    /// Per-kernel timings, in order of first launch.
    pub timings: Vec<Timing>,
    /// The plan backward ran, when it checkpointed.
    pub plan: Option<TapePlan>,
    /// Kernel launches, backward's included.
    pub launches: usize,
}

/// Runs ds-run with `args` (without the program name).
pub fn run(args: &[String]) -> Result<Output, Error> {
    let opts = cli::parse(args)?;
    if opts.help {
        return Ok(Output { stdout: format!("{}\n", cli::USAGE), ..Output::default() });
    }
    let input = opts.input.clone().unwrap_or_default();
    let (name, mut source) = if input == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|source| Error::Io { path: "<stdin>".into(), source })?;
        ("<stdin>".to_string(), text)
    } else {
        let text = std::fs::read_to_string(&input).map_err(|source| Error::Io { path: input.clone(), source })?;
        (input.clone(), text)
    };
    if let Some(pipeline) = &opts.pipeline {
        source = transform::apply(&source, &name, pipeline)?;
    }
    let launches_grad = opts.groups.iter().flat_map(|g| &g.calls).any(|c| c.kernel.ends_with("_grad"));
    let options = CompileOptions {
        check_bounds: opts.check_bounds,
        autodiff: opts.grad.is_some() || launches_grad,
        ..CompileOptions::default()
    };
    let go = || -> Result<Output, Error> {
        match opts.arch {
            Arch::Cpu => execute(Program::with_options(&source, &name, &options)?, &opts),
            Arch::Cuda => execute(CudaProgram::new(&source, &name, &options)?, &opts),
        }
    };
    match opts.threads {
        None => go(),
        Some(n) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| Error::from(ds_runtime::Error::Internal(format!("cannot start {n} threads: {e}"))))?;
            pool.install(go)
        }
    }
}

fn field_error(at: &ArgAt, source: ds_runtime::Error) -> Error {
    Error::Arg { at: at.clone(), iteration: None, source: Box::new(source) }
}

/// Reads a whole field.
fn read_field<B: Backend>(p: &B, field: usize) -> Result<Values, ds_runtime::Error> {
    let info = &p.field_infos()[field];
    let n = info.len();
    Ok(match info.elem {
        ds_runtime::ElemType::F32 => {
            let mut v = vec![0f32; n];
            p.read(field, 0, &mut v)?;
            Values::F32(v)
        }
        ds_runtime::ElemType::F64 => {
            let mut v = vec![0f64; n];
            p.read(field, 0, &mut v)?;
            Values::F64(v)
        }
        ds_runtime::ElemType::I32 => {
            let mut v = vec![0i32; n];
            p.read(field, 0, &mut v)?;
            Values::I32(v)
        }
    })
}

fn write_field<B: Backend>(p: &mut B, field: usize, values: &Values) -> Result<(), ds_runtime::Error> {
    match values {
        Values::F32(v) => p.write(field, 0, v),
        Values::F64(v) => p.write(field, 0, v),
        Values::I32(v) => p.write(field, 0, v),
    }
}

/// A `--print` or `--out` request, resolved against the program.
struct Request {
    label: String,
    field: usize,
    /// Element range of the part and its shape.
    range: std::ops::Range<usize>,
    shape: Vec<usize>,
    /// `--out` path.
    out: Option<String>,
}

fn resolve_requests<B: Backend>(p: &B, opts: &Options) -> Result<Vec<Request>, Error> {
    let mut out = Vec::new();
    for spec in &opts.prints {
        let field = p.field_index(&spec.field).map_err(|e| field_error(&spec.at, e))?;
        let info = &p.field_infos()[field];
        if spec.index.len() > info.shape.len() || spec.index.iter().zip(&info.shape).any(|(i, n)| i >= n) {
            let source = ds_runtime::Error::HostIndex {
                field: info.name.clone(),
                index: spec.index.clone(),
                shape: info.shape.clone(),
            };
            return Err(field_error(&spec.at, source));
        }
        let rest = &info.shape[spec.index.len()..];
        let size: usize = rest.iter().product();
        let mut start = 0;
        for (k, &i) in spec.index.iter().enumerate() {
            start = start * info.shape[k] + i;
        }
        start *= size;
        out.push(Request { label: spec.at.value.clone(), field, range: start..start + size, shape: rest.to_vec(), out: None });
    }
    for spec in &opts.outs {
        let field = p.field_index(&spec.field).map_err(|e| field_error(&spec.at, e))?;
        let info = &p.field_infos()[field];
        out.push(Request {
            label: spec.field.clone(),
            field,
            range: 0..info.len(),
            shape: info.shape.clone(),
            out: Some(spec.path.clone()),
        });
    }
    Ok(out)
}

/// The part of `values` a request names.
fn part(values: &Values, range: std::ops::Range<usize>) -> Values {
    match values {
        Values::F32(v) => Values::F32(v[range].to_vec()),
        Values::F64(v) => Values::F64(v[range].to_vec()),
        Values::I32(v) => Values::I32(v[range].to_vec()),
    }
}

/// Prints a field: a scalar on one line, a vector in brackets, higher ranks
/// one innermost row per line, prefixed by its leading indices.
fn print_field(s: &mut String, f: &FieldValues) {
    let elem = f.values.elem();
    let dims = f.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
    let head = format!("@{}: {elem}[{dims}]", f.label.trim_start_matches('@'));
    match f.shape.len() {
        0 => {
            let _ = writeln!(s, "{head} = {}", f.values.format(0..1).join(""));
        }
        1 => {
            let _ = writeln!(s, "{head} = [{}]", f.values.format(0..f.values.len()).join(", "));
        }
        _ => {
            let _ = writeln!(s, "{head} =");
            let row = f.shape[f.shape.len() - 1];
            let lead = &f.shape[..f.shape.len() - 1];
            let rows: usize = lead.iter().product();
            let mut index = vec![0usize; lead.len()];
            for r in 0..rows {
                let at = index.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
                let _ = writeln!(s, "  [{at}] [{}]", f.values.format(r * row..(r + 1) * row).join(", "));
                for d in (0..lead.len()).rev() {
                    index[d] += 1;
                    if index[d] < lead[d] {
                        break;
                    }
                    index[d] = 0;
                }
            }
        }
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the launches (recorded on `tape` when there is one).
fn run_launches<B: Backend>(
    p: &mut Timed<B>,
    plans: &[launch::Plan],
    mut tape: Option<&mut Tape<Timed<B>>>,
) -> Result<(), Error> {
    for plan in plans {
        for value in plan.values() {
            for call in &plan.calls {
                let args = call.args(value);
                let result = match tape.as_deref_mut() {
                    Some(t) => t.launch(p, &call.kernel, &args),
                    None => p.launch(&call.kernel, &args),
                };
                result.map_err(|source| Error::Arg {
                    at: plan.at.clone(),
                    iteration: plan.var().map(|v| (v.to_string(), value)),
                    source: Box::new(source),
                })?;
            }
            if let Some(t) = tape.as_deref_mut() {
                t.end_step();
            }
        }
    }
    Ok(())
}

/// Everything after compiling, on any backend.
fn execute<B: Backend>(program: B, opts: &Options) -> Result<Output, Error> {
    let mut p = Timed::new(program, opts.time);
    // Check everything before running anything.
    let plans = opts.groups.iter().map(|g| launch::check(&p, g)).collect::<Result<Vec<_>, _>>()?;
    let requests = resolve_requests(&p, opts)?;
    let loss = match &opts.grad {
        Some((name, at)) => {
            let field = p.field_index(name).map_err(|e| field_error(at, e))?;
            if p.field_infos()[field].grad.is_none() {
                return Err(field_error(at, ds_runtime::Error::NoGradient { field: name.clone() }));
            }
            Some(name.clone())
        }
        None => None,
    };
    let mut inits = Vec::new();
    for init in &opts.inits {
        let (Init::Load { field, at, .. } | Init::Fill { field, at, .. }) = init;
        inits.push(p.field_index(field).map_err(|e| field_error(at, e))?);
    }
    for (init, &field) in opts.inits.iter().zip(&inits) {
        match init {
            Init::Load { field: name, path, at } => {
                let info = &p.field_infos()[field];
                let values = npy::read_field(path, name, info.elem, &info.shape)?;
                write_field(&mut p, field, &values).map_err(|e| field_error(at, e))?;
            }
            Init::Fill { value, at, .. } => {
                let info = &p.field_infos()[field];
                if info.elem == ds_runtime::ElemType::I32 && (value.fract() != 0.0 || value.abs() > i32::MAX as f64) {
                    return Err(Error::Syntax {
                        at: at.clone(),
                        message: format!("field @{} holds i32 elements: {value} is not one", info.name),
                    });
                }
                p.fill(field, *value).map_err(|e| field_error(at, e))?;
            }
        }
    }

    let mut out = Output::default();
    let adjoints: Vec<usize> =
        p.field_infos().iter().filter_map(|f| f.grad.as_ref()).filter_map(|g| p.field_index(g).ok()).collect();
    let mut taken: Vec<Option<Values>> = vec![None; requests.len()];
    let take = |p: &Timed<B>, after_backward: bool, taken: &mut Vec<Option<Values>>| -> Result<(), Error> {
        for (r, slot) in requests.iter().zip(taken.iter_mut()) {
            if adjoints.contains(&r.field) == after_backward && slot.is_none() {
                *slot = Some(part(&read_field(p, r.field)?, r.range.clone()));
            }
        }
        Ok(())
    };
    match loss {
        None => {
            run_launches(&mut p, &plans, None)?;
            take(&p, false, &mut taken)?;
            take(&p, true, &mut taken)?;
        }
        Some(loss) => {
            let mut tape = if opts.memory_budget.is_some() { Tape::new() } else { Tape::without_state() };
            run_launches(&mut p, &plans, Some(&mut tape))?;
            take(&p, false, &mut taken)?;
            let budget = opts.memory_budget;
            if opts.print_plan {
                let overwrites = tape.overwrites();
                match (overwrites.first(), budget) {
                    (None, _) => {
                        let _ = writeln!(
                            out.stdout,
                            "plan: no checkpointing (no launch overwrites what an earlier one read): {} launches reversed",
                            tape.len()
                        );
                    }
                    (Some(_), Some(b)) => {
                        let policy = tape.policy_for_budget(b)?;
                        let _ = writeln!(out.stdout, "plan: {}", tape.plan(&*policy));
                    }
                    (Some(o), None) => {
                        let _ = writeln!(
                            out.stdout,
                            "plan: none: {} overwrites @{} (read by launch {}) and no --memory-budget was given",
                            o.writer, o.field, o.reader
                        );
                    }
                }
            }
            let plan = tape.backward(&mut p, &loss, &BackwardOptions { memory_budget: budget, ..Default::default() })?;
            if opts.print_plan
                && let Some(plan) = &plan
            {
                let _ = writeln!(out.stdout, "ran: {plan}");
            }
            out.plan = plan;
            take(&p, true, &mut taken)?;
        }
    }
    p.inner.synchronize()?;
    out.launches = p.launches;
    for (r, values) in requests.iter().zip(taken) {
        let values = values.ok_or_else(|| ds_runtime::Error::Internal(format!("field {} was not read", r.label)))?;
        match &r.out {
            Some(path) => npy::write(path, &r.shape, &values)?,
            None => {
                let f = FieldValues {
                    label: r.label.clone(),
                    field: p.field_infos()[r.field].name.clone(),
                    shape: r.shape.clone(),
                    values,
                };
                print_field(&mut out.stdout, &f);
                out.printed.push(f);
            }
        }
    }
    for (kernel, times) in &p.times {
        let t = Timing {
            kernel: kernel.clone(),
            launches: times.len(),
            median: median(times),
            min: times.iter().copied().fold(f64::INFINITY, f64::min),
        };
        let _ = writeln!(
            out.stdout,
            "time {}: median {:.3} us, min {:.3} us over {} launches",
            t.kernel,
            t.median * 1e6,
            t.min * 1e6,
            t.launches
        );
        out.timings.push(t);
    }
    Ok(out)
}
