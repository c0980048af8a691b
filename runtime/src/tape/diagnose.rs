//! Gradient diagnostics on a recording: is this gradient any good?
//!
//! [`Tape::diagnose`] takes a recording of a simulation (primal launches, in
//! a program built with forward mode and switch sites:
//! `CompileOptions { forward_mode, switches, check_finite }`), a loss and a
//! direction v in the inputs, and reports:
//! - the directional derivative of the loss three ways: reverse mode
//!   (backward, then gradient . v), forward mode (the recording replayed
//!   with the tangent kernels, the inputs' duals seeded with v) and central
//!   finite differences (the recording replayed at x +- h v, +- 2h v);
//! - the norm of the tangents each step writes, and how it grows with the
//!   step ([`Growth`]: the paper's Fig. 10 explosion, quadratic without
//!   damping, linear with);
//! - branch switches ([`Switch`]): the comparisons (contacts, branches) whose
//!   outcome a move of at most `radius` along v flips, found from the
//!   tangents (the `ds_switch_N` fields the tangent kernels fill), each
//!   checked for a jump of the loss across the flip: a jump is where the
//!   gradient misses an impulse (Fig. 8's naive integrator); a switch
//!   without one (time of impact) is harmless and not reported.
//!
//! Non-finite values stop the replay or the backward at the op that made
//! them when the program checks them (`check_finite`): the error names the
//! kernel, the op's Rust line and, in backward, the step.
//!
//! Replays start from the state the recording kept (the fields as they were
//! before their first write), so the recording must keep state
//! (`Tape::new`, the frontend's `p.record()`).

use super::{Part, Tape};
use crate::backend::Backend;
use crate::error::{Error, Location};
use crate::field::ElemType;
use crate::tape::BackwardOptions;
use ds_passes::autodiff::forward::{JVP_SUFFIX, SWITCH_PREFIX};
use std::fmt;

/// An input field moved along a direction (one value per scalar element).
#[derive(Clone, Debug)]
pub struct Direction {
    pub field: String,
    pub values: Vec<f64>,
}

/// What [`Tape::diagnose`] looks at.
#[derive(Clone, Debug)]
pub struct DiagnoseOptions {
    /// The finite-difference step along the direction.
    pub step: f64,
    /// How far along the direction to look for switches.
    pub radius: f64,
    /// The nearest this many switch sites are checked for a jump.
    pub max_switches: usize,
    /// A switch is reported when the loss jumps across it by more than
    /// this times max(|loss|, |d loss| * distance).
    pub jump_tolerance: f64,
    /// The backward pass (a memory budget when the state is overwritten).
    pub backward: BackwardOptions,
}

impl Default for DiagnoseOptions {
    fn default() -> Self {
        DiagnoseOptions {
            step: 1e-4,
            radius: 1e-2,
            max_switches: 8,
            jump_tolerance: 1e-4,
            backward: BackwardOptions { memory_budget: Some(usize::MAX), ..Default::default() },
        }
    }
}

/// How the tangents' norm grows with the step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Growth {
    /// As step^exponent (the exponent fitted over the second half of the steps).
    Polynomial { exponent: f64 },
    /// As exp(rate * step).
    Exponential { rate: f64 },
}

/// A comparison that a move along the direction flips, with a jump of the loss.
#[derive(Clone, Debug)]
pub struct Switch {
    /// The step (of the recording's `end_step`s) and the launch.
    pub step: usize,
    pub launch: usize,
    pub kernel: String,
    /// The comparison's source location.
    pub location: Option<Location>,
    /// How far along the direction it flips.
    pub distance: f64,
    /// The loss's change across the flip beyond what its slopes on either
    /// side predict.
    pub jump: f64,
}

/// The diagnosis of one gradient along one direction.
#[derive(Clone, Debug)]
pub struct GradientReport {
    pub loss: f64,
    /// d loss along the direction: from the gradient (reverse mode), the
    /// tangents (forward mode) and central differences.
    pub reverse: f64,
    pub forward: f64,
    pub finite_difference: f64,
    /// The norm of the tangents of the state each step's launches wrote
    /// (the parts of the duals they wrote, read after each launch; the
    /// loss's excluded).
    pub tangent_norms: Vec<f64>,
    pub growth: Option<Growth>,
    /// The switches with a jump, nearest first.
    pub switches: Vec<Switch>,
    /// Switch sites within the radius (checked for a jump up to `max_switches`).
    pub switch_sites: usize,
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
}

impl GradientReport {
    /// The relative difference of the forward and reverse derivatives.
    pub fn forward_vs_reverse(&self) -> f64 {
        relative(self.forward, self.reverse)
    }
    /// The relative difference of the reverse derivative and finite differences.
    pub fn reverse_vs_finite_difference(&self) -> f64 {
        relative(self.reverse, self.finite_difference)
    }
}

