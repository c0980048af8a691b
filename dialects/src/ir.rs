//! The one place where DiffSim touches the MLIR C API directly.
//!
//! melior's borrow-checked references cannot be collected out of a walk and then
//! mutated, which is exactly what passes do. This module offers small `Copy`
//! handles (`Op`, `Value`, `Block`, `Region`, `Type`, `Attr`, `Loc`) over the raw
//! `mlir-sys` objects, with safe methods. A handle is valid while the IR it
//! points into is alive: passes receive handles for the module they run on and
//! never keep them past the pass. Everything `unsafe` lives here; passes,
//! lowerings and the runtime use only these methods. The one exception is
//! [`Op::erase`]: a `Copy` handle cannot stop a use after the free, so erasing
//! is an `unsafe fn` and each call site says why no handle outlives the op.

use melior::ir::{Module, OperationRef};
use mlir_sys::*;
use std::ffi::c_void;
use std::fmt;

/// `MlirStringRef` from a Rust string (the callee copies what it keeps).
fn sref(s: &str) -> MlirStringRef {
    MlirStringRef { data: s.as_ptr() as *const _, length: s.len() }
}

fn string_of(s: MlirStringRef) -> String {
    if s.data.is_null() {
        return String::new();
    }
    // SAFETY: MLIR guarantees `data` points at `length` bytes.
    let bytes = unsafe { std::slice::from_raw_parts(s.data as *const u8, s.length) };
    String::from_utf8_lossy(bytes).into_owned()
}

unsafe extern "C" fn append_to_string(s: MlirStringRef, user: *mut c_void) {
    // SAFETY: `user` is the `&mut String` passed by `print_with`.
    let out = unsafe { &mut *(user as *mut String) };
    out.push_str(&string_of(s));
}

/// Collects the output of an MLIR print callback into a `String`.
fn print_with(f: impl FnOnce(MlirStringCallback, *mut c_void)) -> String {
    let mut out = String::new();
    f(Some(append_to_string), &mut out as *mut String as *mut c_void);
    out
}

macro_rules! handle {
    ($name:ident, $raw:ty, $eq:ident) => {
        #[derive(Clone, Copy)]
        pub struct $name(pub(crate) $raw);
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                // SAFETY: comparing two handles reads no memory behind them.
                unsafe { $eq(self.0, other.0) }
            }
        }
        impl Eq for $name {}
        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
                (self.0.ptr as usize).hash(h)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:p})", stringify!($name), self.0.ptr)
            }
        }
    };
}

handle!(Op, MlirOperation, mlirOperationEqual);
handle!(Block, MlirBlock, mlirBlockEqual);
handle!(Region, MlirRegion, mlirRegionEqual);
handle!(Value, MlirValue, mlirValueEqual);
handle!(Type, MlirType, mlirTypeEqual);
handle!(Attr, MlirAttribute, mlirAttributeEqual);
handle!(Loc, MlirLocation, mlirLocationEqual);

/// The MLIR context a handle lives in.
#[derive(Clone, Copy)]
pub struct Ctx(pub(crate) MlirContext);

