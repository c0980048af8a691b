//! `test/run/*.mlir`: each file starts with one or more RUN lines,
//! `// RUN: ds-run %s ARGS`, run in-process from the workspace root. The
//! snapshot beside the file (`NAME.mlir.snap`) holds, per RUN line, the
//! command, then what it printed, or `[exit 1]` and its error.
//! (Future: the lit harness of tools/ds-opt runs these RUN lines itself.)

use crate::harness::{check_snapshot, shell_words};
use crate::workspace_root;
use std::path::{Path, PathBuf};

fn run_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(workspace_root().join("test/run"))
        .expect("test/run")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "mlir"))
        .collect();
    files.sort();
    files
}


/// The RUN lines at the top of a file, as ds-run arguments.
fn run_lines(file: &Path, rel: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let mut runs = Vec::new();
    for line in text.lines().map_while(|l| l.strip_prefix("// RUN:")) {
        let words = shell_words(line);
        match words.split_first() {
            Some((tool, args)) if tool == "ds-run" => {
                runs.push((line.trim().to_string(), args.iter().map(|a| a.replace("%s", rel)).collect()))
            }
            _ => return Err(format!("{rel}: a RUN line must start with ds-run: `{line}`")),
        }
    }
    if runs.is_empty() {
        return Err(format!("{rel}: the first line must be `// RUN: ds-run %s ...`"));
    }
    Ok(runs)
}

#[test]
fn run_snapshots() {
    let root = workspace_root();
    std::env::set_current_dir(&root).expect("cd to the workspace root");
    let files = run_files();
    assert!(files.len() >= 3, "test/run files: {files:?}");
    let mut failures = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&root).expect("inside the workspace").to_string_lossy().to_string();
        let runs = match run_lines(&file, &rel) {
            Ok(r) => r,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let mut output = String::new();
        for (line, args) in runs {
            output.push_str(&format!("$ {line}\n"));
            match ds_run::run(&args) {
                Ok(out) => output.push_str(&out.stdout),
                Err(e) => output.push_str(&format!("[exit 1]\n{}", e.render())),
            }
        }
        failures.extend(check_snapshot(&file, &rel, &output));
    }
    assert!(failures.is_empty(), "test/run failures:\n{}", failures.join("\n"));
}
