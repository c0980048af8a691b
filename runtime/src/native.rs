//! The runtime's unsafe core, kept small: aligned zeroed field memory, the JIT
//! engine, and calls into JIT-compiled functions through MLIR's packed
//! interface (`_mlir_<name>(void **args)`: one pointer per argument, then one
//! per result).

use melior::StringRef;
use melior::ir::Module;
use mlir_sys::{MlirExecutionEngine, mlirExecutionEngineCreate, mlirExecutionEngineDestroy, mlirExecutionEngineLookup};
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of field memory (fields and snapshots) allocated now, and the peak.
static CURRENT_BYTES: AtomicUsize = AtomicUsize::new(0);
static PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Allocation counters of the runtime's field memory.
pub mod counters {
    use super::*;
    /// Bytes held by fields and snapshots right now.
    pub fn current_bytes() -> usize {
        CURRENT_BYTES.load(Ordering::Relaxed)
    }
    /// The most bytes held at once since the last `reset_peak`.
    pub fn peak_bytes() -> usize {
        PEAK_BYTES.load(Ordering::Relaxed)
    }
    /// Starts a new peak measurement from the current level.
    pub fn reset_peak() {
        PEAK_BYTES.store(current_bytes(), Ordering::Relaxed);
    }
}

/// Alignment of every field allocation (a cache line; AVX-512 friendly).
pub const FIELD_ALIGN: usize = 64;

/// A zero-initialized, 64-byte aligned allocation: a program's buffer (of a
/// field, or of the fields placed under one layout node) or a snapshot.
pub struct AlignedBuf {
    ptr: *mut u8,
    layout: Layout,
}

// SAFETY: the buffer is plain memory; synchronization of writes through the
// raw pointer is the kernels' business (atomics), as for any shared array.
unsafe impl Send for AlignedBuf {}
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// `bytes` zeroed bytes; `None` when the allocator cannot provide them.
    pub fn zeroed(bytes: usize) -> Option<AlignedBuf> {
        let layout = Layout::from_size_align(bytes.max(FIELD_ALIGN), FIELD_ALIGN).ok()?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        if ptr.is_null() {
            return None;
        }
        let now = CURRENT_BYTES.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK_BYTES.fetch_max(now, Ordering::Relaxed);
        Some(AlignedBuf { ptr, layout })
    }
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }
    /// Bytes allocated (at least one alignment unit).
    pub fn capacity(&self) -> usize {
        self.layout.size()
    }

    /// The i32 at element `i` (the host side of sparse trees: masks, tables,
    /// pools). Panics outside the buffer, never reads past it.
    pub fn load_i32(&self, i: usize) -> i32 {
        let mut b = [0u8; 4];
        self.copy_out(i * 4, &mut b);
        i32::from_ne_bytes(b)
    }

    /// Writes the i32 at element `i`; panics outside the buffer.
    pub fn store_i32(&self, i: usize, v: i32) {
        self.copy_in(i * 4, &v.to_ne_bytes());
    }

    /// Copies `out.len()` bytes from byte `at` out; panics outside the buffer.
    pub fn copy_out(&self, at: usize, out: &mut [u8]) {
        assert!(at.checked_add(out.len()).is_some_and(|end| end <= self.capacity()), "read outside a buffer");
        // SAFETY: in bounds (asserted); callers access sparse trees' buffers
        // only between launches, under their tree's lock, through raw pointers.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(at), out.as_mut_ptr(), out.len()) }
    }

    /// Copies `src` in at byte `at`; panics outside the buffer.
    pub fn copy_in(&self, at: usize, src: &[u8]) {
        assert!(at.checked_add(src.len()).is_some_and(|end| end <= self.capacity()), "write outside a buffer");
        // SAFETY: as for `copy_out`.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.add(at), src.len()) }
    }

    /// Zeroes `len` bytes from byte `at`; panics outside the buffer.
    pub fn zero_bytes(&self, at: usize, len: usize) {
        assert!(at.checked_add(len).is_some_and(|end| end <= self.capacity()), "write outside a buffer");
        // SAFETY: as for `copy_out`.
        unsafe { std::ptr::write_bytes(self.ptr.add(at), 0, len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        CURRENT_BYTES.fetch_sub(self.layout.size(), Ordering::Relaxed);
        // SAFETY: allocated in `zeroed` with this layout.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

/// The JIT engine of one compiled module. It is only used for symbol lookup,
/// once, while the module's function table is built.
pub struct Engine(MlirExecutionEngine);

// SAFETY: after construction the engine is only read (lookups happen under the
// compile cache's lock); the compiled code it owns is immutable.
unsafe impl Send for Engine {}
unsafe impl Sync for Engine {}

impl Engine {
    /// JIT-compiles `module` (already in the LLVM dialect) at -O3; `None`
    /// when MLIR cannot translate or compile it.
    pub fn create(module: &Module) -> Option<Engine> {
        // SAFETY: the module is valid for the call; MLIR copies what it needs,
        // and returns a null engine on failure.
        let raw = unsafe { mlirExecutionEngineCreate(module.to_raw(), 3, 0, std::ptr::null(), false, false) };
        (!raw.ptr.is_null()).then_some(Engine(raw))
    }

    /// The packed entry point of function `name`, if the module defines it.
    pub(crate) fn packed(&self, name: &str) -> Option<PackedFn> {
        let symbol = format!("_mlir_{name}");
        // SAFETY: a live engine; the name is valid for the call.
        let p = unsafe { mlirExecutionEngineLookup(self.0, StringRef::new(&symbol).to_raw()) };
        // SAFETY: ExecutionEngine generates `_mlir_<name>` with exactly this signature.
        (!p.is_null()).then(|| PackedFn(unsafe { std::mem::transmute::<*mut c_void, RawPacked>(p) }))
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: created by `create`, destroyed once.
        unsafe { mlirExecutionEngineDestroy(self.0) }
    }
}

type RawPacked = unsafe extern "C" fn(*mut *mut c_void);

/// A JIT-compiled function behind MLIR's packed calling convention.
#[derive(Clone, Copy)]
pub(crate) struct PackedFn(RawPacked);

/// The most arguments (plus results) one packed call takes.
pub const MAX_ARGS: usize = 64;

/// One argument slot: 8 bytes holding a scalar (little-endian, low bytes used
/// by narrower types) or a pointer.
pub type Slot = u64;

impl PackedFn {
    /// Calls the function with `slots` as its arguments and results.
    ///
    /// # Safety
    /// The slots match the function's signature (checked against the
    /// kernel's parameter types), and the pointers among them address live
    /// memory of the sizes the function indexes (field extents) for the call.
    pub(crate) unsafe fn call(self, slots: &mut [Slot]) {
        assert!(slots.len() <= MAX_ARGS, "too many kernel arguments");
        let mut ptrs = [std::ptr::null_mut::<c_void>(); MAX_ARGS];
        for (p, s) in ptrs.iter_mut().zip(slots.iter_mut()) {
            *p = s as *mut Slot as *mut c_void;
        }
        // SAFETY: the caller's contract: each pointer addresses a slot large
        // enough for the argument or result type it stands for.
        unsafe { (self.0)(ptrs.as_mut_ptr()) }
    }
}

/// A raw field pointer as an argument slot.
pub fn pointer_slot(p: *mut u8) -> Slot {
    p as usize as Slot
}
