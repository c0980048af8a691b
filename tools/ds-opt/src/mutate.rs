//! Mutations of MLIR text for robustness tests and `ds-bench fuzz`:
//! truncation, dropped, duplicated or swapped lines, and replaced or inserted
//! tokens (ds op names, types, terminators, bad shapes, ...), picked by a
//! deterministic generator so every failure reproduces from its seed.

pub use ds_dialects::rng::Rng;

const TOKENS: &[&str] = &[
    "f32", "f64", "i32", "i1", "index", "@x", "@nope", "%0", "%arg0", "(", ")", "{", "}", "[", "]", ",", ":", "->",
    "\"ds.load\"", "\"ds.store\"", "\"ds.parallel_for\"", "gpu.yield", "scf.yield", "array<i64: 0>",
    "array<i64: 2, 2, 2, 2, 2>", "-1", "0", "^bb0(%i: index):", "ds.kernel", "\"ds.field\"", "func.func", "return",
];

/// One random mutation of `text`.
pub fn mutate(text: &str, rng: &mut Rng) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let words = || text.split(' ').collect::<Vec<&str>>();
    match rng.below(6) {
        0 => text[..text.char_indices().nth(rng.below(text.chars().count())).map_or(0, |c| c.0)].to_string(),
        1 => {
            let drop = rng.below(lines.len());
            lines.iter().enumerate().filter(|(i, _)| *i != drop).map(|(_, l)| *l).collect::<Vec<_>>().join("\n")
        }
        2 => {
            let mut v = lines.clone();
            if !lines.is_empty() {
                let dup = rng.below(lines.len());
                v.insert(dup, lines[dup]);
            }
            v.join("\n")
        }
        3 => {
            let words = words();
            let at = rng.below(words.len());
            let tok = TOKENS[rng.below(TOKENS.len())];
            words.iter().enumerate().map(|(i, w)| if i == at { tok } else { w }).collect::<Vec<_>>().join(" ")
        }
        4 => {
            let mut v = lines.clone();
            if !lines.is_empty() {
                let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                v.swap(a, b);
            }
            v.join("\n")
        }
        _ => {
            let mut v = words();
            let at = rng.below(v.len());
            v.insert(at, TOKENS[rng.below(TOKENS.len())]);
            v.join(" ")
        }
    }
}

/// One mutation, and a second one a third of the time.
pub fn mutated(text: &str, rng: &mut Rng) -> String {
    let once = mutate(text, rng);
    if rng.below(3) == 0 { mutate(&once, rng) } else { once }
}
