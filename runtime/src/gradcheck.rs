//! Gradcheck: a kernel's generated gradient against central finite differences.
//!
//! The loss is a random weighted sum of the output fields, L = sum w_j out_j,
//! so one check covers a random vector-Jacobian product. Inputs get random
//! values; the analytic gradient comes from `k` then `k_grad` with the output
//! adjoints seeded with w; the numeric one from the fourth-order central
//! difference (-L(x+2h) + 8L(x+h) - 8L(x-h) + L(x-2h)) / 12h per input element,
//! h = 1e-4 max(1, |x|) (1e-2 for f32 inputs), outputs restored before every
//! run. The error of one element is |a - n| / max(|a|, |n|, 1e-4 * largest |n|
//! over all checked inputs); a NaN is the worst error. [`check_gradient`]
//! does the same for a gradient computed any other way (a Tape with custom
//! gradients). [`jvpcheck`] checks a tangent kernel (forward mode) against
//! finite differences along a random direction and against the gradient
//! kernel.
//!
//! The helpers the test binaries and the benchmarks share live here too, one
//! copy each: [`Rng`], the source builders [`fields`],
//! [`fields_without_grad`] and [`loop_kernel`], and the corpus reader
//! [`corpus`].

use crate::compile::CompileOptions;
use crate::error::Error;
use crate::field::ElemType;
use crate::program::{Arg, Program};

/// What to check.
#[derive(Clone, Debug)]
pub struct Spec {
    pub kernel: String,
    pub args: Vec<Arg>,
    /// Input fields with the range their random values are drawn from.
    pub inputs: Vec<(String, f64, f64)>,
    /// Output fields the loss is computed from.
    pub outputs: Vec<String>,
    /// At most this many elements of each input are checked (spread evenly).
    pub max_elements: usize,
    pub seed: u64,
    /// The finite-difference step; by default 1e-6 (f64 inputs) or 1e-3 (f32
    /// inputs), times max(1, |x|).
    pub step: Option<f64>,
}

impl Spec {
    pub fn new(kernel: &str, inputs: &[(&str, f64, f64)], outputs: &[&str]) -> Spec {
        Spec {
            kernel: kernel.into(),
            args: vec![],
            inputs: inputs.iter().map(|(n, lo, hi)| (n.to_string(), *lo, *hi)).collect(),
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            max_elements: 48,
            seed: 0x5EED,
            step: None,
        }
    }
    pub fn args(mut self, args: &[Arg]) -> Spec {
        self.args = args.to_vec();
        self
    }
}

/// The outcome of a check.
#[derive(Clone, Debug)]
pub struct Report {
    pub worst_error: f64,
    /// Where the worst error is: `field[offset]: analytic A, numeric N`.
    pub worst_at: String,
    pub elements_checked: usize,
    /// The largest |numeric gradient|: a check of an all-zero gradient proves little.
    pub largest_gradient: f64,
}

/// The project's deterministic generator (the same seed gives the same
/// numbers, so a failure found with it reproduces).
pub use ds_dialects::rng::Rng;

/// `ds.field` declarations, one line each, every field followed by its
/// adjoint field `NAME_grad`: (name, element type, extents such as "4, 8",
/// or "" for a 0-D field).
pub fn fields(decls: &[(&str, &str, &str)]) -> String {
    declarations(decls, true)
}

/// `ds.field` declarations as [`fields`] makes them, without adjoint fields.
pub fn fields_without_grad(decls: &[(&str, &str, &str)]) -> String {
    declarations(decls, false)
}

fn declarations(decls: &[(&str, &str, &str)], with_grad: bool) -> String {
    let field = |name: &str, ty: &str, shape: &str, grad: Option<&str>| {
        let shape = if shape.is_empty() { "array<i64>".to_string() } else { format!("array<i64: {shape}>") };
        let grad = grad.map_or(String::new(), |g| format!(", grad = @{g}"));
        format!("\"ds.field\"() {{sym_name = \"{name}\", element_type = {ty}, shape = {shape}{grad}}} : () -> ()\n")
    };
    let mut out = String::new();
    for (name, ty, shape) in decls {
        if with_grad {
            let grad = format!("{name}_grad");
            out += &field(name, ty, shape, Some(&grad));
            out += &field(&grad, ty, shape, None);
        } else {
            out += &field(name, ty, shape, None);
        }
    }
    out
}

