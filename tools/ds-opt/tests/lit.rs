//! The lit harness: every `test/lit/**/*.mlir` file runs in-process following
//! its first line, `// RUN: ds-opt %s FLAGS [| ds-opt FLAGS ...]`, and its
//! output is compared with the insta snapshot beside it (`NAME.mlir.snap`).
//! Every stage must exit with status 0 (`--verify-diagnostics` files pass when
//! the expected diagnostics, and only they, are produced).
//!
//! `LIT_FILTER=autodiff/rules` runs only the files whose path (relative to
//! `test/lit`) contains that text; several filters are separated by commas.
//! A file split by `// -----` lines is compared case by case before the
//! snapshot is: a failure names the file, the case's line and the one-line
//! comment that says what the case shows.

use crate::harness::{check_snapshot, shell_words};
use std::path::{Path, PathBuf};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

pub fn lit_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).expect("readable test dir").flatten().collect();
        entries.sort_by_key(|e| e.path());
        for e in entries {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "mlir") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&workspace_root().join("test/lit"), &mut out);
    out
}

/// The lit files `LIT_FILTER` selects (all of them when it is unset or empty).
pub fn selected_lit_files() -> Vec<PathBuf> {
    let files = lit_files();
    let filter = std::env::var("LIT_FILTER").unwrap_or_default();
    let filters: Vec<&str> = filter.split(',').map(str::trim).filter(|f| !f.is_empty()).collect();
    if filters.is_empty() {
        return files;
    }
    let root = workspace_root().join("test/lit");
    let selected: Vec<PathBuf> = files
        .into_iter()
        .filter(|f| {
            let rel = f.strip_prefix(&root).unwrap_or(f).to_string_lossy().to_string();
            filters.iter().any(|x| rel.contains(x))
        })
        .collect();
    assert!(!selected.is_empty(), "LIT_FILTER={filter} matches no file of test/lit");
    selected
}

/// The separator of `--split-input-file` cases, in inputs and in outputs.
const SPLIT: &str = "// -----";

/// The cases of a lit file: the line of the one-line comment saying what
/// each shows (1-based), and that comment: the first line of the last
/// comment paragraph before the case's first line of code (RUN and
/// `expected-` lines do not count). A case without one has its first line
/// and an empty comment.
pub fn cases(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut start = Some(1);
    let mut paragraph: Option<(usize, String)> = None;
    let mut description: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line == SPLIT {
            if let Some(s) = start.take() {
                out.push(description.take().unwrap_or((s, String::new())));
            }
            (start, paragraph) = (Some(n + 2), None);
            continue;
        }
        if start.is_none() || description.is_some() {
            continue;
        }
        match line.strip_prefix("//").map(str::trim) {
            Some(c) if c.starts_with("RUN:") || c.starts_with("expected-") => {}
            Some(c) => {
                paragraph.get_or_insert_with(|| (n + 1, c.to_string()));
            }
            None if line.is_empty() => paragraph = None,
            None => description = Some(paragraph.take().unwrap_or((start.unwrap_or(n + 1), String::new()))),
        }
    }
    if let Some(s) = start {
        out.push(description.unwrap_or((s, String::new())));
    }
    out
}

/// The contents of an insta snapshot file, without its header.
fn snapshot_contents(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let body = text.strip_prefix("---\n")?;
    let end = body.find("\n---\n")?;
    Some(body[end + "\n---\n".len()..].to_string())
}

/// How `output` differs from the snapshot `old`, case by case: one line per
/// differing case, naming the file, the case's line and its comment, with
/// the first line that differs.
fn case_differences(rel: &str, input: &str, old: &str, output: &str) -> Vec<String> {
    let split = |t: &str| -> Vec<String> {
        let mut parts = vec![String::new()];
        for line in t.lines() {
            if line.trim() == SPLIT {
                parts.push(String::new());
            } else {
                let last = parts.last_mut().expect("one part");
                last.push_str(line.trim_end());
                last.push('\n');
            }
        }
        parts.into_iter().map(|p| p.trim().to_string()).collect()
    };
    let (old, new, cases) = (split(old), split(output), cases(input));
    if old.len() != new.len() {
        return vec![format!("{rel}: {} cases, the snapshot has {}", new.len(), old.len())];
    }
    let mut out = Vec::new();
    for (k, (a, b)) in old.iter().zip(&new).enumerate() {
        if a == b {
            continue;
        }
        let (line, what) = cases.get(k).cloned().unwrap_or((0, String::new()));
        let first = a.lines().zip(b.lines()).position(|(x, y)| x != y).unwrap_or(a.lines().count().min(b.lines().count()));
        let (was, now) = (a.lines().nth(first).unwrap_or("(end)"), b.lines().nth(first).unwrap_or("(end)"));
        out.push(format!("{rel}:{line}: case {} ({what}) differs from the snapshot:\n    - {was}\n    + {now}", k + 1));
    }
    out
}


/// The stages of a RUN line: the ds-opt arguments of each piped command.
pub fn run_stages(file: &Path, rel: &str) -> Result<Vec<Vec<String>>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let first = text.lines().next().unwrap_or_default();
    let cmd = first
        .strip_prefix("// RUN:")
        .ok_or_else(|| format!("{rel}: first line must be `// RUN: ds-opt %s ...`"))?;
    cmd.split('|')
        .map(|stage| {
            let words = shell_words(stage);
            match words.split_first() {
                Some((tool, args)) if tool == "ds-opt" => {
                    Ok(args.iter().map(|a| a.replace("%s", rel)).collect())
                }
                _ => Err(format!("{rel}: every RUN stage must start with ds-opt")),
            }
        })
        .collect()
}

/// Runs the stages, piping stdout to the next stage's stdin. The result is
/// the last stage's stdout followed by its stderr.
pub fn run_pipeline(stages: &[Vec<String>]) -> Result<String, String> {
    let mut input = String::new();
    let mut last_stderr = String::new();
    for args in stages {
        let stdin = std::mem::take(&mut input);
        let out = ds_opt::run(args, || Ok(stdin));
        if out.code != 0 {
            return Err(format!("`ds-opt {}` exited with {}:\n{}", args.join(" "), out.code, out.stderr));
        }
        input = out.stdout;
        last_stderr = out.stderr;
    }
    Ok(input + &last_stderr)
}

#[test]
fn lit_snapshots() {
    let root = workspace_root();
    std::env::set_current_dir(&root).expect("cd to the workspace root");
    let mut failures = Vec::new();
    let files = selected_lit_files();
    assert!(files.len() >= 3 || std::env::var_os("LIT_FILTER").is_some(), "lit files found: {files:?}");
    eprintln!("lit: {} files", files.len());
    for file in files {
        let rel = file.strip_prefix(&root).expect("inside the workspace").to_string_lossy().to_string();
        let result = run_stages(&file, &rel).and_then(|s| run_pipeline(&s));
        let output = match result {
            Ok(o) => o,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let name = file.file_name().expect("file name").to_string_lossy().to_string();
        if let Some(old) = snapshot_contents(&file.with_file_name(format!("{name}.snap"))) {
            let input = std::fs::read_to_string(&file).expect("readable");
            failures.extend(case_differences(&rel, &input, &old, &output));
        }
        failures.extend(check_snapshot(&file, &rel, &output));
    }
    assert!(failures.is_empty(), "lit failures:\n{}", failures.join("\n"));
}
