//! The ds-run test binary: the snapshot tests of `test/run`, appendix C and
//! mass_spring_simple through ds-run against the Rust programs, the error
//! cases, and the built binary's exit status.

mod binary;
mod errors;
mod examples;
mod snapshots;
#[path = "../../ds-opt/tests/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// An absolute path in the workspace.
pub fn path(rel: &str) -> String {
    workspace_root().join(rel).to_string_lossy().into_owned()
}

/// A fresh scratch folder for one test.
pub fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ds-run").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

pub fn file(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

/// Runs ds-run in-process.
pub fn ds_run(args: &[&str]) -> Result<ds_run::Output, ds_run::Error> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    ds_run::run(&args)
}

/// The values of a field printed by a run.
pub fn printed(out: &ds_run::Output, label: &str) -> Vec<f64> {
    out.printed.iter().find(|f| f.label == label).unwrap_or_else(|| panic!("{label} not printed")).values.to_f64()
}