impl Ctx {
    pub fn of(context: &melior::Context) -> Ctx {
        Ctx(context.to_raw())
    }
    pub fn parse_type(self, text: &str) -> Option<Type> {
        // SAFETY: parsing returns a null type on failure, checked below.
        let t = unsafe { mlirTypeParseGet(self.0, sref(text)) };
        (!t.ptr.is_null()).then_some(Type(t))
    }
    pub fn parse_attr(self, text: &str) -> Option<Attr> {
        // SAFETY: as above.
        let a = unsafe { mlirAttributeParseGet(self.0, sref(text)) };
        (!a.ptr.is_null()).then_some(Attr(a))
    }
    pub fn index(self) -> Type {
        Type(unsafe { mlirIndexTypeGet(self.0) })
    }
    pub fn int(self, width: u32) -> Type {
        Type(unsafe { mlirIntegerTypeGet(self.0, width) })
    }
    pub fn f32(self) -> Type {
        Type(unsafe { mlirF32TypeGet(self.0) })
    }
    pub fn f64(self) -> Type {
        Type(unsafe { mlirF64TypeGet(self.0) })
    }
    pub fn string_attr(self, s: &str) -> Attr {
        Attr(unsafe { mlirStringAttrGet(self.0, sref(s)) })
    }
    pub fn symbol_ref(self, name: &str) -> Attr {
        Attr(unsafe { mlirFlatSymbolRefAttrGet(self.0, sref(name)) })
    }
    pub fn unit_attr(self) -> Attr {
        Attr(unsafe { mlirUnitAttrGet(self.0) })
    }
    pub fn type_attr(self, t: Type) -> Attr {
        Attr(unsafe { mlirTypeAttrGet(t.0) })
    }
    pub fn int_attr(self, t: Type, v: i64) -> Attr {
        Attr(unsafe { mlirIntegerAttrGet(t.0, v) })
    }
    pub fn float_attr(self, t: Type, v: f64) -> Attr {
        Attr(unsafe { mlirFloatAttrDoubleGet(self.0, t.0, v) })
    }
    pub fn i64_array_attr(self, values: &[i64]) -> Attr {
        Attr(unsafe { mlirDenseI64ArrayGet(self.0, values.len() as isize, values.as_ptr()) })
    }
    pub fn array_attr(self, values: &[Attr]) -> Attr {
        let raw: Vec<MlirAttribute> = values.iter().map(|a| a.0).collect();
        Attr(unsafe { mlirArrayAttrGet(self.0, raw.len() as isize, raw.as_ptr()) })
    }
    /// Reports an error through the context's diagnostic handlers.
    pub fn emit_error(self, loc: Loc, message: &str) {
        let c = std::ffi::CString::new(message.replace('\0', " ")).expect("no NUL left");
        // SAFETY: the message is a valid C string for the duration of the call.
        unsafe { mlirEmitError(loc.0, c.as_ptr()) }
    }
}

