//! `ds-bench fuzz [--runs N] [--seed S] [--save DIR] [--jobs J] [--timeout SECS]`:
//! mutates every lit file (`test/lit/**/*.mlir`) and kernel file
//! (`examples/kernels/*.mlir`, `test/kernels/*.mlir`) with `ds_opt::mutate`
//! and runs each mutant through one target, round robin: ds-opt with
//! `--ds-verify`, `--ds-autodiff`, `--ds-to-llvm-cpu`, `--ds-to-nvvm{chip=sm_90}`
//! (all with `--split-input-file`), or the runtime compile
//! (`Program::with_options` with autodiff and bounds checks, per chunk).
//!
//! Each run is a subprocess (`ds-bench fuzz-one TARGET FILE`), so a crash
//! (a signal, a panic, an "internal error" diagnostic) is caught and counted,
//! and a run past the timeout (default 20 s) is killed and counted as a hang.
//! Errors in the input are the expected outcome. Run `i` mutates with the seed
//! `S + i`, so one run reproduces alone; crashing and hanging inputs are saved
//! under `--save DIR` (default `target/fuzz`) as `RUN-TARGET.mlir` with the
//! command that reproduces them. Prints `runs: N, crashes: C, hangs: H` last.

use ds_opt::mutate::{Rng, mutated};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What a mutant is run through.
#[derive(Clone, Copy, Debug)]
enum Target {
    Verify,
    Autodiff,
    LlvmCpu,
    Nvvm,
    Runtime,
}

const TARGETS: [Target; 5] = [Target::Verify, Target::Autodiff, Target::LlvmCpu, Target::Nvvm, Target::Runtime];

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Verify => "ds-verify",
            Target::Autodiff => "ds-autodiff",
            Target::LlvmCpu => "ds-to-llvm-cpu",
            Target::Nvvm => "ds-to-nvvm",
            Target::Runtime => "runtime",
        }
    }
    fn parse(name: &str) -> Option<Target> {
        TARGETS.into_iter().find(|t| t.name() == name)
    }
    /// The ds-opt pass flag, for the ds-opt targets.
    fn flag(self) -> Option<&'static str> {
        match self {
            Target::Verify => Some("--ds-verify"),
            Target::Autodiff => Some("--ds-autodiff"),
            Target::LlvmCpu => Some("--ds-to-llvm-cpu"),
            Target::Nvvm => Some("--ds-to-nvvm{chip=sm_90}"),
            Target::Runtime => None,
        }
    }
}

struct Options {
    runs: usize,
    seed: u64,
    save: PathBuf,
    jobs: usize,
    timeout: Duration,
}

fn value<'a>(args: &'a [String], key: &str) -> Option<&'a str> {
    args.iter().position(|a| a == key).and_then(|i| args.get(i + 1)).map(|s| s.as_str())
}

fn parse_options(args: &[String], root: &Path) -> Result<Options, String> {
    let num = |key: &str, default: u64| -> Result<u64, String> {
        value(args, key).map_or(Ok(default), |v| v.parse().map_err(|_| format!("{key} {v}: expected a number")))
    };
    Ok(Options {
        runs: num("--runs", 500)? as usize,
        seed: num("--seed", 0x9E37_79B9_7F4A_7C15)?,
        save: value(args, "--save").map_or_else(|| root.join("target/fuzz"), PathBuf::from),
        jobs: num("--jobs", 1)?.max(1) as usize,
        timeout: Duration::from_secs(num("--timeout", 20)?),
    })
}

/// The workspace root (benches/ is one level below it).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("benches/ is in the workspace").to_path_buf()
}

/// The files mutated: lit files and kernel files, sorted.
fn corpus(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["test/lit", "examples/kernels", "test/kernels"].iter().map(|d| root.join(d)).collect();
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        for path in std::fs::read_dir(&dir).into_iter().flatten().flatten().map(|e| e.path()) {
            match (path.is_dir(), path.extension().is_some_and(|x| x == "mlir")) {
                (true, _) => dirs.push(path),
                (false, true) => files.push(path),
                (false, false) => {}
            }
        }
    }
    files.sort();
    files
}

enum Verdict {
    Ok,
    Crash(String),
    Hang,
}

