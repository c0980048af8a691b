//! Robustness: mutated and truncated lit inputs go through ds-opt in-process,
//! with each file's own flags. Errors are expected; a panic or an internal
//! error (a pass that caught its own panic) is a failure, and an abort inside
//! MLIR ends the test binary, which fails the run too.

use crate::lit::{lit_files, run_stages, selected_lit_files, workspace_root};
// The tests' one deterministic generator (SplitMix64), so failures reproduce.
use ds_runtime::gradcheck::Rng;

const TOKENS: &[&str] = &[
    "f32", "f64", "i32", "i1", "index", "@x", "@nope", "%0", "%arg0", "(", ")", "{", "}", "[", "]", ",", ":", "->",
    "\"ds.load\"", "\"ds.store\"", "\"ds.parallel_for\"", "gpu.yield", "scf.yield", "array<i64: 0>",
    "array<i64: 2, 2, 2, 2, 2>", "-1", "0", "^bb0(%i: index):", "ds.kernel", "\"ds.field\"", "func.func", "return",
];

fn mutate(text: &str, rng: &mut Rng) -> String {
    let lines: Vec<&str> = text.lines().collect();
    match rng.below(6) {
        0 => text[..text.char_indices().nth(rng.below(text.chars().count())).map_or(0, |c| c.0)].to_string(),
        1 => {
            let drop = rng.below(lines.len());
            lines.iter().enumerate().filter(|(i, _)| *i != drop).map(|(_, l)| *l).collect::<Vec<_>>().join("\n")
        }
        2 => {
            let dup = rng.below(lines.len());
            let mut v = lines.clone();
            v.insert(dup, lines[dup]);
            v.join("\n")
        }
        3 => {
            let words: Vec<&str> = text.split(' ').collect();
            let at = rng.below(words.len());
            let tok = TOKENS[rng.below(TOKENS.len())];
            words.iter().enumerate().map(|(i, w)| if i == at { tok } else { w }).collect::<Vec<_>>().join(" ")
        }
        4 => {
            let mut v = lines.clone();
            let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
            v.swap(a, b);
            v.join("\n")
        }
        _ => {
            let words: Vec<&str> = text.split(' ').collect();
            let at = rng.below(words.len());
            let tok = TOKENS[rng.below(TOKENS.len())];
            let mut v = words.clone();
            v.insert(at, tok);
            v.join(" ")
        }
    }
}

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
            let mut input = mutate(&text, &mut rng);
            if rng.below(3) == 0 {
                input = mutate(&input, &mut rng);
            }
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