impl Op {
    pub fn from_ref(op: &OperationRef) -> Op {
        Op(op.to_raw())
    }
    pub fn of_module(module: &Module) -> Op {
        Op(module.as_operation().to_raw())
    }
    pub fn ctx(self) -> Ctx {
        Ctx(unsafe { mlirOperationGetContext(self.0) })
    }
    pub fn name(self) -> String {
        string_of(unsafe { mlirIdentifierStr(mlirOperationGetName(self.0)) })
    }
    pub fn loc(self) -> Loc {
        Loc(unsafe { mlirOperationGetLocation(self.0) })
    }
    pub fn num_operands(self) -> usize {
        unsafe { mlirOperationGetNumOperands(self.0) as usize }
    }
    pub fn operand(self, i: usize) -> Value {
        assert!(i < self.num_operands(), "operand {i} of {}", self.name());
        Value(unsafe { mlirOperationGetOperand(self.0, i as isize) })
    }
    pub fn operands(self) -> Vec<Value> {
        (0..self.num_operands()).map(|i| self.operand(i)).collect()
    }
    pub fn set_operand(self, i: usize, v: Value) {
        assert!(i < self.num_operands());
        unsafe { mlirOperationSetOperand(self.0, i as isize, v.0) }
    }
    pub fn num_results(self) -> usize {
        unsafe { mlirOperationGetNumResults(self.0) as usize }
    }
    pub fn result(self, i: usize) -> Value {
        assert!(i < self.num_results(), "result {i} of {}", self.name());
        Value(unsafe { mlirOperationGetResult(self.0, i as isize) })
    }
    pub fn results(self) -> Vec<Value> {
        (0..self.num_results()).map(|i| self.result(i)).collect()
    }
    pub fn attr(self, name: &str) -> Option<Attr> {
        let a = unsafe { mlirOperationGetAttributeByName(self.0, sref(name)) };
        (!a.ptr.is_null()).then_some(Attr(a))
    }
    pub fn set_attr(self, name: &str, a: Attr) {
        unsafe { mlirOperationSetAttributeByName(self.0, sref(name), a.0) }
    }
    pub fn remove_attr(self, name: &str) {
        unsafe {
            mlirOperationRemoveAttributeByName(self.0, sref(name));
        }
    }
    /// All attributes, inherent and discardable, in order.
    pub fn attrs(self) -> Vec<(String, Attr)> {
        let n = unsafe { mlirOperationGetNumAttributes(self.0) };
        (0..n)
            .map(|i| {
                let na = unsafe { mlirOperationGetAttribute(self.0, i) };
                (string_of(unsafe { mlirIdentifierStr(na.name) }), Attr(na.attribute))
            })
            .collect()
    }
    pub fn regions(self) -> Vec<Region> {
        let n = unsafe { mlirOperationGetNumRegions(self.0) };
        (0..n).map(|i| Region(unsafe { mlirOperationGetRegion(self.0, i) })).collect()
    }
    pub fn region(self, i: usize) -> Region {
        assert!(i < self.regions().len(), "region {i} of {}", self.name());
        Region(unsafe { mlirOperationGetRegion(self.0, i as isize) })
    }
    pub fn block(self) -> Option<Block> {
        let b = unsafe { mlirOperationGetBlock(self.0) };
        (!b.ptr.is_null()).then_some(Block(b))
    }
    pub fn parent(self) -> Option<Op> {
        let p = unsafe { mlirOperationGetParentOperation(self.0) };
        (!p.ptr.is_null()).then_some(Op(p))
    }
    pub fn next(self) -> Option<Op> {
        let p = unsafe { mlirOperationGetNextInBlock(self.0) };
        (!p.ptr.is_null()).then_some(Op(p))
    }
    /// True when `self` is (transitively) nested inside `ancestor`.
    pub fn is_inside(self, ancestor: Op) -> bool {
        let mut cur = self.parent();
        while let Some(p) = cur {
            if p == ancestor {
                return true;
            }
            cur = p.parent();
        }
        false
    }
    /// Removes the op from its block and frees it, with everything nested in it.
    ///
    /// # Safety
    ///
    /// Handles are `Copy` and do not borrow the IR, so the compiler cannot see
    /// a use after the free. The caller guarantees that no handle to this op,
    /// to its results, or to any op, block, region or value nested in it is
    /// used afterwards (walk snapshots and views holding such handles
    /// included), and that its results have no uses left.
    pub unsafe fn erase(self) {
        unsafe { mlirOperationDestroy(self.0) }
    }
    pub fn move_before(self, anchor: Op) {
        unsafe { mlirOperationMoveBefore(self.0, anchor.0) }
    }
    /// A deep copy, detached from any block.
    pub fn deep_clone(self) -> Op {
        Op(unsafe { mlirOperationClone(self.0) })
    }
    pub fn verify(self) -> bool {
        unsafe { mlirOperationVerify(self.0) }
    }
    pub fn replace_all_uses(self, with: &[Value]) {
        for (r, v) in self.results().into_iter().zip(with) {
            r.replace_all_uses_with(*v);
        }
    }
    /// Every op nested in this one (not itself), in pre-order.
    pub fn walk(self) -> Vec<Op> {
        let mut out = Vec::new();
        for r in self.regions() {
            for b in r.blocks() {
                for op in b.ops() {
                    out.push(op);
                    out.extend(op.walk());
                }
            }
        }
        out
    }
    /// The op as text, in the generic form when `generic` is set.
    pub fn print(self, generic: bool, debug_info: bool) -> String {
        unsafe {
            let flags = mlirOpPrintingFlagsCreate();
            if generic {
                mlirOpPrintingFlagsPrintGenericOpForm(flags);
            }
            if debug_info {
                mlirOpPrintingFlagsEnableDebugInfo(flags, true, false);
            }
            let s = print_with(|cb, user| mlirOperationPrintWithFlags(self.0, flags, cb, user));
            mlirOpPrintingFlagsDestroy(flags);
            s
        }
    }
    /// The symbol name of a symbol op (`sym_name`), if any.
    pub fn sym_name(self) -> Option<String> {
        self.attr("sym_name").and_then(|a| a.as_string())
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.print(false, false))
    }
}

