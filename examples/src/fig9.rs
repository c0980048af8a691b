//! Paper Fig. 9: time of impact helps optimization. mass_spring (robot 1) and
//! rigid_body (robot 0) are each trained `runs` times (seeds 0, 1, ...) with
//! and without the time-of-impact integrator, with the examples' own
//! optimizers and iteration counts (`--iters` overrides them); the losses per
//! iteration are summarized by their mean and their spread (min to max over
//! the runs) in one picture, and the final losses are printed. The paper's
//! claim: with TOI the final losses are lower on average.

use crate::report::{Outcome, Reporter};
use crate::{Arch, RunError, RunOptions, Setting, Simulation, mass_spring, plot, rigid_body};
use diffsim::{Backend, ProgramBuilder};

/// fig9's settings.
pub const SETTINGS: &[Setting] = &[Setting { name: "runs", default: "5", help: "training runs per simulator and integrator" }];

/// `runs` trainings of `S` from seeds 0, 1, ... (one program, built once):
/// the losses of each.
type Train = fn(&RunOptions, usize, &mut Reporter) -> Result<Vec<Vec<f64>>, RunError>;

fn train<S: Simulation>(opts: &RunOptions, runs: usize, report: &mut Reporter) -> Result<Vec<Vec<f64>>, RunError> {
    let opts = opts.with_settings(S::SETTINGS)?;
    let mut pb = ProgramBuilder::new();
    let sim = S::declare(&mut pb, &opts)?;
    match opts.arch {
        Arch::Cpu => train_on(&sim, &mut pb.build()?, opts, runs, report),
        Arch::Cuda => train_on(&sim, &mut pb.build_cuda()?, opts, runs, report),
    }
}

fn train_on<S: Simulation, B: Backend>(sim: &S, p: &mut B, mut opts: RunOptions, runs: usize, report: &mut Reporter) -> Result<Vec<Vec<f64>>, RunError> {
    (0..runs as u64)
        .map(|seed| {
            opts.seed = seed;
            p.seed_random(seed);
            sim.init(p, &opts)?;
            let outcome = sim.run(p, &opts, &mut Reporter::new(false))?;
            let last = outcome.losses.last().copied().unwrap_or(f64::NAN);
            report.step(&format!("seed {seed}: {} iterations, last loss {last:.6e}", outcome.losses.len()));
            Ok(outcome.losses)
        })
        .collect()
}

/// The simulators of the study and the robots of Fig. 9.
const STUDY: [(&str, Train, &str); 2] = [("mass_spring", train::<mass_spring::MassSpring>, "1"), ("rigid_body", train::<rigid_body::RigidBody>, "0")];

/// Mean, min and max over runs at each iteration (the runs' common length).
fn summary(runs: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let len = runs.iter().map(Vec::len).min().unwrap_or(0);
    let at = |i: usize| runs.iter().map(move |r| r[i]);
    let mean = (0..len).map(|i| at(i).sum::<f64>() / runs.len() as f64).collect();
    let lo = (0..len).map(|i| at(i).fold(f64::INFINITY, f64::min)).collect();
    let hi = (0..len).map(|i| at(i).fold(f64::NEG_INFINITY, f64::max)).collect();
    (mean, lo, hi)
}

/// Runs the study (the `fig9` example).
pub fn run(opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, RunError> {
    let opts = opts.with_settings(SETTINGS)?;
    let runs: usize = opts.setting("runs")?;
    let mut out = Outcome::default();
    let mut charts = Vec::new();
    report.start(STUDY.len() * 2 * (runs + 1));
    for (name, train_runs, robot) in STUDY {
        let mut series = Vec::new();
        for (toi, color) in [("true", plot::BLUE), ("false", plot::RED)] {
            let mut o = RunOptions::new(&opts.out);
            (o.iters, o.arch, o.pictures) = (opts.iters, opts.arch, false);
            o.settings = vec![("robot".into(), robot.into()), ("toi".into(), toi.into())];
            report.step(&format!("{name} robot {robot}, toi {toi}:"));
            let losses = train_runs(&o, runs, report)?;
            let finals: Vec<f64> = losses.iter().filter_map(|l| l.last().copied()).collect();
            let mean_final = finals.iter().sum::<f64>() / finals.len().max(1) as f64;
            let label = if toi == "true" { "with TOI" } else { "without TOI" };
            out.results.push((format!("{name} {label}: final losses"), format!("{finals:.5?}")));
            out.results.push((format!("{name} {label}: mean final loss"), format!("{mean_final:.6}")));
            if out.losses.is_empty() {
                // The first simulator's TOI runs stand for the study.
                (out.losses, out.final_loss) = (summary(&losses).0, if finals.is_empty() { 0.0 } else { mean_final });
            }
            let (mean, lo, hi) = summary(&losses);
            let xs = (0..mean.len()).map(|i| i as f64).collect();
            series.push(plot::Series { band: Some((lo, hi)), ..plot::Series::new(format!("{label} (mean, min-max of {runs})"), xs, mean, color) });
        }
        charts.push(plot::Chart {
            title: format!("Fig. 9: {name} (robot {robot})"),
            x_label: "iteration".into(),
            y_label: "loss".into(),
            series,
            scale: plot::Scale::Linear,
        });
    }
    report.finish();
    if opts.pictures {
        let path = opts.out.join("fig9.png");
        plot::draw_panels(&path, &charts)?;
        out.files.push(path);
    }
    Ok(out)
}
