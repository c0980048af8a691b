//! DiffSim's own passes over the ds dialect, and the pass framework shared with
//! `ds-lowering`.
//!
//! A pass is a [`PassInfo`]: a kebab-case flag, a one-line summary and a function
//! over the module op. Passes report problems as MLIR diagnostics with the
//! offending op's location (`Ctx::emit_error`) and return `false`; they never
//! panic on user input. [`PassInfo::to_mlir`] wraps one as an MLIR external pass
//! so it can sit in a pass manager between upstream passes.

pub mod autodiff;
pub mod gather;
pub mod simplify;
pub mod verify;

use ds_dialects::ir::Op;
use melior::{
    ir::{OperationRef, r#type::TypeId},
    pass::{ExternalPass, Pass, create_external},
};
use std::collections::BTreeMap;

/// Options given to a pass as `name{key=value key2=value2}`.
#[derive(Clone, Debug, Default)]
pub struct PassOptions(pub BTreeMap<String, String>);

impl PassOptions {
    /// Parses `key=value` pairs separated by spaces or commas.
    pub fn parse(text: &str) -> Result<PassOptions, String> {
        let mut map = BTreeMap::new();
        for item in text.split([' ', ',']).filter(|s| !s.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("pass option `{item}` is not of the form key=value"))?;
            map.insert(k.to_string(), v.to_string());
        }
        Ok(PassOptions(map))
    }

    /// An unsigned integer option, with a default.
    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize, String> {
        match self.0.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("option {key}={v}: expected a non-negative integer")),
        }
    }

    /// A yes/no option (`key=1` on, `key=0` or absent off).
    pub fn flag(&self, key: &str) -> Result<bool, String> {
        self.usize_or(key, 0).map(|v| v != 0)
    }

    /// Fails on any key not in `known`.
    pub fn check_known(&self, pass: &str, known: &[&str]) -> Result<(), String> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(format!("pass {pass} has no option `{k}` (it takes: {})", known.join(", "))),
            None => Ok(()),
        }
    }
}

/// The function of a pass: runs on the module op, reports errors as
/// diagnostics, returns whether it succeeded.
pub type PassFn = fn(module: Op, options: &PassOptions) -> bool;

/// A DiffSim pass, as listed by `ds-opt --list-passes`.
#[repr(align(8))]
pub struct PassInfo {
    /// The flag: `ds-verify`, `convert-ds-to-scf`, ...
    pub name: &'static str,
    pub summary: &'static str,
    /// Options accepted in `name{...}`.
    pub options: &'static [&'static str],
    pub run: PassFn,
}

impl PassInfo {
    /// The pass as an MLIR pass on `builtin.module`.
    pub fn to_mlir(&'static self, options: PassOptions) -> Result<Pass, String> {
        options.check_known(self.name, self.options)?;
        let run = self.run;
        let name = self.name;
        let body = move |op: OperationRef<'_, '_>, pass: ExternalPass<'_>| {
            let module = Op::from_ref(&op);
            // A panic must not unwind into MLIR (that aborts the process): it
            // becomes an internal-error diagnostic and a failed pass.
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(module, &options)))
                .unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    module.ctx().emit_error(module.loc(), &format!("internal error in pass {name}: {what}"));
                    false
                });
            if !ok {
                pass.signal_failure();
            }
        };
        Ok(create_external(body, TypeId::create(self), self.name, self.name, self.summary, "builtin.module", &[]))
    }
}

/// The passes of this crate.
pub static REGISTRY: &[&PassInfo] = &[&verify::PASS, &simplify::PASS, &autodiff::PASS, &autodiff::forward::PASS, &gather::PASS];