impl Block {
    /// A new block, not yet in a region.
    pub fn new(args: &[(Type, Loc)]) -> Block {
        let types: Vec<MlirType> = args.iter().map(|a| a.0.0).collect();
        let locs: Vec<MlirLocation> = args.iter().map(|a| a.1.0).collect();
        Block(unsafe { mlirBlockCreate(args.len() as isize, types.as_ptr(), locs.as_ptr()) })
    }
    pub fn ops(self) -> Vec<Op> {
        let mut out = Vec::new();
        let mut cur = unsafe { mlirBlockGetFirstOperation(self.0) };
        while !cur.ptr.is_null() {
            out.push(Op(cur));
            cur = unsafe { mlirOperationGetNextInBlock(cur) };
        }
        out
    }
    pub fn first_op(self) -> Option<Op> {
        let o = unsafe { mlirBlockGetFirstOperation(self.0) };
        (!o.ptr.is_null()).then_some(Op(o))
    }
    pub fn terminator(self) -> Option<Op> {
        let o = unsafe { mlirBlockGetTerminator(self.0) };
        (!o.ptr.is_null()).then_some(Op(o))
    }
    pub fn num_args(self) -> usize {
        unsafe { mlirBlockGetNumArguments(self.0) as usize }
    }
    pub fn arg(self, i: usize) -> Value {
        assert!(i < self.num_args(), "block argument {i}");
        Value(unsafe { mlirBlockGetArgument(self.0, i as isize) })
    }
    pub fn args(self) -> Vec<Value> {
        (0..self.num_args()).map(|i| self.arg(i)).collect()
    }
    pub fn add_arg(self, t: Type, loc: Loc) -> Value {
        Value(unsafe { mlirBlockAddArgument(self.0, t.0, loc.0) })
    }
    pub fn parent_op(self) -> Option<Op> {
        let o = unsafe { mlirBlockGetParentOperation(self.0) };
        (!o.ptr.is_null()).then_some(Op(o))
    }
    /// Appends a detached op at the end of the block.
    pub fn append(self, op: Op) -> Op {
        unsafe { mlirBlockAppendOwnedOperation(self.0, op.0) };
        op
    }
    /// Inserts a detached op before `anchor` (a member of this block).
    pub fn insert_before(self, anchor: Op, op: Op) -> Op {
        unsafe { mlirBlockInsertOwnedOperationBefore(self.0, anchor.0, op.0) };
        op
    }
}

impl Region {
    pub fn new() -> Region {
        Region(unsafe { mlirRegionCreate() })
    }
    pub fn blocks(self) -> Vec<Block> {
        let mut out = Vec::new();
        let mut cur = unsafe { mlirRegionGetFirstBlock(self.0) };
        while !cur.ptr.is_null() {
            out.push(Block(cur));
            cur = unsafe { mlirBlockGetNextInRegion(cur) };
        }
        out
    }
    pub fn first_block(self) -> Option<Block> {
        let b = unsafe { mlirRegionGetFirstBlock(self.0) };
        (!b.ptr.is_null()).then_some(Block(b))
    }
    pub fn append_block(self, b: Block) -> Block {
        unsafe { mlirRegionAppendOwnedBlock(self.0, b.0) };
        b
    }
    /// Moves every block of `other` into this (empty) region.
    pub fn take_body(self, other: Region) {
        unsafe { mlirRegionTakeBody(self.0, other.0) }
    }
}

