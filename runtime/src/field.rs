//! Field storage and host access. A program allocates one aligned,
//! zero-initialized buffer per dense layout node that holds fields and one per
//! field of its own (`ds_dialects::ops::layout`); a field is a strided view of
//! its buffer ([`Placement`]). Host access (typed elements, fill, zero,
//! snapshots) goes through the strides, in row-major order of the field's
//! index, whatever the layout.

use crate::error::Error;
use crate::native::AlignedBuf;
use crate::sparse::{SparseHost, SparseStats};
use std::ops::Range;
use std::sync::Arc;

/// The element types fields may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemType {
    F32,
    F64,
    I32,
}

impl ElemType {
    pub fn parse(mlir: &str) -> Option<ElemType> {
        match mlir {
            "f32" => Some(ElemType::F32),
            "f64" => Some(ElemType::F64),
            "i32" => Some(ElemType::I32),
            _ => None,
        }
    }
    pub fn size(self) -> usize {
        match self {
            ElemType::F32 | ElemType::I32 => 4,
            ElemType::F64 => 8,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ElemType::F32 => "f32",
            ElemType::F64 => "f64",
            ElemType::I32 => "i32",
        }
    }
}

impl std::fmt::Display for ElemType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for i32 {}
}

/// A Rust type that can be a field element: f32, f64 or i32, whose every
/// bit pattern is a valid value (sealed: field bytes are read as these types).
pub trait Element: sealed::Sealed + Copy + Default + std::fmt::Debug + Send + Sync + 'static {
    const TYPE: ElemType;
    /// The value's bytes (native order) into `out` (`TYPE.size()` of them).
    fn put(self, out: &mut [u8]);
    /// The value of `TYPE.size()` bytes (native order).
    fn take(bytes: &[u8]) -> Self;
}

macro_rules! element {
    ($t:ty, $e:ident, $n:literal) => {
        impl Element for $t {
            const TYPE: ElemType = ElemType::$e;
            fn put(self, out: &mut [u8]) {
                out[..$n].copy_from_slice(&self.to_ne_bytes());
            }
            fn take(bytes: &[u8]) -> Self {
                let mut b = [0u8; $n];
                b.copy_from_slice(&bytes[..$n]);
                <$t>::from_ne_bytes(b)
            }
        }
    };
}
element!(f32, F32, 4);
element!(f64, F64, 8);
element!(i32, I32, 4);

/// Where a field's elements live: element `index` is at
/// `offset + sum(index[d] * strides[d])` (in elements) of buffer `buffer`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Placement {
    /// Index into the program's buffers ([`BufferInfo`]).
    pub buffer: usize,
    pub offset: usize,
    pub strides: Vec<usize>,
}

/// One allocation of a program: a dense layout node's, or a field's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BufferInfo {
    /// The layout node's name, or the field's.
    pub name: String,
    /// Whether it is a layout node's buffer (shared by the fields placed there).
    pub node: bool,
    pub bytes: usize,
}

impl BufferInfo {
    /// What an allocation failure names: `layout node @n` or `field @x`.
    pub fn what(&self) -> String {
        format!("{} @{}", if self.node { "layout node" } else { "field" }, self.name)
    }
}

/// A field's declaration as the runtime needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldInfo {
    pub name: String,
    pub elem: ElemType,
    pub shape: Vec<usize>,
    /// The field holding this field's adjoint, if any.
    pub grad: Option<String>,
    /// The field holding this field's tangent (forward mode), if any.
    pub dual: Option<String>,
    /// Where it was declared (a frontend's Rust line, a ds file's line).
    pub declared_at: Option<crate::Location>,
    /// Where its elements are (for a sparse field: its data buffer; the
    /// strides are not used, elements are found through its tree).
    pub placement: Placement,
    /// For a field under a sparse layout: its tree, by index into the
    /// compiled module's trees (`Compiled::sparse`).
    pub sparse: Option<usize>,
}

