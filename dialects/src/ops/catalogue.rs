//! The ds op vocabulary, declared once in the [`ds_ops!`] table below.
//!
//! Each entry is `Variant => "ds.name", Role;` and, for field accesses,
//! `Variant => "ds.name", Access(Variant);`. From the table the macro generates
//! [`DsOp`] (with [`DsOp::ALL`], [`DsOp::name`], [`DsOp::of`], [`DsOp::role`]),
//! [`AccessKind`] (one variant per `Access` entry) and the mappings between
//! the two. Op names are spelled in this table and nowhere else; a test checks
//! that they are exactly the ops of `ds.irdl.mlir`.

use crate::ir::Op;

/// Unit attribute marking a `func.func` as a DiffSim kernel.
pub const KERNEL_ATTR: &str = "ds.kernel";
/// On a task function made from a kernel by the lowering: the kernel's name.
pub const TASK_OF_ATTR: &str = "ds.task_of";
/// On a generated grad kernel: the symbol of its primal kernel.
pub const GRAD_OF_ATTR: &str = "ds.grad_of";
/// The terminator of ds loop bodies. IRDL ops cannot be terminators, and this
/// upstream one carries no parent restriction.
pub const BODY_TERMINATOR: &str = "gpu.yield";

/// What a ds op is for: the coarse classification every pass starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A module-level data declaration (`ds.field`).
    Declaration,
    /// A module-level node of the layout tree (dense, pointer, ...).
    LayoutNode,
    /// A parallel loop of a kernel, with a body region.
    Loop,
    /// A read or update of one field element.
    Access(AccessKind),
    /// A run-time check of the launch.
    Check,
    /// A pure function of its operands (no side effect).
    Value,
}

macro_rules! ds_ops {
    ($( $(#[$doc:meta])* $op:ident => $name:literal, $role:ident $(($access:ident))? ; )*) => {
        /// Every op of the ds dialect.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum DsOp {
            $( $(#[$doc])* $op, )*
        }

        /// The ops that read or write one element of a field.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum AccessKind {
            $( $( $access, )? )*
        }

        impl DsOp {
            /// Every ds op, in table order.
            pub const ALL: [DsOp; [$(stringify!($op)),*].len()] = [$(DsOp::$op),*];

            /// The op's full name (`ds.load`).
            pub const fn name(self) -> &'static str {
                match self {
                    $( DsOp::$op => $name, )*
                }
            }

            pub const fn role(self) -> Role {
                match self {
                    $( DsOp::$op => Role::$role $((AccessKind::$access))?, )*
                }
            }
        }

        impl AccessKind {
            /// The op of this access.
            pub const fn op(self) -> DsOp {
                match self {
                    $( $( AccessKind::$access => DsOp::$op, )? )*
                }
            }
        }
    };
}

ds_ops! {
    /// `ds.field`: a global field (module level).
    Field => "ds.field", Declaration;
    /// `ds.dense`: a dense layout node.
    Dense => "ds.dense", LayoutNode;
    /// `ds.pointer`: a pointer layout node (cells allocated on activation).
    Pointer => "ds.pointer", LayoutNode;
    /// `ds.bitmasked`: a bitmasked layout node (dense storage, activity mask).
    Bitmasked => "ds.bitmasked", LayoutNode;
    /// `ds.dynamic`: a dynamic layout node (a list with a length).
    Dynamic => "ds.dynamic", LayoutNode;
    /// `ds.parallel_for`: a parallel loop over an index range.
    ParallelFor => "ds.parallel_for", Loop;
    /// `ds.struct_for`: a parallel loop over the active cells of a field.
    StructFor => "ds.struct_for", Loop;
    /// `ds.load`: reads one element.
    Load => "ds.load", Access(Load);
    /// `ds.store`: writes one element.
    Store => "ds.store", Access(Store);
    /// `ds.atomic_add`: adds a value to one element.
    AtomicAdd => "ds.atomic_add", Access(AtomicAdd);
    /// `ds.atomic_sub`: subtracts a value from one element.
    AtomicSub => "ds.atomic_sub", Access(AtomicSub);
    /// `ds.atomic_min`: lowers one element to a value.
    AtomicMin => "ds.atomic_min", Access(AtomicMin);
    /// `ds.atomic_max`: raises one element to a value.
    AtomicMax => "ds.atomic_max", Access(AtomicMax);
    /// `ds.assert`: fails the launch with a message when its condition is false.
    Assert => "ds.assert", Check;
    /// `ds.stop_grad`: its operand's value, through which no gradient flows.
    StopGrad => "ds.stop_grad", Value;
}

impl DsOp {
    /// The ds op that `op` is, if any.
    pub fn of(op: Op) -> Option<DsOp> {
        DsOp::named(&op.name())
    }

    /// The ds op of this full name (`ds.load`), if any.
    pub fn named(name: &str) -> Option<DsOp> {
        DsOp::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Layout tree nodes (module level).
    pub const fn is_layout_node(self) -> bool {
        match self.role() {
            Role::LayoutNode => true,
            Role::Declaration | Role::Loop | Role::Access(_) | Role::Check | Role::Value => false,
        }
    }
}

impl AccessKind {
    /// The access kind of `op`, if it is a field access.
    pub const fn of(op: DsOp) -> Option<AccessKind> {
        match op.role() {
            Role::Access(kind) => Some(kind),
            Role::Declaration | Role::LayoutNode | Role::Loop | Role::Check | Role::Value => None,
        }
    }

    pub const fn name(self) -> &'static str {
        self.op().name()
    }
}