impl Default for Region {
    fn default() -> Self {
        Region::new()
    }
}

impl Value {
    pub fn ty(self) -> Type {
        Type(unsafe { mlirValueGetType(self.0) })
    }
    pub fn defining_op(self) -> Option<Op> {
        unsafe {
            if mlirValueIsAOpResult(self.0) {
                Some(Op(mlirOpResultGetOwner(self.0)))
            } else {
                None
            }
        }
    }
    /// For a block argument: its block and position.
    pub fn block_arg(self) -> Option<(Block, usize)> {
        unsafe {
            if mlirValueIsABlockArgument(self.0) {
                Some((
                    Block(mlirBlockArgumentGetOwner(self.0)),
                    mlirBlockArgumentGetArgNumber(self.0) as usize,
                ))
            } else {
                None
            }
        }
    }
    pub fn replace_all_uses_with(self, with: Value) {
        unsafe { mlirValueReplaceAllUsesOfWith(self.0, with.0) }
    }
    /// The block whose scope defines this value.
    pub fn owner_block(self) -> Option<Block> {
        match self.block_arg() {
            Some((b, _)) => Some(b),
            None => self.defining_op().and_then(|o| o.block()),
        }
    }
}

impl Type {
    pub fn is_index(self) -> bool {
        unsafe { mlirTypeIsAIndex(self.0) }
    }
    pub fn is_float(self) -> bool {
        unsafe { mlirTypeIsAFloat(self.0) }
    }
    pub fn is_integer(self) -> bool {
        unsafe { mlirTypeIsAInteger(self.0) }
    }
    /// Bit width of an integer or float type.
    pub fn width(self) -> Option<u32> {
        unsafe {
            if mlirTypeIsAInteger(self.0) {
                Some(mlirIntegerTypeGetWidth(self.0))
            } else if mlirTypeIsAFloat(self.0) {
                Some(mlirFloatTypeGetWidth(self.0))
            } else {
                None
            }
        }
    }
    pub fn ctx(self) -> Ctx {
        Ctx(unsafe { mlirTypeGetContext(self.0) })
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print_with(|cb, user| unsafe { mlirTypePrint(self.0, cb, user) }))
    }
}

impl Attr {
    pub fn as_string(self) -> Option<String> {
        unsafe { mlirAttributeIsAString(self.0) }
            .then(|| string_of(unsafe { mlirStringAttrGetValue(self.0) }))
    }
    /// The referenced name of a flat symbol reference (`@x` -> `x`).
    pub fn as_symbol(self) -> Option<String> {
        unsafe { mlirAttributeIsAFlatSymbolRef(self.0) }
            .then(|| string_of(unsafe { mlirFlatSymbolRefAttrGetValue(self.0) }))
    }
    pub fn as_type(self) -> Option<Type> {
        unsafe { mlirAttributeIsAType(self.0) }.then(|| Type(unsafe { mlirTypeAttrGetValue(self.0) }))
    }
    pub fn as_i64_array(self) -> Option<Vec<i64>> {
        unsafe {
            if !mlirAttributeIsADenseI64Array(self.0) {
                return None;
            }
            let n = mlirDenseArrayGetNumElements(self.0);
            Some((0..n).map(|i| mlirDenseI64ArrayGetElement(self.0, i)).collect())
        }
    }
    /// A float attribute's value, widened to f64 (exact for f32).
    pub fn as_float(self) -> Option<f64> {
        unsafe { mlirAttributeIsAFloat(self.0) }.then(|| unsafe { mlirFloatAttrGetValueDouble(self.0) })
    }
    pub fn as_int(self) -> Option<i64> {
        unsafe { mlirAttributeIsAInteger(self.0) }.then(|| unsafe { mlirIntegerAttrGetValueInt(self.0) })
    }
    pub fn as_array(self) -> Option<Vec<Attr>> {
        unsafe {
            if !mlirAttributeIsAArray(self.0) {
                return None;
            }
            let n = mlirArrayAttrGetNumElements(self.0);
            Some((0..n).map(|i| Attr(mlirArrayAttrGetElement(self.0, i))).collect())
        }
    }
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print_with(|cb, user| unsafe { mlirAttributePrint(self.0, cb, user) }))
    }
}