impl FieldInfo {
    /// Elements (saturating: a shape too large for memory fails to allocate).
    pub fn len(&self) -> usize {
        self.shape.iter().fold(1usize, |n, &d| n.saturating_mul(d))
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn bytes(&self) -> usize {
        self.len().saturating_mul(self.elem.size())
    }

    /// Row-major position of `index`, checked against the shape.
    pub fn offset(&self, index: &[usize]) -> Result<usize, Error> {
        let bad = || Error::HostIndex { field: self.name.clone(), index: index.to_vec(), shape: self.shape.clone() };
        if index.len() != self.shape.len() {
            return Err(bad());
        }
        let mut off = 0;
        for (&i, &n) in index.iter().zip(&self.shape) {
            if i >= n {
                return Err(bad());
            }
            off = off * n + i;
        }
        Ok(off)
    }

    /// The element range `[start, start + len)`, checked against the field's size.
    pub fn check_range(&self, start: usize, len: usize) -> Result<std::ops::Range<usize>, Error> {
        match start.checked_add(len) {
            Some(end) if end <= self.len() => Ok(start..end),
            _ => Err(Error::Length { field: self.name.clone(), expected: self.len(), given: start.saturating_add(len) }),
        }
    }

    pub(crate) fn check_type<T: Element>(&self) -> Result<(), Error> {
        if T::TYPE == self.elem {
            Ok(())
        } else {
            Err(Error::ElementType { field: self.name.clone(), holds: self.elem, accessed: T::TYPE })
        }
    }

    /// Whether the elements lie row-major, one after another, in the buffer
    /// (from `placement.offset`): then a range of them is one copy.
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for (&s, &n) in self.placement.strides.iter().zip(&self.shape).rev() {
            if n > 1 && s != expected {
                return false;
            }
            expected *= n;
        }
        true
    }

    /// The buffer positions (in elements) of the field's elements `range`,
    /// in row-major order of the index (`range` within the field).
    pub fn positions(&self, range: Range<usize>) -> Positions<'_> {
        let mut index = vec![0; self.shape.len()];
        let mut rest = range.start;
        for (i, &n) in index.iter_mut().zip(&self.shape).rev() {
            if n > 0 {
                *i = rest % n;
                rest /= n;
            }
        }
        let pos = self.placement.offset + index.iter().zip(&self.placement.strides).map(|(i, s)| i * s).sum::<usize>();
        Positions { info: self, index, pos, left: range.len() }
    }

    /// The buffer span `[lo, hi)` (elements) holding the elements `range`.
    pub fn span(&self, range: Range<usize>) -> Range<usize> {
        if self.is_contiguous() {
            let start = self.placement.offset + range.start;
            return start..start + range.len();
        }
        let (lo, hi) = self.positions(range).fold((usize::MAX, 0), |(lo, hi), p| (lo.min(p), hi.max(p + 1)));
        lo.min(hi)..hi
    }
}

/// The buffer positions of a run of a field's elements ([`FieldInfo::positions`]).
pub struct Positions<'a> {
    info: &'a FieldInfo,
    index: Vec<usize>,
    pos: usize,
    left: usize,
}

impl Iterator for Positions<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let out = self.pos;
        if self.left > 0 {
            let (shape, strides) = (&self.info.shape, &self.info.placement.strides);
            for d in (0..shape.len()).rev() {
                self.index[d] += 1;
                self.pos += strides[d];
                if self.index[d] < shape[d] {
                    break;
                }
                self.pos -= strides[d] * shape[d];
                self.index[d] = 0;
            }
        }
        Some(out)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// Copies elements `range` of a field between memory holding its buffer's
/// positions from `base` on (`buf`) and `packed` (the elements row-major, one
/// after another): out of the buffer into `packed` when `out`, else back.
///
/// # Safety
/// `buf` is valid for the buffer positions `info.span(range)` (relative to
/// `base`) and `packed` for `range.len()` elements, and nothing else reads or
/// writes the bytes written meanwhile.
pub(crate) unsafe fn transfer(info: &FieldInfo, range: Range<usize>, buf: *mut u8, base: usize, packed: *mut u8, out: bool) {
    let size = info.elem.size();
    let copy = |pos: usize, k: usize, n: usize| {
        let (b, p) = ((pos - base) * size, k * size);
        // SAFETY: the caller's contract: both are in bounds and not aliased.
        unsafe {
            if out {
                std::ptr::copy_nonoverlapping(buf.add(b), packed.add(p), n * size)
            } else {
                std::ptr::copy_nonoverlapping(packed.add(p), buf.add(b), n * size)
            }
        }
    };
    if info.is_contiguous() {
        copy(info.placement.offset + range.start, 0, range.len());
    } else {
        for (k, pos) in info.positions(range).enumerate() {
            copy(pos, k, 1);
        }
    }
}