impl fmt::Display for GradientReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "loss {:e}; d loss along the direction:", self.loss)?;
        writeln!(f, "  reverse mode       {:e}", self.reverse)?;
        writeln!(f, "  forward mode       {:e} (relative difference {:.1e})", self.forward, self.forward_vs_reverse())?;
        writeln!(
            f,
            "  finite differences {:e} (relative difference {:.1e})",
            self.finite_difference,
            self.reverse_vs_finite_difference()
        )?;
        match self.growth {
            Some(Growth::Polynomial { exponent }) => {
                let words = ["bounded", "linear", "quadratic", "cubic"];
                let named = words.get(exponent.round().max(0.0) as usize).filter(|_| (exponent - exponent.round()).abs() < 0.2);
                let kind = named.map_or(String::new(), |w| format!(" ({w})"));
                writeln!(f, "tangent norm grows as step^{exponent:.2}{kind} over {} steps", self.tangent_norms.len())?
            }
            Some(Growth::Exponential { rate }) => writeln!(
                f,
                "tangent norm grows exponentially, x{:.3} per step over {} steps",
                rate.exp(),
                self.tangent_norms.len()
            )?,
            None => writeln!(f, "tangent norm: too few steps with tangents to fit a growth")?,
        }
        for s in &self.switches {
            let at = s.location.as_ref().map_or("<unknown>".to_string(), |l| l.to_string());
            writeln!(
                f,
                "contact/branch at {at} switches at step {} ({}, {:e} along the direction): the loss jumps by {:e} there, which the gradient misses",
                s.step, s.kernel, s.distance, s.jump
            )?;
        }
        if self.switches.is_empty() {
            writeln!(f, "no switch with a jump within the radius ({} switch sites near)", self.switch_sites)?;
        }
        Ok(())
    }
}

/// Every element of a float field as f64.
fn read_f64<D: Backend>(p: &D, field: usize, start: usize, len: usize) -> Result<Vec<f64>, Error> {
    match p.field_infos()[field].elem {
        ElemType::F32 => {
            let mut out = vec![0f32; len];
            p.read(field, start, &mut out)?;
            Ok(out.into_iter().map(f64::from).collect())
        }
        ElemType::F64 => {
            let mut out = vec![0f64; len];
            p.read(field, start, &mut out)?;
            Ok(out)
        }
        ElemType::I32 => Err(Error::ElementType { field: p.field_infos()[field].name.clone(), holds: ElemType::I32, accessed: ElemType::F64 }),
    }
}

fn write_f64<D: Backend>(p: &mut D, field: usize, values: &[f64]) -> Result<(), Error> {
    match p.field_infos()[field].elem {
        ElemType::F32 => p.write(field, 0, &values.iter().map(|v| *v as f32).collect::<Vec<_>>()),
        _ => p.write(field, 0, values),
    }
}

/// The switch fields of the tangent kernels (`ds_switch_N`).
fn switch_sites<D: Backend>(p: &D) -> Vec<usize> {
    (0..p.field_infos().len()).filter(|f| p.field_infos()[*f].name.starts_with(SWITCH_PREFIX)).collect()
}

/// The field a direction moves and its dual, checked against the values.
fn seed_fields<D: Backend>(p: &D, d: &Direction) -> Result<(usize, usize), Error> {
    let f = p.field_index(&d.field)?;
    let info = &p.field_infos()[f];
    if d.values.len() != info.len() {
        return Err(Error::Length { field: d.field.clone(), expected: info.len(), given: d.values.len() });
    }
    let dual = info.dual.as_ref().ok_or_else(|| Error::NoDual { field: d.field.clone() })?;
    Ok((f, p.field_index(dual)?))
}

fn sum<D: Backend>(p: &D, field: usize) -> Result<f64, Error> {
    Ok(read_f64(p, field, 0, p.field_infos()[field].len())?.iter().sum())
}

/// Least-squares slope and coefficient of determination of y against x.
fn fit(x: &[f64], y: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let syy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    let slope = sxy / sxx.max(f64::MIN_POSITIVE);
    (slope, if syy > 0.0 { slope * sxy / syy } else { 1.0 })
}

/// The growth of `norms` (one per step): polynomial or exponential,
/// whichever fits log(norm) better over every step with a tangent.
pub fn growth(norms: &[f64]) -> Option<Growth> {
    let points: Vec<(f64, f64)> =
        norms.iter().enumerate().filter(|(_, n)| **n > 0.0 && n.is_finite()).map(|(s, n)| ((s + 1) as f64, n.ln())).collect();
    if points.len() < 4 {
        return None;
    }
    let (steps, logs): (Vec<f64>, Vec<f64>) = points.iter().copied().unzip();
    let log_steps: Vec<f64> = steps.iter().map(|s| s.ln()).collect();
    let (_, polynomial_fit) = fit(&log_steps, &logs);
    let (rate, exponential_fit) = fit(&steps, &logs);
    if exponential_fit > polynomial_fit && rate > 0.0 {
        return Some(Growth::Exponential { rate });
    }
    let half = points.len() / 2;
    let (exponent, _) = fit(&log_steps[half..], &logs[half..]);
    Some(Growth::Polynomial { exponent })
}