/// A source position extracted from a location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileLineCol {
    pub file: String,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for FileLineCol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

impl Loc {
    pub fn ctx(self) -> Ctx {
        Ctx(unsafe { mlirLocationGetContext(self.0) })
    }
    /// The first file:line:col inside this location (looking through names,
    /// call sites and fusions), if there is one.
    pub fn file_line_col(self) -> Option<FileLineCol> {
        unsafe {
            if mlirLocationIsAFileLineColRange(self.0) {
                let file = string_of(mlirIdentifierStr(mlirLocationFileLineColRangeGetFilename(self.0)));
                return Some(FileLineCol {
                    file,
                    line: mlirLocationFileLineColRangeGetStartLine(self.0) as u32,
                    col: mlirLocationFileLineColRangeGetStartColumn(self.0) as u32,
                });
            }
            if mlirLocationIsAName(self.0) {
                return Loc(mlirLocationNameGetChildLoc(self.0)).file_line_col();
            }
            if mlirLocationIsACallSite(self.0) {
                return Loc(mlirLocationCallSiteGetCallee(self.0)).file_line_col();
            }
            if mlirLocationIsAFused(self.0) {
                let n = mlirLocationFusedGetNumLocations(self.0) as usize;
                let mut locs = vec![MlirLocation { ptr: std::ptr::null_mut() }; n];
                mlirLocationFusedGetLocations(self.0, locs.as_mut_ptr());
                return locs.into_iter().find_map(|l| Loc(l).file_line_col());
            }
            None
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.file_line_col() {
            Some(p) => write!(f, "{p}"),
            None => f.write_str(&print_with(|cb, user| unsafe { mlirLocationPrint(self.0, cb, user) })),
        }
    }
}

/// Builds one operation from its parts (name, operands, results, attributes,
/// regions), like `OperationState` in C++.
pub struct OpBuilder {
    name: String,
    loc: Loc,
    operands: Vec<Value>,
    results: Vec<Type>,
    attrs: Vec<(String, Attr)>,
    regions: Vec<Region>,
    infer: bool,
}

impl OpBuilder {
    pub fn new(name: &str, loc: Loc) -> Self {
        OpBuilder {
            name: name.to_string(),
            loc,
            operands: vec![],
            results: vec![],
            attrs: vec![],
            regions: vec![],
            infer: false,
        }
    }
    pub fn operands(mut self, vs: &[Value]) -> Self {
        self.operands.extend_from_slice(vs);
        self
    }
    pub fn results(mut self, ts: &[Type]) -> Self {
        self.results.extend_from_slice(ts);
        self
    }
    pub fn attr(mut self, name: &str, a: Attr) -> Self {
        self.attrs.push((name.to_string(), a));
        self
    }
    pub fn region(mut self, r: Region) -> Self {
        self.regions.push(r);
        self
    }
    /// Let the op's type inference compute the result types.
    pub fn infer_results(mut self) -> Self {
        self.infer = true;
        self
    }
    /// Creates the op, detached. Returns `None` when MLIR cannot build it (for
    /// example when result type inference fails).
    pub fn build(self) -> Option<Op> {
        unsafe {
            let mut st = mlirOperationStateGet(sref(&self.name), self.loc.0);
            let ops: Vec<MlirValue> = self.operands.iter().map(|v| v.0).collect();
            mlirOperationStateAddOperands(&mut st, ops.len() as isize, ops.as_ptr());
            let res: Vec<MlirType> = self.results.iter().map(|t| t.0).collect();
            mlirOperationStateAddResults(&mut st, res.len() as isize, res.as_ptr());
            let ctx = mlirLocationGetContext(self.loc.0);
            let named: Vec<MlirNamedAttribute> = self
                .attrs
                .iter()
                .map(|(n, a)| MlirNamedAttribute {
                    name: mlirIdentifierGet(ctx, sref(n)),
                    attribute: a.0,
                })
                .collect();
            mlirOperationStateAddAttributes(&mut st, named.len() as isize, named.as_ptr());
            let regions: Vec<MlirRegion> = self.regions.iter().map(|r| r.0).collect();
            mlirOperationStateAddOwnedRegions(&mut st, regions.len() as isize, regions.as_ptr());
            if self.infer {
                mlirOperationStateEnableResultTypeInference(&mut st);
            }
            let op = mlirOperationCreate(&mut st);
            (!op.ptr.is_null()).then_some(Op(op))
        }
    }
}

/// Inserts built ops at a fixed point: the end of a block, or before an op.
#[derive(Clone, Copy)]
pub struct Cursor {
    block: Block,
    before: Option<Op>,
}

impl Cursor {
    pub fn at_end(block: Block) -> Cursor {
        Cursor { block, before: None }
    }
    pub fn before(op: Op) -> Cursor {
        Cursor { block: op.block().expect("op in a block"), before: Some(op) }
    }
    pub fn block(self) -> Block {
        self.block
    }
    /// The op before which this cursor inserts (none at a block's end).
    pub fn anchor(self) -> Option<Op> {
        self.before
    }
    /// Inserts a detached op here and returns it.
    pub fn insert(self, op: Op) -> Op {
        match self.before {
            Some(anchor) => self.block.insert_before(anchor, op),
            None => self.block.append(op),
        }
    }
    /// Builds and inserts; panics only on a malformed builder call in our own code.
    pub fn build(self, b: OpBuilder) -> Op {
        let name = b.name.clone();
        self.insert(b.build().unwrap_or_else(|| panic!("internal error: cannot build {name}")))
    }
}

/// Text that starts with a module op parses as it is; anything else is wrapped
/// in `module { ... }`. The wrapper goes on the first line, so lines keep
/// their numbers (columns on line 1 move only when that line holds code).
fn wrap_in_module(text: &str) -> Option<String> {
    let first_code = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("//"))?;
    if first_code.starts_with("module") || first_code.starts_with("builtin.module") || first_code.starts_with("\"builtin.module\"") {
        return None;
    }
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let first = if first.trim().is_empty() || first.trim_start().starts_with("//") {
        format!("module {{ {first}")
    } else {
        format!("module {{{first}")
    };
    Some(format!("{first}\n{rest}\n}}\n"))
}

