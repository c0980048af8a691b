//! The lit harness: every `test/lit/**/*.mlir` file runs in-process following
//! its first line, `// RUN: ds-opt %s FLAGS [| ds-opt FLAGS ...]`, and its
//! output is compared with the insta snapshot beside it (`NAME.mlir.snap`).
//! Every stage must exit with status 0 (`--verify-diagnostics` files pass when
//! the expected diagnostics, and only they, are produced).

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

/// Splits a command line into words, honouring single and double quotes.
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for ch in line.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(ch);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
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
    let files = lit_files();
    assert!(files.len() >= 3, "lit files found: {files:?}");
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
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(file.parent().expect("file in a dir"));
        settings.set_prepend_module_to_snapshot(false);
        settings.set_input_file(&file);
        settings.set_omit_expression(true);
        let name = file.file_name().expect("file name").to_string_lossy().to_string();
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            settings.bind(|| insta::assert_snapshot!(name.clone(), output));
        }));
        if checked.is_err() {
            failures.push(format!("{rel}: output differs from {name}.snap"));
        }
    }
    assert!(failures.is_empty(), "lit failures:\n{}", failures.join("\n"));
}