impl<D: Backend> Tape<D> {
    /// Diagnoses the gradient of `loss` along `direction`; see the module
    /// doc. Runs backward (leaving the adjoints as `backward` does), then
    /// replays the recording; the program ends in the recorded state.
    pub fn diagnose(
        &mut self,
        p: &mut D,
        loss: &str,
        direction: &[Direction],
        options: &DiagnoseOptions,
    ) -> Result<GradientReport, Error> {
        self.check_replayable(p)?;
        let loss_field = p.field_index(loss)?;
        let mut inputs = Vec::new();
        for d in direction {
            let (f, dual) = seed_fields(p, d)?;
            let grad = p.field_infos()[f].grad.as_ref().ok_or_else(|| Error::NoGradient { field: d.field.clone() })?;
            inputs.push((f, p.field_index(grad)?, dual, &d.values));
        }
        self.backward(p, loss, &options.backward)?;
        let mut reverse = 0.0;
        for (_, grad, _, v) in &inputs {
            reverse += read_f64(p, *grad, 0, v.len())?.iter().zip(v.iter()).map(|(g, v)| g * v).sum::<f64>();
        }
        // The inputs as the recording started.
        self.restore_initial(p)?;
        let base: Vec<Vec<f64>> =
            inputs.iter().map(|(f, _, _, v)| read_f64(p, *f, 0, v.len())).collect::<Result<_, _>>()?;
        let loss_at = |tape: &Self, p: &mut D, e: f64| -> Result<f64, Error> {
            tape.restore_initial(p)?;
            for ((f, _, _, v), x) in inputs.iter().zip(&base) {
                let moved: Vec<f64> = x.iter().zip(v.iter()).map(|(x, v)| x + e * v).collect();
                write_f64(p, *f, &moved)?;
            }
            tape.replay(p, false, |_, _| Ok(()))?;
            sum(p, loss_field)
        };
        let h = options.step;
        let (p2, p1, m1, m2) = (loss_at(self, p, 2.0 * h)?, loss_at(self, p, h)?, loss_at(self, p, -h)?, loss_at(self, p, -2.0 * h)?);
        let finite_difference = (8.0 * (p1 - m1) - (p2 - m2)) / (12.0 * h);
        // The tangents: every dual zero but the inputs', which hold v.
        let seeds: Vec<(usize, &[f64])> = inputs.iter().map(|(_, _, dual, v)| (*dual, v.as_slice())).collect();
        self.seed_tangents(p, &seeds)?;
        for (f, x) in inputs.iter().map(|i| i.0).zip(&base) {
            write_f64(p, f, x)?;
        }
        let sites = switch_sites(p);
        let steps = self.steps();
        let step_of = |i: usize| steps.iter().position(|s| s.contains(&i)).unwrap_or(i);
        let mut step_norms = vec![0.0; steps.len()];
        // (distance, launch, site) of every switch within the radius.
        let mut near: Vec<(f64, usize, usize)> = Vec::new();
        self.replay(p, true, |p, i| {
            for &s in &sites {
                let d = read_f64(p, s, 0, 1)?[0];
                if d <= options.radius {
                    near.push((d, i, s));
                }
            }
            for (f, part) in self.records[i].writes.iter().filter(|(f, _)| *f != loss_field) {
                let Some(dual) = p.field_infos()[*f].dual.as_ref().and_then(|d| p.field_index(d).ok()) else { continue };
                let info = &p.field_infos()[dual];
                let (start, len) = match part {
                    Part::All => (0, info.len()),
                    Part::Row(k) => {
                        let row = info.len() / info.shape.first().copied().unwrap_or(1).max(1);
                        (*k as usize * row, row)
                    }
                };
                step_norms[step_of(i)] += read_f64(p, dual, start, len)?.iter().map(|x| x * x).sum::<f64>();
            }
            Ok(())
        })?;
        let loss_dual = p.field_infos()[loss_field].dual.as_ref().ok_or_else(|| Error::NoDual { field: loss.into() })?;
        let forward = sum(p, p.field_index(loss_dual)?)?;
        let loss_value = sum(p, loss_field)?;
        let tangent_norms: Vec<f64> = step_norms.iter().map(|s| s.sqrt()).collect();
        // The nearest switch of each site, nearest first, checked for a jump.
        near.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut seen = Vec::new();
        near.retain(|(_, _, s)| !seen.contains(s) && {
            seen.push(*s);
            true
        });
        let switch_sites = near.len();
        let mut switches = Vec::new();
        for &(distance, launch, site) in near.iter().take(options.max_switches) {
            let delta = 0.05 * distance.max(options.step);
            let at = |k: f64| distance + k * delta;
            let (l2, l1, r1, r2) = (loss_at(self, p, at(-2.0))?, loss_at(self, p, at(-1.0))?, loss_at(self, p, at(1.0))?, loss_at(self, p, at(2.0))?);
            // The change across the flip less the slopes' share on each side.
            let jump = (r1 - l1) - (l1 - l2) - (r2 - r1);
            if jump.abs() > options.jump_tolerance * loss_value.abs().max(forward.abs() * distance).max(f64::MIN_POSITIVE) {
                switches.push(Switch {
                    step: step_of(launch),
                    launch,
                    kernel: self.records[launch].kernel.clone(),
                    location: p.field_infos()[site].declared_at.clone(),
                    distance,
                    jump,
                });
            }
        }
        // End in the recorded state.
        loss_at(self, p, 0.0)?;
        Ok(GradientReport {
            loss: loss_value,
            reverse,
            forward,
            finite_difference,
            growth: growth(&tangent_norms),
            tangent_norms,
            switches,
            switch_sites,
        })
    }

