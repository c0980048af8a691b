//! Progress and results of a run: one `iter N loss X fwd_ms A bwd_ms B` line
//! per iteration, a progress bar on a terminal, the times of every iteration
//! (what `diffsim bench` takes its medians from), and the files written.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::PathBuf;
use std::time::Instant;

/// What a run produced.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub losses: Vec<f64>,
    pub final_loss: f64,
    /// Named results (rest lengths, gradients, ...), printed after the run.
    pub results: Vec<(String, String)>,
    /// Pictures and other files written.
    pub files: Vec<PathBuf>,
    /// The bytes one iteration must read and write at least (for
    /// `diffsim bench`'s roofline: that over a memcpy's bandwidth).
    pub moved_bytes: Option<f64>,
}

/// Milliseconds between laps.
pub struct Stopwatch(Instant);

impl Stopwatch {
    pub fn start() -> Stopwatch {
        Stopwatch(Instant::now())
    }

    /// Milliseconds since the start or the last lap.
    pub fn lap(&mut self) -> f64 {
        let now = Instant::now();
        let ms = (now - self.0).as_secs_f64() * 1e3;
        self.0 = now;
        ms
    }
}

/// One iteration's loss and times: forward, backward (both measured by the
/// example) and the whole iteration (since the previous one: forward,
/// backward, the update and whatever the host did).
#[derive(Clone, Copy, Debug, Default)]
pub struct Iteration {
    pub loss: f64,
    pub fwd_ms: f64,
    pub bwd_ms: f64,
    pub iter_ms: f64,
}

/// Prints progress while an example runs and keeps every iteration's times.
pub struct Reporter {
    print: bool,
    bar: Option<ProgressBar>,
    last: Instant,
    /// Iterations after which the kernel profiler is reset and turned on
    /// (`diffsim bench`'s warm-up); it is turned off after the last one.
    profile_after: Option<usize>,
    total: usize,
    pub iterations: Vec<Iteration>,
}

impl Reporter {
    /// Prints each iteration when `print` (and draws a bar on a terminal).
    pub fn new(print: bool) -> Reporter {
        Reporter { print, bar: None, last: Instant::now(), profile_after: None, total: 0, iterations: Vec::new() }
    }

    /// A silent reporter that profiles kernels after `warmup` iterations.
    pub fn profiling_after(warmup: usize) -> Reporter {
        let mut r = Reporter::new(false);
        r.profile_after = Some(warmup);
        r
    }

    /// Starts a bar of `total` iterations.
    pub fn start(&mut self, total: usize) {
        self.total = total;
        if self.print {
            let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}").expect("valid template"));
            self.bar = Some(bar);
        }
        self.last = Instant::now();
        if self.profile_after == Some(0) {
            ds_runtime::profiler::reset();
            ds_runtime::profiler::enable(true);
        }
    }

    /// Reports one iteration: its loss and the forward and backward times.
    pub fn iteration(&mut self, iter: usize, loss: f64, fwd_ms: f64, bwd_ms: f64) {
        let iter_ms = self.last.elapsed().as_secs_f64() * 1e3;
        self.iterations.push(Iteration { loss, fwd_ms, bwd_ms, iter_ms });
        self.step(&format!("iter {iter} loss {loss:.6e} fwd_ms {fwd_ms:.3} bwd_ms {bwd_ms:.3}"));
        if let Some(bar) = &self.bar {
            bar.set_message(format!("loss {loss:.3e}"));
        }
        if self.profile_after == Some(self.iterations.len()) {
            ds_runtime::profiler::reset();
            ds_runtime::profiler::enable(true);
        }
        if self.profile_after.is_some() && self.iterations.len() == self.total {
            ds_runtime::profiler::enable(false);
        }
        self.last = Instant::now();
    }

    /// Prints one line of progress (above the bar) and moves the bar on:
    /// each iteration's, and the steps of studies that are not optimization
    /// iterations (a training run of `fig9`, say).
    pub fn step(&mut self, line: &str) {
        if self.print {
            match &self.bar {
                Some(bar) => {
                    bar.suspend(|| println!("{line}"));
                    bar.inc(1);
                }
                None => println!("{line}"),
            }
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