/// A saved copy of a field's contents (its elements, row-major).
pub struct Snapshot {
    buf: AlignedBuf,
    bytes: usize,
    /// A sparse field's: its tree's structure and its data (`buf` unused).
    tree: Option<crate::sparse::TreeSnapshot>,
}

impl Snapshot {
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// A field: its declaration and the buffer that holds it, shared with the
/// fields placed with it under one layout node. Each field reaches only its
/// own elements (the layout gives fields disjoint positions), through raw
/// pointers, so handles of fields sharing a buffer never overlap.
pub struct Field {
    pub info: FieldInfo,
    pub(crate) buf: Arc<AlignedBuf>,
    /// For a sparse field: its tree's host side, and whether it is an
    /// adjoint (whose writes never activate cells).
    pub(crate) sparse: Option<(Arc<SparseHost>, bool)>,
}

impl Field {
    /// The field `info` in `buf`, the buffer its placement names.
    pub(crate) fn in_buffer(info: FieldInfo, buf: Arc<AlignedBuf>) -> Field {
        Field { info, buf, sparse: None }
    }

    /// The sparse tree holding this field, if it is sparse.
    pub fn sparse(&self) -> Option<&SparseHost> {
        self.sparse.as_ref().map(|(h, _)| h.as_ref())
    }

    fn need_sparse(&self, what: &str) -> Result<&SparseHost, Error> {
        self.sparse().ok_or_else(|| Error::Sparse {
            field: self.info.name.clone(),
            message: format!("{what} needs a field under a pointer or bitmasked node; this one is dense"),
        })
    }

    /// Memory and occupancy (blocks allocated, bytes, active cells) of a sparse field.
    pub fn sparse_stats(&self) -> Result<SparseStats, Error> {
        self.need_sparse("sparse_stats")?.stats(&self.info.name)
    }

    /// The active cells of a sparse field (cell indices, without component
    /// dimensions); every cell of a dense one.
    pub fn active_cells(&self) -> Vec<Vec<usize>> {
        match self.sparse() {
            Some(h) => h.active_cells(),
            None => {
                let cells = &self.info.shape;
                (0..self.info.len()).map(|k| unravel(k, cells)).collect()
            }
        }
    }