    /// Forward mode across the recorded launches: restores the state the
    /// recording kept, zeroes every dual (the adjoints' excepted), writes
    /// `seeds` into the duals of their fields and runs the recorded launches
    /// again with their tangent kernels, in launch order. Afterwards every
    /// field is as the recording left it and its dual holds its directional
    /// derivative along the seeds (J v for every output at once).
    pub fn jvp(&mut self, p: &mut D, seeds: &[Direction]) -> Result<(), Error> {
        self.check_replayable(p)?;
        let duals: Vec<(usize, &[f64])> =
            seeds.iter().map(|s| Ok((seed_fields(p, s)?.1, s.values.as_slice()))).collect::<Result<_, Error>>()?;
        self.seed_tangents(p, &duals)?;
        self.replay(p, true, |_, _| Ok(()))
    }

    /// A replay needs the program recorded on and the state the recording kept.
    fn check_replayable(&self, p: &D) -> Result<(), Error> {
        self.check_program(p)?;
        if !self.keep_state {
            let field = self.records.iter().flat_map(|r| &r.writes).next().map(|(f, _)| p.field_infos()[*f].name.clone());
            return Err(Error::StateNotKept { field: field.unwrap_or_default() });
        }
        Ok(())
    }

    /// Restores the recorded state, zeroes the dual of every field but the
    /// adjoints, and writes `seeds` (dual field, values) into theirs.
    fn seed_tangents(&self, p: &mut D, seeds: &[(usize, &[f64])]) -> Result<(), Error> {
        self.restore_initial(p)?;
        let adjoints = super::adjoint_fields(p);
        let duals: Vec<usize> = (0..p.field_infos().len())
            .filter(|f| !adjoints.contains(f))
            .filter_map(|f| p.field_infos()[f].dual.as_ref().and_then(|d| p.field_index(d).ok()))
            .collect();
        for d in duals {
            p.zero(d)?;
        }
        for (dual, v) in seeds {
            write_f64(p, *dual, v)?;
        }
        Ok(())
    }

    /// A failure of launch `i` of a replay, naming the launch and its step.
    fn in_replay(&self, i: usize, e: Error) -> Error {
        Error::InReplay { step: self.step_of(i), launch: i, kernel: self.records[i].kernel.clone(), source: Box::new(e) }
    }

    /// Puts every field the recording wrote back as it was before.
    fn restore_initial(&self, p: &mut D) -> Result<(), Error> {
        for (f, saved) in &self.initial {
            p.restore(*f, saved)?;
        }
        Ok(())
    }

    /// Runs the recorded launches again in order (their tangent kernels when
    /// `tangent`, the switch fields reset to +inf before each), calling
    /// `after(p, i)` after launch `i`.
    fn replay(&self, p: &mut D, tangent: bool, mut after: impl FnMut(&mut D, usize) -> Result<(), Error>) -> Result<(), Error> {
        let sites = switch_sites(p);
        for (i, r) in self.records.iter().enumerate() {
            if tangent {
                for &s in &sites {
                    p.fill(s, f64::INFINITY)?;
                }
                let kernel = format!("{}{JVP_SUFFIX}", r.kernel);
                p.launch(&kernel, &r.args).map_err(|e| match e {
                    Error::UnknownKernel { .. } => Error::NoTangentKernel { kernel: r.kernel.clone() },
                    e => self.in_replay(i, e),
                })?;
            } else {
                p.launch(&r.kernel, &r.args).map_err(|e| self.in_replay(i, e))?;
            }
            after(p, i)?;
        }
        Ok(())
    }
}
