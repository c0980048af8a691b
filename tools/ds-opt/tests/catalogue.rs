//! The op table of `ds_dialects::ops` (`ds_ops!`) declares exactly the ops
//! that the IRDL definition `ds.irdl.mlir` defines.

use ds_dialects::ir::Op;
use ds_dialects::ops::{self, AccessKind, DsOp};

/// `ds.<op>` for every `irdl.operation` of every `irdl.dialect` in the IRDL source.
fn irdl_op_names() -> Vec<String> {
    let context = ds_dialects::context();
    let module = ds_dialects::parse_module(&context, ds_dialects::IRDL_SOURCE, "ds.irdl.mlir").expect("IRDL parses");
    let dialects = ops::module_body(Op::of_module(&module)).ops().into_iter().filter(|o| o.name() == "irdl.dialect");
    dialects
        .flat_map(|d| {
            let dialect = d.sym_name().expect("dialect name");
            d.walk()
                .into_iter()
                .filter(|o| o.name() == "irdl.operation")
                .map(move |o| format!("{dialect}.{}", o.sym_name().expect("operation name")))
        })
        .collect()
}

#[test]
fn the_op_table_matches_the_irdl_definition() {
    let mut irdl = irdl_op_names();
    let mut table: Vec<String> = DsOp::ALL.iter().map(|k| k.name().to_string()).collect();
    assert!(irdl.len() > 10, "too few IRDL ops found: {irdl:?}");
    irdl.sort();
    table.sort();
    let mut deduped = table.clone();
    deduped.dedup();
    assert_eq!(deduped, table, "an op name appears twice in the ds_ops! table");
    assert_eq!(table, irdl, "the ds_ops! table (left) and ds.irdl.mlir (right) declare different ops");
}

#[test]
fn access_kinds_map_to_their_ops_and_back() {
    for op in DsOp::ALL {
        if let Some(kind) = AccessKind::of(op) {
            assert_eq!(kind.op(), op);
            assert_eq!(kind.name(), op.name());
        }
    }
}