    /// The cell part of an element index, checked against the shape.
    fn cell_of<'a>(&self, index: &'a [usize]) -> Result<&'a [usize], Error> {
        self.offset(index)?;
        let rank = self.sparse().map_or(index.len(), |h| h.tree.rank());
        Ok(&index[..rank])
    }

    /// Activates the cell holding element `index` (Taichi's `ti.activate`).
    pub fn activate(&mut self, index: &[usize]) -> Result<(), Error> {
        let cell = self.cell_of(index)?;
        self.need_sparse("activate")?.activate_cell(&self.info.name, cell)
    }

    /// Deactivates the cell holding element `index` at its innermost sparse
    /// level (zeroing it; a pointer's block goes back to the pool).
    pub fn deactivate(&mut self, index: &[usize]) -> Result<(), Error> {
        let cell = self.cell_of(index)?;
        self.need_sparse("deactivate")?.deactivate_cell(cell);
        Ok(())
    }

    /// Whether the cell holding element `index` is active (always, for a dense field).
    pub fn is_active(&self, index: &[usize]) -> Result<bool, Error> {
        let cell = self.cell_of(index)?;
        Ok(self.sparse().is_none_or(|h| h.is_active(cell)))
    }

    /// Deactivates every cell of the field's tree (every field placed there).
    pub fn deactivate_all(&mut self) -> Result<(), Error> {
        self.need_sparse("deactivate_all")?.deactivate_all();
        Ok(())
    }

    /// Sets a sparse field from a dense array (row-major, one value per
    /// element) without activating the cells that hold zero: a cell with a
    /// non-zero component is written (and so activated; an adjoint field's
    /// inactive cell is an error), an active cell of zeros is zeroed and
    /// stays active, an inactive one stays inactive. The other fields of the
    /// tree keep their values. After `deactivate_all` the active set is
    /// exactly the non-zero cells. A dense field is copied.
    pub fn from_dense<T: Element>(&mut self, values: &[T]) -> Result<(), Error> {
        self.check_type::<T>()?;
        if values.len() != self.info.len() {
            return Err(Error::Length { field: self.info.name.clone(), expected: self.info.len(), given: values.len() });
        }
        let Some((host, adjoint)) = self.sparse.clone() else { return self.write(0, values) };
        let comps = self.components();
        let cells: Vec<usize> = host.tree.cell_shape().iter().map(|&n| n as usize).collect();
        let mut bytes = vec![0u8; T::TYPE.size()];
        for (c, chunk) in values.chunks(comps).enumerate() {
            let nonzero = chunk.iter().any(|v| {
                v.put(&mut bytes);
                bytes.iter().any(|&b| b != 0)
            });
            let cell = unravel(c, &cells);
            if !nonzero && !host.is_active(&cell) {
                continue;
            }
            for (k, v) in chunk.iter().enumerate() {
                v.put(&mut bytes);
                host.write(&self.info.name, &cell, k, &bytes, adjoint)?;
            }
        }
        Ok(())
    }

    /// Components per cell (elements of the non-cell dimensions).
    fn components(&self) -> usize {
        let rank = self.sparse().map_or(self.info.shape.len(), |h| h.tree.rank());
        self.info.shape[rank..].iter().product::<usize>().max(1)
    }

    /// Sparse element access of elements `range` (row-major), to `out` or from it.
    fn sparse_copy(&self, range: Range<usize>, packed: &mut [u8], out: bool) -> Result<(), Error> {
        let (host, adjoint) = self.sparse.as_ref().expect("a sparse field");
        let size = self.info.elem.size();
        let comps = self.components();
        let cells: Vec<usize> = host.tree.cell_shape().iter().map(|&n| n as usize).collect();
        for (j, k) in range.enumerate() {
            let cell = unravel(k / comps, &cells);
            let bytes = &mut packed[j * size..(j + 1) * size];
            if out {
                host.read(&self.info.name, &cell, k % comps, bytes)?;
            } else {
                host.write(&self.info.name, &cell, k % comps, bytes, *adjoint)?;
            }
        }
        Ok(())
    }

    fn check_type<T: Element>(&self) -> Result<(), Error> {
        self.info.check_type::<T>()
    }

    /// Row-major position of `index`, checked against the shape.
    pub fn offset(&self, index: &[usize]) -> Result<usize, Error> {
        self.info.offset(index)
    }

    /// Copies elements `range` (checked against the shape) out to `packed`
    /// (`range.len()` elements) or in from it.
    fn copy(&self, range: Range<usize>, packed: *mut u8, out: bool) {
        let span = self.info.span(range.clone());
        if span.is_empty() {
            return;
        }
        assert!(span.end * self.info.elem.size() <= self.buf.capacity(), "field @{} outside its buffer", self.info.name);
        // SAFETY: the span is in the buffer (asserted) and `packed` holds the
        // elements (the callers' slices). The positions are this field's own
        // (the layout gives fields disjoint ones), which no reference aliases:
        // fields sharing a buffer reach it only through raw pointers.
        unsafe { transfer(&self.info, range, self.buf.as_ptr(), 0, packed, out) }
    }

    /// Copies the elements `[start, start + out.len())` (row-major) into `out`.
    pub fn read<T: Element>(&self, start: usize, out: &mut [T]) -> Result<(), Error> {
        self.check_type::<T>()?;
        let range = self.info.check_range(start, out.len())?;
        if self.sparse.is_some() {
            let size = T::TYPE.size();
            let mut bytes = vec![0u8; out.len() * size];
            self.sparse_copy(range, &mut bytes, true)?;
            for (v, b) in out.iter_mut().zip(bytes.chunks(size)) {
                *v = T::take(b);
            }
            return Ok(());
        }
        self.copy(range, out.as_mut_ptr() as *mut u8, true);
        Ok(())
    }

    /// Writes `values` into the elements `[start, start + values.len())` (row-major).
    pub fn write<T: Element>(&mut self, start: usize, values: &[T]) -> Result<(), Error> {
        self.check_type::<T>()?;
        let range = self.info.check_range(start, values.len())?;
        if self.sparse.is_some() {
            // A write activates the cells it reaches (not those of an adjoint).
            let size = T::TYPE.size();
            let mut bytes = vec![0u8; values.len() * size];
            for (v, b) in values.iter().zip(bytes.chunks_mut(size)) {
                v.put(b);
            }
            return self.sparse_copy(range, &mut bytes, false);
        }
        // Only read from: `copy` into the buffer.
        self.copy(range, values.as_ptr() as *mut u8, false);
        Ok(())
    }

    pub fn get<T: Element>(&self, index: &[usize]) -> Result<T, Error> {
        let mut v = [T::default()];
        self.read(self.offset(index)?, &mut v)?;
        Ok(v[0])
    }

    pub fn set<T: Element>(&mut self, index: &[usize], value: T) -> Result<(), Error> {
        let off = self.offset(index)?;
        self.write(off, &[value])
    }

    /// Every element, row-major.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>, Error> {
        let mut v = vec![T::default(); self.info.len()];
        self.read(0, &mut v)?;
        Ok(v)
    }

    /// Sets every element from `values` (row-major, exactly one per element).
    pub fn copy_from<T: Element>(&mut self, values: &[T]) -> Result<(), Error> {
        self.check_type::<T>()?;
        if values.len() != self.info.len() {
            return Err(Error::Length { field: self.info.name.clone(), expected: self.info.len(), given: values.len() });
        }
        self.write(0, values)
    }

    /// Sets every element to `value`; for a sparse field, every element of
    /// its active cells (as Taichi's `fill`, a loop over the active cells).
    pub fn fill<T: Element>(&mut self, value: T) -> Result<(), Error> {
        self.check_type::<T>()?;
        if let Some((host, _)) = self.sparse.clone() {
            let comps = self.components();
            let mut bytes = vec![0u8; T::TYPE.size()];
            value.put(&mut bytes);
            for cell in host.active_cells() {
                for k in 0..comps {
                    host.write(&self.info.name, &cell, k, &bytes, true)?;
                }
            }
            return Ok(());
        }
        self.write(0, &vec![value; self.info.len()])
    }

    /// Sets every element to zero, whatever its type: a memset where the
    /// field's elements are contiguous in its buffer.
    pub fn zero(&mut self) {
        if self.sparse.is_some() {
            // Inactive cells hold 0: zeroing the data keeps the active set.
            self.buf.zero_bytes(0, self.buf.capacity());
            return;
        }
        let span = self.info.span(0..self.info.len());
        if self.info.is_contiguous() && !span.is_empty() {
            let size = self.info.elem.size();
            assert!(span.end * size <= self.buf.capacity(), "field @{} outside its buffer", self.info.name);
            // SAFETY: the span is in the buffer (asserted) and is this field's
            // own (fields sharing a buffer have disjoint positions, reached
            // only through raw pointers).
            unsafe { std::ptr::write_bytes(self.buf.as_ptr().add(span.start * size), 0, span.len() * size) };
            return;
        }
        let zeros = vec![0u8; self.info.bytes()];
        self.copy(0..self.info.len(), zeros.as_ptr() as *mut u8, false);
    }

    /// Every element as f64 (for gradchecks and reports).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        let all = || -> Result<Vec<f64>, Error> {
            Ok(match self.info.elem {
                ElemType::F32 => self.to_vec::<f32>()?.into_iter().map(f64::from).collect(),
                ElemType::F64 => self.to_vec::<f64>()?,
                ElemType::I32 => self.to_vec::<i32>()?.into_iter().map(f64::from).collect(),
            })
        };
        all().expect("the field's own element type")
    }

    /// Sets every element from an f64 (converted to the element type).
    pub fn fill_f64(&mut self, v: f64) -> Result<(), Error> {
        match self.info.elem {
            ElemType::F32 => self.fill(v as f32),
            ElemType::F64 => self.fill(v),
            ElemType::I32 => self.fill(v as i32),
        }
    }

    /// Sets element `offset` (row-major) from an f64.
    pub fn set_f64(&mut self, offset: usize, v: f64) {
        let r = match self.info.elem {
            ElemType::F32 => self.write(offset, &[v as f32]),
            ElemType::F64 => self.write(offset, &[v]),
            ElemType::I32 => self.write(offset, &[v as i32]),
        };
        r.expect("an element of the field");
    }

    /// A copy of the field's elements (counted in the allocation counters).
    pub fn snapshot(&self) -> Result<Snapshot, Error> {
        if let Some(host) = self.sparse() {
            // The tree's structure with the field's data (`SparseHost::snapshot`).
            let tree = host.snapshot(&self.info.name)?;
            let buf = AlignedBuf::zeroed(1).ok_or_else(|| Error::OutOfMemory { what: "a snapshot".into(), bytes: 1 })?;
            return Ok(Snapshot { buf, bytes: tree.bytes(), tree: Some(tree) });
        }
        let n = self.info.bytes();
        let what = || Error::OutOfMemory { what: format!("a snapshot of @{}", self.info.name), bytes: n };
        let buf = AlignedBuf::zeroed(n).ok_or_else(what)?;
        self.copy(0..self.info.len(), buf.as_ptr(), true);
        Ok(Snapshot { buf, bytes: n, tree: None })
    }

    /// The bytes a snapshot of this field holds (a sparse field's: its
    /// tree's structure and its data buffer).
    pub fn snapshot_bytes(&self) -> usize {
        match self.sparse() {
            Some(host) => host.snapshot_bytes(&self.info.name),
            None => self.info.bytes(),
        }
    }

    /// Puts back the elements saved by `snapshot` (of this field); the other
    /// fields of its buffer keep theirs. A sparse field's puts back its
    /// tree's structure too (`SparseHost::restore`: the tree's other fields
    /// keep their values cell by cell).
    pub fn restore(&mut self, s: &Snapshot) -> Result<(), Error> {
        if let Some(host) = self.sparse() {
            let tree = s.tree.as_ref().ok_or_else(|| Error::Internal(format!("a dense snapshot restored into sparse @{}", self.info.name)))?;
            let adjoints: Vec<String> = host.fields.iter().filter(|f| f.adjoint).map(|f| f.name.clone()).collect();
            return host.restore(&self.info.name, tree, &adjoints);
        }
        let n = self.info.bytes();
        if s.bytes != n {
            return Err(Error::Internal(format!("snapshot of {} bytes restored into @{} ({n} bytes)", s.bytes, self.info.name)));
        }
        self.copy(0..self.info.len(), s.buf.as_ptr(), false);
        Ok(())
    }

    /// The base of the field's buffer: what its kernels' memref argument
    /// takes (the field's offset and strides are in the memref type).
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.buf.as_ptr()
    }

    /// The base of the field's buffer, for zero-copy views by frontends
    /// (the Python package's numpy arrays): element `index` is
    /// `placement.offset + sum(index[d] * placement.strides[d])` elements
    /// from it. Valid while the program lives; launches write through it.
    pub fn buffer_ptr(&self) -> *mut u8 {
        self.buf.as_ptr()
    }
}

/// Row-major indices of linear position `k` in `shape`.
fn unravel(mut k: usize, shape: &[usize]) -> Vec<usize> {
    let mut out = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        if shape[d] > 0 {
            out[d] = k % shape[d];
            k /= shape[d];
        }
    }
    out
}
