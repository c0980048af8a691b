//! The autodiff rule table (`ds_passes::autodiff::rules::RULES`) is complete
//! and tested: every op of the ds dialect and every op inside the kernels of
//! the lit tests and example kernels has a record, no op has two, and every
//! differentiable op is gradchecked in `runtime/tests/autodiff.rs` and has
//! its own case in `test/lit/autodiff/rules.mlir`. (That every op the
//! frontend can emit is classified is checked by the frontend's tests:
//! `constructs::every_emitted_op_is_classified_for_autodiff`.)

use crate::lit::{cases, lit_files, workspace_root};
use ds_dialects::ir::Op;
use ds_dialects::ops::{self, DsOp};
use ds_passes::autodiff::rules::{AdTreatment, RULES, classify};

fn kernel_ops(text: &str, name: &str) -> Vec<String> {
    let context = ds_dialects::context();
    let (module, _) = ds_dialects::diag::capture(&context, || ds_dialects::parse_module(&context, text, name));
    let Some(module) = module else { return vec![] };
    let body = ops::module_body(Op::of_module(&module));
    ops::kernels(body).into_iter().flat_map(|k| k.walk()).map(|o| o.name()).collect()
}

#[test]
fn every_op_has_one_record() {
    let mut names: Vec<&str> = RULES.iter().map(|r| r.op).collect();
    names.sort();
    let twice: Vec<&&str> = names.windows(2).filter(|w| w[0] == w[1]).map(|w| &w[0]).collect();
    assert!(twice.is_empty(), "ops with two records in the rule table: {twice:?}");
    let unclassified: Vec<&str> = DsOp::ALL.iter().map(|k| k.name()).filter(|n| classify(n).is_none()).collect();
    assert!(unclassified.is_empty(), "ds ops without a record in the rule table: {unclassified:?}");
    assert!(matches!(classify(DsOp::Load.name()), Some(AdTreatment::Structural)));
}

#[test]
fn every_kernel_op_is_classified() {
    let mut names: Vec<String> = Vec::new();
    let mut files = lit_files();
    files.push(workspace_root().join("examples/kernels/appendix_c.mlir"));
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        // Files that check diagnostics hold unsupported ops on purpose.
        if text.lines().next().is_some_and(|l| l.contains("--verify-diagnostics")) {
            continue;
        }
        for chunk in text.split("// -----") {
            names.extend(kernel_ops(chunk, &file.to_string_lossy()));
        }
    }
    names.sort();
    names.dedup();
    assert!(names.len() > 40, "too few ops found: {names:?}");
    let missing: Vec<&String> = names.iter().filter(|n| classify(n).is_none()).collect();
    assert!(missing.is_empty(), "ops with neither an adjoint rule nor a non-differentiable entry: {missing:?}");
}

/// A gradcheck of `runtime/tests/autodiff.rs`: its name and its source text.
struct Gradcheck<'a> {
    name: &'a str,
    text: &'a str,
}

/// The gradchecks of `source`: the entries of its `elementwise_tests!` table
/// (`name: "kernel body", ranges;`) and the `#[test]` functions that call `check`
/// or `check_with`.
fn gradchecks(source: &str) -> Vec<Gradcheck<'_>> {
    let mut out = Vec::new();
    let table_start = source.find("\nelementwise_tests! {").expect("the elementwise_tests! table");
    let table = &source[table_start..];
    let table = &table[..table.find("\n}\n").expect("end of the elementwise_tests! table")];
    let entry_starts: Vec<usize> = table
        .match_indices("\n    ")
        .map(|(i, _)| i + 5)
        .filter(|&i| {
            let rest = &table[i..];
            let name_len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(0);
            name_len > 0 && rest[name_len..].starts_with(": ")
        })
        .collect();
    for (n, &start) in entry_starts.iter().enumerate() {
        let end = entry_starts.get(n + 1).copied().unwrap_or(table.len());
        let text = &table[start..end];
        out.push(Gradcheck { name: &text[..text.find(':').expect("entry name")], text });
    }
    let tests: Vec<usize> = source.match_indices("#[test]\nfn ").map(|(i, _)| i + "#[test]\nfn ".len()).collect();
    for (n, &start) in tests.iter().enumerate() {
        let end = tests.get(n + 1).copied().unwrap_or(source.len());
        let text = &source[start..end];
        if text.contains("check(") || text.contains("check_with(") {
            out.push(Gradcheck { name: &text[..text.find('(').expect("test name")], text });
        }
    }
    out
}

/// Whether `text` mentions the op `name` as a whole word.
fn mentions(text: &str, name: &str) -> bool {
    let part_of_name = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    text.match_indices(name).any(|(i, _)| {
        !text[..i].ends_with(part_of_name) && !text[i + name.len()..].starts_with(part_of_name)
    })
}

#[test]
fn every_differentiable_op_is_gradchecked() {
    let path = workspace_root().join("runtime/tests/autodiff.rs");
    let source = std::fs::read_to_string(&path).expect("runtime/tests/autodiff.rs");
    let checks = gradchecks(&source);
    assert!(checks.len() > 30, "too few gradchecks found in {}: {}", path.display(), checks.len());
    let differentiable = RULES.iter().filter(|r| matches!(r.treatment, AdTreatment::Differentiable(_)));
    let unchecked: Vec<&str> =
        differentiable.map(|r| r.op).filter(|op| !checks.iter().any(|c| mentions(c.text, op))).collect();
    assert!(
        unchecked.is_empty(),
        "differentiable ops that no gradcheck in {} uses: {unchecked:?}; add an elementwise_tests! entry named after the op",
        path.display()
    );
    // Elementwise gradchecks named after an op use it (e.g. `sin` uses math.sin).
    for check in &checks {
        let named = RULES.iter().find(|r| r.op.split_once('.').is_some_and(|(_, mnemonic)| mnemonic == check.name));
        if let Some(rule) = named {
            assert!(mentions(check.text, rule.op), "gradcheck `{}` does not use {}", check.name, rule.op);
        }
    }
}

#[test]
fn every_differentiable_op_has_a_lit_case() {
    let path = workspace_root().join("test/lit/autodiff/rules.mlir");
    let text = std::fs::read_to_string(&path).expect("test/lit/autodiff/rules.mlir");
    let cases = cases(&text);
    // A case says what it shows first: `// arith.addf: ...`.
    let shown: Vec<&str> = cases.iter().filter_map(|(_, what)| what.split_once(':').map(|(ops, _)| ops)).collect();
    let differentiable = RULES.iter().filter(|r| matches!(r.treatment, AdTreatment::Differentiable(_)));
    let missing: Vec<&str> =
        differentiable.map(|r| r.op).filter(|op| !shown.iter().any(|s| s.split(", ").any(|o| o == *op))).collect();
    assert!(missing.is_empty(), "differentiable ops without a case `// OP: ...` in {}: {missing:?}", path.display());
    let undescribed: Vec<usize> = cases.iter().filter(|(_, what)| what.is_empty()).map(|(line, _)| *line).collect();
    assert!(undescribed.is_empty(), "cases of {} without a one-line comment, at lines {undescribed:?}", path.display());
}
