//! Robustness, the short version of `ds-bench fuzz` (which runs many more
//! inputs through every pipeline in subprocesses): mutated and truncated lit
//! inputs (`ds_opt::mutate`) go through ds-opt in-process, with each file's
//! own flags. Errors are expected; a panic or an internal error (a pass that
//! caught its own panic) is a failure, and an abort inside MLIR ends the test
//! binary, which fails the run too.

use crate::lit::{lit_files, run_stages, selected_lit_files, workspace_root};
use ds_opt::mutate::{Rng, mutated};

#[test]
fn mutated_inputs_never_panic() {
    let root = workspace_root();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut runs = 0;
    let mut panics = Vec::new();
    // About 320 in all; a LIT_FILTER run tries the same number per file.
    let (all, files) = (lit_files().len(), selected_lit_files());
    let per_file = 320 / all.max(1) + 1;
    for file in &files {
        let rel = file.strip_prefix(&root).expect("inside the workspace").to_string_lossy().to_string();
        let text = std::fs::read_to_string(file).expect("readable");
        let stages = run_stages(file, &rel).expect("valid RUN line");
        // The first stage's flags, reading the mutated text from stdin.
        let args: Vec<String> =
            stages[0].iter().map(|a| if *a == rel { "-".to_string() } else { a.clone() }).collect();
        for _ in 0..per_file {
            let input = mutated(&text, &mut rng);
            runs += 1;
            let result = std::panic::catch_unwind(|| ds_opt::run(&args, || Ok(input.clone())));
            match result {
                Err(_) => panics.push(format!("--- {rel} mutated (panic):\n{input}")),
                Ok(out) if out.stderr.contains("internal error") => {
                    panics.push(format!("--- {rel} mutated ({}):\n{input}", out.stderr.trim()))
                }
                Ok(_) => {}
            }
        }
    }
    assert!(runs >= 300 || files.len() < all, "only {runs} inputs tried");
    assert!(panics.is_empty(), "{} of {runs} inputs panicked:\n{}", panics.len(), panics.join("\n"));
}
