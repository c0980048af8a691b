//! Progress and results of a run: `iter N loss X` lines, a progress bar, the
//! pictures written, and a final summary.

use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

/// What a run produced.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub losses: Vec<f64>,
    pub final_loss: f64,
    /// Named results (rest lengths, gradients, ...), printed after the run.
    pub results: Vec<(String, String)>,
    pub pictures: Vec<PathBuf>,
}

/// Prints progress while an example runs: `iter N loss X` on stdout, a bar on
/// stderr (drawn only on a terminal).
pub struct Reporter {
    verbose: bool,
    bar: Option<ProgressBar>,
}

impl Reporter {
    pub fn new(verbose: bool) -> Reporter {
        Reporter { verbose, bar: None }
    }

    /// Starts a bar of `total` iterations.
    pub fn start(&mut self, total: usize) {
        if self.verbose {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}").expect("valid template"));
            self.bar = Some(bar);
        }
    }

    /// Reports one iteration's loss.
    pub fn iteration(&mut self, iter: usize, loss: f64) {
        if let Some(bar) = &self.bar {
            bar.suspend(|| println!("iter {iter} loss {loss:.6e}"));
            bar.set_message(format!("loss {loss:.3e}"));
            bar.inc(1);
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