/// A kernel `@name(params)` whose body is one parallel loop over `[0, %n)`
/// running `body` (lines of IR indented by four spaces) with the index `%i`.
/// `n` is a constant extent, or None when `%n: index` is among the
/// parameters.
pub fn loop_kernel(name: &str, params: &str, n: Option<usize>, body: &str) -> String {
    let extent = n.map_or(String::new(), |n| format!("\n  %n = arith.constant {n} : index"));
    format!(
        r#"func.func @{name}({params}) attributes {{ds.kernel}} {{
  %c0 = arith.constant 0 : index{extent}
  "ds.parallel_for"(%c0, %n) ({{
  ^bb0(%i: index):
{body}
    gpu.yield
  }}) : (index, index) -> ()
  return
}}
"#
    )
}

/// Every file of the directory `dir` (a kernel corpus such as `test/kernels`)
/// as (path, text), sorted by path.
pub fn corpus(dir: &std::path::Path) -> Result<Vec<(String, String)>, Error> {
    let io = |path: &std::path::Path| {
        let path = path.to_string_lossy().into_owned();
        move |source| Error::Io { path, source }
    };
    let entries = std::fs::read_dir(dir).map_err(io(dir))?;
    let mut files: Vec<_> = entries.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>().map_err(io(dir))?;
    files.sort();
    files.into_iter().map(|p| Ok((p.to_string_lossy().into_owned(), std::fs::read_to_string(&p).map_err(io(&p))?))).collect()
}

/// Compiles `source` with autodiff and checks `spec.kernel`'s gradient.
pub fn gradcheck(source: &str, spec: &Spec) -> Result<Report, Error> {
    let options = CompileOptions { autodiff: true, ..Default::default() };
    let mut p = Program::with_options(source, "<gradcheck>", &options)?;
    let mut rng = Rng(spec.seed);
    for (name, lo, hi) in &spec.inputs {
        let f = p.field_mut(name)?;
        for i in 0..f.info.len() {
            f.set_f64(i, rng.uniform(*lo, *hi));
        }
    }
    let weights: Vec<Vec<f64>> = spec
        .outputs
        .iter()
        .map(|o| Ok((0..p.field(o)?.info.len()).map(|_| rng.uniform(-1.0, 1.0)).collect()))
        .collect::<Result<_, Error>>()?;
    let initial_outputs: Vec<Vec<f64>> =
        spec.outputs.iter().map(|o| Ok(p.field(o)?.to_f64_vec())).collect::<Result<_, Error>>()?;
    // The outputs after one run of the kernel from the initial outputs.
    let outputs_after = |p: &mut Program| -> Result<Vec<f64>, Error> {
        for (o, init) in spec.outputs.iter().zip(&initial_outputs) {
            let f = p.field_mut(o)?;
            for (i, v) in init.iter().enumerate() {
                f.set_f64(i, *v);
            }
        }
        p.launch(&spec.kernel, &spec.args)?;
        let mut all = Vec::new();
        for o in &spec.outputs {
            all.extend(p.field(o)?.to_f64_vec());
        }
        Ok(all)
    };
    let w: Vec<f64> = weights.concat();
    // Analytic: zero every adjoint, seed the outputs' adjoints with w, run k then k_grad.
    outputs_after(&mut p)?;
    let grad_of = |p: &Program, f: &str| -> Result<String, Error> {
        p.field(f)?.info.grad.clone().ok_or_else(|| Error::NoGradient { field: f.into() })
    };
    let grads: Vec<String> = p.fields().iter().filter_map(|f| f.info.grad.clone()).collect();
    for g in &grads {
        p.field_mut(g)?.zero();
    }
    for (o, w) in spec.outputs.iter().zip(&weights) {
        let g = grad_of(&p, o)?;
        let f = p.field_mut(&g)?;
        for (i, v) in w.iter().enumerate() {
            f.set_f64(i, *v);
        }
    }
    p.launch(&format!("{}_grad", spec.kernel), &spec.args)?;
    let mut all = Vec::new();
    for (name, _, _) in &spec.inputs {
        let analytic = p.field(&grad_of(&p, name)?)?.to_f64_vec();
        let n = analytic.len();
        let stride = n.div_ceil(spec.max_elements.max(1)).max(1);
        let elem = p.field(name)?.info.elem;
        let mut numeric = Vec::new();
        for i in (0..n).step_by(stride) {
            let x = p.field(name)?.to_f64_vec()[i];
            let h = spec.step.unwrap_or(if elem == ElemType::F32 { 1e-2 } else { 1e-4 }) * x.abs().max(1.0);
            // Fourth-order central difference, combined per output element
            // before weighting, so outputs x does not touch cancel exactly.
            let mut at = |k: f64| -> Result<Vec<f64>, Error> {
                p.field_mut(name)?.set_f64(i, x + k * h);
                outputs_after(&mut p)
            };
            let (o2, o1, m1, m2) = (at(2.0)?, at(1.0)?, at(-1.0)?, at(-2.0)?);
            p.field_mut(name)?.set_f64(i, x);
            let d: f64 = (0..w.len()).map(|j| w[j] * (8.0 * (o1[j] - m1[j]) - (o2[j] - m2[j]))).sum();
            numeric.push((i, d / (12.0 * h)));
        }
        all.push((name.clone(), analytic, numeric));
    }
    Ok(report_of(all))
}

