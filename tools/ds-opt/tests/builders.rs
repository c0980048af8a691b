//! The typed builders of `ds_dialects::ops` make ops that verify (IRDL and
//! ds-verify) and print in the form the parser reads back.

use ds_dialects::ir::{Cursor, Op};
use ds_dialects::ops::{self, AccessKind, DsOp};
use ds_lowering::pipeline;
use melior::ir::{Location, Module};

#[test]
fn every_builder_makes_a_verified_op() {
    let context = ds_dialects::context();
    let mut module = Module::new(Location::unknown(&context));
    let m = Op::of_module(&module);
    let body = ops::module_body(m);
    let end = Cursor::at_end(body);
    let ctx = m.ctx();
    let loc = m.loc();
    ops::build_layout_node(end, DsOp::Dense, "grid", &[4, 8], None, loc);
    ops::build_layout_node(end, DsOp::Pointer, "blocks", &[2], Some("grid"), loc);
    ops::build_layout_node(end, DsOp::Bitmasked, "mask", &[2], Some("blocks"), loc);
    ops::build_layout_node(end, DsOp::Dynamic, "list", &[16], None, loc);
    ops::build_field(end, "x", ctx.f32(), &[4, 8], Some("x_grad"), loc);
    ops::build_field(end, "x_grad", ctx.f32(), &[4, 8], None, loc);
    ops::build_layout_node(end, DsOp::Bitmasked, "cells", &[16], None, loc);
    ops::build_layout_node(end, DsOp::Dense, "heads", &[4, 1], None, loc);
    ops::build_layout_node(end, DsOp::Dynamic, "items", &[1, 8], Some("heads"), loc);
    let l = ops::build_field(end, "l", ctx.f32(), &[4, 8], None, loc);
    ops::set_layout(l, "items");
    let s = ops::build_field(end, "s", ctx.f32(), &[16], None, loc);
    ops::set_layout(s, "cells");
    let (kernel, entry) = ops::build_func(end, "k", &[ctx.index()], &[], loc);
    kernel.set_attr(ops::KERNEL_ATTR, ctx.unit_attr());
    let at = Cursor::at_end(entry);
    let zero = ops::const_index(at, 0, loc);
    let pf = ops::build_parallel_for(at, zero, entry.arg(0), loc);
    let inner = Cursor::before(pf.body.terminator().expect("terminator"));
    let j = ops::const_index(inner, 1, loc);
    let loaded = ops::build_load(inner, "x", &[pf.index(), j], ctx.f32(), loc);
    let v = ops::build_stop_grad(inner, loaded, loc);
    for kind in [AccessKind::Store, AccessKind::AtomicAdd, AccessKind::AtomicSub, AccessKind::AtomicMin, AccessKind::AtomicMax] {
        ops::build_update(inner, kind, "x", v, &[pf.index(), j], loc);
    }
    let ok = ops::build_cmpi(inner, ops::CmpI::Ult, pf.index(), entry.arg(0), loc);
    ops::build_assert(inner, ok, "in range", loc);
    ops::build_activity(inner, AccessKind::Activate, "s", &[pf.index()], None, loc);
    ops::build_activity(inner, AccessKind::IsActive, "s", &[pf.index()], Some("cells"), loc).expect("an i1");
    ops::build_activity(inner, AccessKind::Deactivate, "s", &[pf.index()], None, loc);
    let zero = ops::const_index(inner, 0, loc);
    ops::build_append(inner, "l", v, &[zero, zero], loc);
    ops::build_length(inner, "l", &[zero, zero], loc);
    let (_, sf) = ops::build_struct_for(at, "x", 2, loc);
    let sf_at = Cursor::before(sf.terminator().expect("terminator"));
    let w = ops::build_load(sf_at, "x", &sf.args(), ctx.f32(), loc);
    ops::build_update(sf_at, AccessKind::Store, "x_grad", w, &sf.args(), loc);
    ops::build_return(at, &[], loc);
    assert!(m.verify(), "{}", m.print(true, false));
    let steps = pipeline::parse("ds-verify").unwrap();
    assert!(pipeline::run(&context, &mut module, &steps, None).is_ok(), "{}", m.print(true, false));
    let text = Op::of_module(&module).print(false, false);
    for kind in DsOp::ALL {
        assert!(text.contains(&format!("\"{}\"", kind.name())), "{} missing from:\n{text}", kind.name());
    }
    let back = ds_opt::run(&["-".to_string()], || Ok(text.clone()));
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert_eq!(back.stdout.trim(), text.trim());
}
