//! The ds ops: their vocabulary, views, builders and shared analyses.
//!
//! - [`catalogue`]: the op table (`ds_ops!`) generating [`DsOp`] and
//!   [`AccessKind`], and the attribute names shared by passes;
//! - [`views`]: typed read-only views ([`FieldDecl`], [`Access`], ...);
//! - [`build`]: typed builders of ds ops;
//! - [`upstream`]: builders of the arith/func/scf ops emitted around them;
//! - [`layout`]: where a field's elements live (strides in its buffer), for
//!   the lowering and the runtime alike;
//! - [`analysis`]: which accesses read or write, index offsets, whether two
//!   accesses are apart, and which part of a field an access touches.
//!
//! Everything is re-exported here: use `ds_dialects::ops::X`. Adding an op:
//! see `docs/add-an-op.md`.

pub mod analysis;
pub mod build;
pub mod catalogue;
pub mod layout;
pub mod sparse;
pub mod upstream;
pub mod views;

pub use analysis::*;
pub use build::*;
pub use catalogue::*;
pub use layout::{Order, Storage, Strided};
pub use upstream::*;
pub use views::*;
