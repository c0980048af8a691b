//! Every op a kernel can contain has an adjoint rule, a non-differentiable
//! entry, or structural handling in ds-autodiff: the kernel-level ds ops, and
//! every op inside the kernels of the lit tests and example kernels.

use crate::lit::{lit_files, workspace_root};
use ds_dialects::ir::Op;
use ds_dialects::ops::{self, DsOp};
use ds_passes::autodiff::rules::{Class, classify};

fn kernel_ops(text: &str, name: &str) -> Vec<String> {
    let context = ds_dialects::context();
    let (module, _) = ds_dialects::diag::capture(&context, || ds_dialects::parse_module(&context, text, name));
    let Some(module) = module else { return vec![] };
    let body = ops::module_body(Op::of_module(&module));
    ops::kernels(body).into_iter().flat_map(|k| k.walk()).map(|o| o.name()).collect()
}

#[test]
fn every_kernel_op_is_classified() {
    let mut names: Vec<String> = DsOp::ALL
        .into_iter()
        .filter(|k| !k.is_layout_node() && *k != DsOp::Field)
        .map(|k| k.name().to_string())
        .collect();
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
    assert_eq!(classify("ds.load"), Some(Class::Structural));
}