/// See [`crate::parse_module_at`].
pub(crate) fn parse_module<'c>(
    context: &'c melior::Context,
    text: &str,
    filename: &str,
    first_line: usize,
) -> Option<Module<'c>> {
    let wrapped = wrap_in_module(text);
    let source = wrapped.as_deref().unwrap_or(text);
    // SAFETY: the parsed op is owned here and handed to a melior Module, which
    // owns and frees it.
    unsafe {
        let op = mlirOperationCreateParse(context.to_raw(), sref(source), sref(filename));
        if op.ptr.is_null() {
            return None;
        }
        if Op(op).name() != "builtin.module" {
            mlirOperationDestroy(op);
            return None;
        }
        if first_line > 0 {
            shift_lines(Op(op), first_line as u32);
        }
        Module::from_option_raw(mlirModuleFromOperation(op))
    }
}

/// Moves the file:line:col locations of `op` and the ops inside it down by
/// `by` lines (locations of other kinds are left as they are).
fn shift_lines(op: Op, by: u32) {
    for o in std::iter::once(op).chain(op.walk()) {
        let loc = o.loc();
        // SAFETY: reading a location's kind and parts reads only the location.
        if unsafe { mlirLocationIsAFileLineColRange(loc.0) }
            && let Some(p) = loc.file_line_col()
        {
            o.set_loc(o.ctx().file_line_col(&p.file, p.line + by, p.col));
        }
    }
}