/// Runs `ds-bench fuzz-one TARGET FILE` with a timeout.
fn run_one(exe: &Path, target: Target, file: &Path, timeout: Duration) -> Verdict {
    let child = Command::new(exe)
        .arg("fuzz-one")
        .arg(target.name())
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Verdict::Crash(format!("cannot start: {e}")),
    };
    // Read stderr on a thread, so a chatty child cannot block on a full pipe.
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).ok();
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() > timeout => {
                child.kill().ok();
                child.wait().ok();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    let stderr = reader.join().unwrap_or_default();
    match status {
        None => Verdict::Hang,
        Some(s) if matches!(s.code(), Some(0 | 1)) && !stderr.contains("internal error") => Verdict::Ok,
        Some(s) => Verdict::Crash(format!("{s}\n{}", tail(&stderr, 4000))),
    }
}

fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(s.len());
    &s[start..]
}

pub fn run(args: &[String]) -> Result<(), String> {
    let root = root();
    let opts = parse_options(args, &root)?;
    let files = corpus(&root);
    if files.is_empty() {
        return Err(format!("no .mlir files under {}", root.display()));
    }
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(&root).unwrap_or(f).to_string_lossy().replace('/', "_");
            std::fs::read_to_string(f).map(|t| (rel, t)).map_err(|e| format!("{}: {e}", f.display()))
        })
        .collect::<Result<_, _>>()?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find ds-bench itself: {e}"))?;
    let scratch = std::env::temp_dir().join(format!("ds-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let next = AtomicUsize::new(0);
    let (crashes, hangs) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let log = Mutex::new(());
    std::thread::scope(|s| {
        for _ in 0..opts.jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= opts.runs {
                        break;
                    }
                    let (name, text) = &texts[i % texts.len()];
                    let target = TARGETS[(i / texts.len()) % TARGETS.len()];
                    let input = mutated(text, &mut Rng(opts.seed.wrapping_add(i as u64) | 1));
                    let file = scratch.join(format!("{i}-{name}"));
                    if std::fs::write(&file, &input).is_err() {
                        continue;
                    }
                    let verdict = run_one(&exe, target, &file, opts.timeout);
                    std::fs::remove_file(&file).ok();
                    let (kind, detail) = match verdict {
                        Verdict::Ok => continue,
                        Verdict::Crash(d) => {
                            crashes.fetch_add(1, Ordering::Relaxed);
                            ("crash", d)
                        }
                        Verdict::Hang => {
                            hangs.fetch_add(1, Ordering::Relaxed);
                            ("hang", format!("no result within {:?}", opts.timeout))
                        }
                    };
                    let saved = opts.save.join(format!("{i}-{}-{name}", target.name()));
                    let repro = format!("ds-bench fuzz-one {} {}", target.name(), saved.display());
                    std::fs::create_dir_all(&opts.save).ok();
                    std::fs::write(&saved, &input).ok();
                    let _guard = log.lock();
                    println!("{kind}: run {i} ({name} through {}), saved as {}; reproduce: {repro}\n{detail}", target.name(), saved.display());
                }
            });
        }
    });
    std::fs::remove_dir_all(&scratch).ok();
    let (c, h) = (crashes.into_inner(), hangs.into_inner());
    println!("files: {}", texts.len());
    println!("runs: {}, crashes: {c}, hangs: {h}", opts.runs);
    if c + h > 0 { Err(format!("{c} crashes and {h} hangs")) } else { Ok(()) }
}

/// `ds-bench fuzz-one TARGET FILE`: one input through one target, in this
/// process. Exit status 0 or 1 (errors in the input are fine); a crash shows
/// as a signal, a panic (101) or an "internal error" on stderr.
pub fn run_one_here(args: &[String]) -> Result<(), String> {
    let (Some(target), Some(file)) = (args.first().and_then(|t| Target::parse(t)), args.get(1)) else {
        return Err(format!(
            "usage: ds-bench fuzz-one {} FILE",
            TARGETS.iter().map(|t| t.name()).collect::<Vec<_>>().join("|")
        ));
    };
    match target.flag() {
        Some(flag) => {
            let args: Vec<String> = [file.as_str(), "--split-input-file", flag].iter().map(|s| s.to_string()).collect();
            let out = ds_opt::run(&args, || Ok(String::new()));
            eprint!("{}", out.stderr);
            std::process::exit(out.code.min(1));
        }
        None => {
            let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
            let options = ds_runtime::CompileOptions { autodiff: true, check_bounds: true, ..Default::default() };
            let mut failed = false;
            for (_, chunk) in ds_opt::split_input(&text) {
                if let Err(e) = ds_runtime::Program::with_options(chunk, file, &options) {
                    eprintln!("{e}");
                    failed = true;
                }
            }
            std::process::exit(i32::from(failed));
        }
    }
}