/// The outcome of [`jvpcheck`].
#[derive(Clone, Debug)]
pub struct JvpReport {
    /// The tangents of the outputs against finite differences along v.
    pub finite_differences: Report,
    /// |w . (J v) - (J^T w) . v| relative to the larger of the two: the
    /// tangent kernel against the gradient kernel.
    pub reverse_error: f64,
    /// The two numbers: `w.Jv = A, (J^T w).v = B`.
    pub reverse_at: String,
    /// The largest difference between the outputs of `k_jvp` and of `k`
    /// (the tangent kernel does the primal's work too).
    pub primal_difference: f64,
}

/// Compiles `source` with both modes of autodiff and checks `spec.kernel`'s
/// tangent kernel along a random direction v of the inputs (written into
/// their duals): the outputs' tangents against the fourth-order central
/// difference of the outputs along v (each output element, step h max(1,
/// largest |x|), h as in [`gradcheck`]), and against the gradient kernel, as w . (J v) against
/// (J^T w) . v for random weights w of the outputs.
pub fn jvpcheck(source: &str, spec: &Spec) -> Result<JvpReport, Error> {
    let options = CompileOptions { autodiff: true, forward_mode: true, ..Default::default() };
    let mut p = Program::with_options(source, "<jvpcheck>", &options)?;
    let mut rng = Rng(spec.seed);
    let dual_of = |p: &Program, f: &str| -> Result<String, Error> {
        p.field(f)?.info.dual.clone().ok_or_else(|| Error::Internal(format!("field {f} has no dual")))
    };
    let mut direction = Vec::new();
    for (name, lo, hi) in &spec.inputs {
        let n = p.field(name)?.info.len();
        let x: Vec<f64> = (0..n).map(|_| rng.uniform(*lo, *hi)).collect();
        let v: Vec<f64> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
        for (i, (x, v)) in x.iter().zip(&v).enumerate() {
            p.field_mut(name)?.set_f64(i, *x);
            let d = dual_of(&p, name)?;
            p.field_mut(&d)?.set_f64(i, *v);
        }
        direction.push((name.clone(), x, v));
    }
    let initial: Vec<Vec<f64>> = spec.outputs.iter().map(|o| Ok(p.field(o)?.to_f64_vec())).collect::<Result<_, Error>>()?;
    // The outputs (and their duals) after one launch from the initial outputs.
    let run = |p: &mut Program, kernel: &str| -> Result<(Vec<f64>, Vec<f64>), Error> {
        for (o, init) in spec.outputs.iter().zip(&initial) {
            let d = dual_of(p, o)?;
            for (i, v) in init.iter().enumerate() {
                p.field_mut(o)?.set_f64(i, *v);
                p.field_mut(&d)?.set_f64(i, 0.0);
            }
        }
        p.launch(kernel, &spec.args)?;
        let (mut out, mut tangents) = (Vec::new(), Vec::new());
        for o in &spec.outputs {
            out.extend(p.field(o)?.to_f64_vec());
            tangents.extend(p.field(&dual_of(p, o)?)?.to_f64_vec());
        }
        Ok((out, tangents))
    };
    let (primal, tangents) = run(&mut p, &format!("{}{}", spec.kernel, "_jvp"))?;
    let (reference, _) = run(&mut p, &spec.kernel)?;
    let primal_difference = primal.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    // Finite differences along v.
    let f32_input = spec.inputs.iter().any(|(n, _, _)| p.field(n).is_ok_and(|f| f.info.elem == ElemType::F32));
    let h = spec.step.unwrap_or(if f32_input { 1e-2 } else { 1e-4 });
    let scale = direction.iter().flat_map(|(_, x, _)| x.iter()).fold(1.0f64, |m, x| m.max(x.abs()));
    let mut at = |k: f64| -> Result<Vec<f64>, Error> {
        for (name, x, v) in &direction {
            for i in 0..x.len() {
                p.field_mut(name)?.set_f64(i, x[i] + k * h * scale * v[i]);
            }
        }
        Ok(run(&mut p, &spec.kernel)?.0)
    };
    let (o2, o1, m1, m2) = (at(2.0)?, at(1.0)?, at(-1.0)?, at(-2.0)?);
    at(0.0)?;
    let numeric: Vec<(usize, f64)> =
        (0..tangents.len()).map(|j| (j, (8.0 * (o1[j] - m1[j]) - (o2[j] - m2[j])) / (12.0 * h * scale))).collect();
    let finite_differences = report_of(vec![("tangent of the outputs".into(), tangents.clone(), numeric)]);
    // Against reverse mode: seed the outputs' adjoints with w, run k then k_grad.
    let w: Vec<f64> = (0..tangents.len()).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let grads: Vec<String> = p.fields().iter().filter_map(|f| f.info.grad.clone()).collect();
    for g in &grads {
        p.field_mut(g)?.zero();
    }
    run(&mut p, &spec.kernel)?;
    let mut offset = 0;
    for o in &spec.outputs {
        let g = p.field(o)?.info.grad.clone().ok_or_else(|| Error::NoGradient { field: o.clone() })?;
        let f = p.field_mut(&g)?;
        for i in 0..f.info.len() {
            f.set_f64(i, w[offset + i]);
        }
        offset += f.info.len();
    }
    p.launch(&format!("{}_grad", spec.kernel), &spec.args)?;
    let forward: f64 = w.iter().zip(&tangents).map(|(w, t)| w * t).sum();
    let mut reverse = 0.0;
    for (name, _, v) in &direction {
        let g = p.field(name)?.info.grad.clone().ok_or_else(|| Error::NoGradient { field: name.clone() })?;
        reverse += p.field(&g)?.to_f64_vec().iter().zip(v).map(|(g, v)| g * v).sum::<f64>();
    }
    let reverse_error = (forward - reverse).abs() / forward.abs().max(reverse.abs()).max(1e-12);
    Ok(JvpReport {
        finite_differences,
        reverse_error,
        reverse_at: format!("w.Jv = {forward:e}, (J^T w).v = {reverse:e}"),
        primal_difference,
    })
}