/// Appends upstream pipeline elements given as text (`canonicalize,
/// func.func(cse)`) to a pass manager. Unlike melior's `parse_pass_pipeline`,
/// this keeps the passes already added.
pub fn add_textual_pipeline(pm: &melior::pass::OperationPassManager, elements: &str) -> Result<(), String> {
    let mut message = String::new();
    // SAFETY: the callback appends to `message`, alive for the whole call.
    let ok = unsafe {
        mlirOpPassManagerAddPipeline(
            pm.to_raw(),
            sref(elements),
            Some(append_to_string),
            &mut message as *mut String as *mut c_void,
        )
    };
    if ok.value != 0 {
        Ok(())
    } else {
        Err(format!("invalid pass pipeline element `{elements}`: {}", message.trim()))
    }
}

/// Old value -> new value, for cloning ops into another place.
pub type ValueMap = std::collections::HashMap<Value, Value>;

/// Deep-clones `op` at `at`, replacing every operand (also in nested regions)
/// that `map` knows, and records the clone's results in `map`.
pub fn clone_mapped(op: Op, at: Cursor, map: &mut ValueMap) -> Op {
    let new = at.insert(op.deep_clone());
    remap_operands(new, map);
    for (old, fresh) in op.results().into_iter().zip(new.results()) {
        map.insert(old, fresh);
    }
    new
}

/// Replaces the operands of `op` and of every op nested in it that `map` knows.
pub fn remap_operands(op: Op, map: &ValueMap) {
    for o in std::iter::once(op).chain(op.walk()) {
        for (i, v) in o.operands().into_iter().enumerate() {
            if let Some(n) = map.get(&v) {
                o.set_operand(i, *n);
            }
        }
    }
}

impl Attr {
    /// The payload of a `#gpu.object` (PTX text for `format=isa`).
    pub fn gpu_object_text(self) -> Option<String> {
        // SAFETY: checked to be a GPU object attribute first.
        unsafe { mlirAttributeIsAGPUObjectAttr(self.0) }.then(|| string_of(unsafe { mlirGPUObjectAttrGetObject(self.0) }))
    }
}

/// A deep copy of `module` as a new module (for compiling one module two ways).
pub fn clone_module<'c>(module: &Module<'c>) -> Module<'c> {
    let copy = Op::of_module(module).deep_clone();
    // SAFETY: the clone is a detached builtin.module op owned by the new Module.
    unsafe { Module::from_raw(mlirModuleFromOperation(copy.0)) }
}

impl Ctx {
    /// The unknown location.
    pub fn unknown_loc(self) -> Loc {
        Loc(unsafe { mlirLocationUnknownGet(self.0) })
    }
    /// The location `file:line:col`.
    pub fn file_line_col(self, file: &str, line: u32, col: u32) -> Loc {
        // SAFETY: MLIR copies the file name into the context.
        Loc(unsafe { mlirLocationFileLineColGet(self.0, sref(file), line, col) })
    }
}

impl Op {
    pub fn set_loc(self, loc: Loc) {
        unsafe { mlirOperationSetLocation(self.0, loc.0) }
    }
    /// The op as text in the custom form with every location written inline
    /// (`loc("file":line:col)`, no `#loc` aliases), so the text can be pasted
    /// into another module and parsed back with its locations.
    pub fn print_with_locations(self) -> String {
        unsafe {
            let flags = mlirOpPrintingFlagsCreate();
            mlirOpPrintingFlagsEnableDebugInfo(flags, true, false);
            mlirOpPrintingFlagsUseLocalScope(flags);
            let s = print_with(|cb, user| mlirOperationPrintWithFlags(self.0, flags, cb, user));
            mlirOpPrintingFlagsDestroy(flags);
            s
        }
    }
}
