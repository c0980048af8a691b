//! `--verify-diagnostics`: compares the diagnostics a chunk produced with the
//! `// expected-error@+N {{text}}` comments in it, as mlir-opt does.
//! Forms: `expected-<severity> {{text}}` (same line), `@+N` / `@-N` (relative
//! line), `@above` / `@below`; `<severity>` is error, warning, note or remark.

use ds_dialects::diag::Diagnostic;

struct Expected {
    line: usize,
    severity: String,
    text: String,
    matched: bool,
}

fn parse_expectations(source: &str, first_line: usize) -> Vec<Expected> {
    let mut out = Vec::new();
    for (i, line) in source.lines().enumerate() {
        let line_no = first_line + i + 1;
        let mut rest = line;
        while let Some(pos) = rest.find("expected-") {
            rest = &rest[pos + "expected-".len()..];
            let sev_end = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
            let severity = rest[..sev_end].to_string();
            if !matches!(severity.as_str(), "error" | "warning" | "note" | "remark") {
                continue;
            }
            let after = &rest[sev_end..];
            let (target, after) = match after.strip_prefix('@') {
                Some(a) => {
                    let end = a.find(|c: char| c.is_whitespace() || c == '{').unwrap_or(a.len());
                    let spec = &a[..end];
                    let target = match spec {
                        "above" => line_no.checked_sub(1),
                        "below" => Some(line_no + 1),
                        _ => spec.parse::<i64>().ok().and_then(|d| usize::try_from(line_no as i64 + d).ok()),
                    };
                    (target, &a[end..])
                }
                None => (Some(line_no), after),
            };
            let Some(open) = after.find("{{") else { continue };
            let Some(close) = after[open..].find("}}") else { continue };
            if let Some(line) = target {
                out.push(Expected {
                    line,
                    severity,
                    text: after[open + 2..open + close].to_string(),
                    matched: false,
                });
            }
            rest = &after[open + close..];
        }
    }
    out
}

/// Returns one message per mismatch (empty when everything matched).
/// `source` is a chunk that starts after `first_line` lines of the file.
pub fn check(source: &str, first_line: usize, name: &str, diags: &[Diagnostic]) -> Vec<String> {
    let mut expected = parse_expectations(source, first_line);
    let mut problems = Vec::new();
    let flat: Vec<&Diagnostic> = diags.iter().flat_map(|d| std::iter::once(d).chain(d.notes.iter())).collect();
    // MLIR adds "see current operation" to some errors; mlir-opt turns that off
    // under --verify-diagnostics.
    for d in flat.into_iter().filter(|d| !d.message.starts_with("see current operation")) {
        let line = d.pos.as_ref().map(|p| p.line as usize);
        let found = expected.iter_mut().find(|e| {
            !e.matched && Some(e.line) == line && e.severity == d.severity.as_str() && d.message.contains(&e.text)
        });
        match found {
            Some(e) => e.matched = true,
            None => problems.push(format!("{}: error: unexpected {}: {}\n", d.loc, d.severity.as_str(), d.message)),
        }
    }
    for e in expected.iter().filter(|e| !e.matched) {
        problems.push(format!(
            "{name}:{}: error: expected {} \"{}\" was not produced\n",
            e.line, e.severity, e.text
        ));
    }
    problems
}