/// Checks a gradient computed any other way (a Tape with custom gradients,
/// a hand-written adjoint) against central finite differences of `loss`.
/// `analytic[k]` is dL/d`inputs[k]` (one value per element); `loss`
/// recomputes the loss from the program's current inputs (resetting any
/// other state it needs). The inputs keep their values.
pub fn check_gradient(
    p: &mut Program,
    inputs: &[&str],
    analytic: &[Vec<f64>],
    step: f64,
    mut loss: impl FnMut(&mut Program) -> Result<f64, Error>,
) -> Result<Report, Error> {
    let mut all = Vec::new();
    for (name, analytic) in inputs.iter().zip(analytic) {
        let values = p.field(name)?.to_f64_vec();
        if values.len() != analytic.len() {
            return Err(Error::Length { field: name.to_string(), expected: values.len(), given: analytic.len() });
        }
        let mut numeric = Vec::new();
        for (i, &x) in values.iter().enumerate() {
            let h = step * x.abs().max(1.0);
            let mut at = |k: f64| -> Result<f64, Error> {
                p.field_mut(name)?.set_f64(i, x + k * h);
                loss(p)
            };
            let (o2, o1, m1, m2) = (at(2.0)?, at(1.0)?, at(-1.0)?, at(-2.0)?);
            p.field_mut(name)?.set_f64(i, x);
            numeric.push((i, (8.0 * (o1 - m1) - (o2 - m2)) / (12.0 * h)));
        }
        all.push((name.to_string(), analytic.clone(), numeric));
    }
    Ok(report_of(all))
}

/// One input's gradients: its name, the analytic gradient of every element,
/// and the numeric one of the elements checked.
type Gradients = (String, Vec<f64>, Vec<(usize, f64)>);

/// The worst relative error over every input's gradients; a NaN anywhere is
/// the worst error (NaN), never skipped.
fn report_of(all: Vec<Gradients>) -> Report {
    let scale = all.iter().flat_map(|(_, _, n)| n.iter().map(|(_, v)| v.abs())).fold(0.0, f64::max);
    let mut report = Report { worst_error: 0.0, worst_at: String::new(), elements_checked: 0, largest_gradient: scale };
    for (name, analytic, numeric) in all {
        for (i, num) in numeric {
            let a = analytic[i];
            let err = (a - num).abs() / a.abs().max(num.abs()).max(1e-4 * scale).max(f64::MIN_POSITIVE);
            report.elements_checked += 1;
            let worse = err.is_nan() || (!report.worst_error.is_nan() && err > report.worst_error);
            if worse || report.worst_at.is_empty() {
                report.worst_error = err;
                report.worst_at = format!("{name}[{i}]: analytic {a:e}, numeric {num:e}");
            }
        }
    }
    report
}
