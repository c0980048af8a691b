//! Mutations of MLIR text for robustness tests and `ds-bench fuzz`:
//! truncation, dropped, duplicated or swapped lines, and replaced or inserted
//! tokens (ds op names, types, terminators, bad shapes, ...), picked by a
//! deterministic generator so every failure reproduces from its seed.

/// A small deterministic generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

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
