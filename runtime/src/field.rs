//! Field storage and host access: one aligned, zero-initialized allocation per
//! field, row-major, with typed element access, slices, fill and zero.

use crate::error::Error;
use crate::native::AlignedBuf;

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
}

impl Element for f32 {
    const TYPE: ElemType = ElemType::F32;
}
impl Element for f64 {
    const TYPE: ElemType = ElemType::F64;
}
impl Element for i32 {
    const TYPE: ElemType = ElemType::I32;
}

/// A field's declaration as the runtime needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldInfo {
    pub name: String,
    pub elem: ElemType,
    pub shape: Vec<usize>,
    /// The field holding this field's adjoint, if any.
    pub grad: Option<String>,
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
}

/// A saved copy of a field's contents.
pub struct Snapshot {
    buf: AlignedBuf,
    bytes: usize,
}

impl Snapshot {
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// A field's memory.
pub struct Field {
    pub info: FieldInfo,
    pub(crate) buf: AlignedBuf,
}

impl Field {
    /// The field's zeroed memory; [`Error::OutOfMemory`] when it cannot be had.
    pub fn new(info: FieldInfo) -> Result<Field, Error> {
        let bytes = info.bytes();
        let buf = AlignedBuf::zeroed(bytes).ok_or_else(|| Error::OutOfMemory { what: format!("field @{}", info.name), bytes })?;
        Ok(Field { info, buf })
    }

    fn check_type<T: Element>(&self) -> Result<(), Error> {
        self.info.check_type::<T>()
    }

    /// Row-major position of `index`, checked against the shape.
    pub fn offset(&self, index: &[usize]) -> Result<usize, Error> {
        self.info.offset(index)
    }

    pub fn as_slice<T: Element>(&self) -> Result<&[T], Error> {
        self.check_type::<T>()?;
        Ok(self.buf.as_slice(self.info.len()))
    }

    pub fn as_mut_slice<T: Element>(&mut self) -> Result<&mut [T], Error> {
        self.check_type::<T>()?;
        let n = self.info.len();
        Ok(self.buf.as_mut_slice(n))
    }

    pub fn get<T: Element>(&self, index: &[usize]) -> Result<T, Error> {
        let off = self.offset(index)?;
        Ok(self.as_slice::<T>()?[off])
    }

    pub fn set<T: Element>(&mut self, index: &[usize], value: T) -> Result<(), Error> {
        let off = self.offset(index)?;
        self.as_mut_slice::<T>()?[off] = value;
        Ok(())
    }

    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>, Error> {
        Ok(self.as_slice::<T>()?.to_vec())
    }

    pub fn copy_from<T: Element>(&mut self, values: &[T]) -> Result<(), Error> {
        let name = self.info.name.clone();
        let dst = self.as_mut_slice::<T>()?;
        if dst.len() != values.len() {
            return Err(Error::Length { field: name, expected: dst.len(), given: values.len() });
        }
        dst.copy_from_slice(values);
        Ok(())
    }

    pub fn fill<T: Element>(&mut self, value: T) -> Result<(), Error> {
        self.as_mut_slice::<T>()?.fill(value);
        Ok(())
    }

    /// Sets every element to zero, whatever its type.
    pub fn zero(&mut self) {
        let n = self.info.bytes();
        self.buf.as_mut_slice::<u8>(n).fill(0);
    }

    /// Every element as f64 (for gradchecks and reports).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self.info.elem {
            ElemType::F32 => self.buf.as_slice::<f32>(self.info.len()).iter().map(|v| *v as f64).collect(),
            ElemType::F64 => self.buf.as_slice::<f64>(self.info.len()).to_vec(),
            ElemType::I32 => self.buf.as_slice::<i32>(self.info.len()).iter().map(|v| *v as f64).collect(),
        }
    }

    /// Sets every element from an f64 (converted to the element type).
    pub fn fill_f64(&mut self, v: f64) -> Result<(), Error> {
        for i in 0..self.info.len() {
            self.set_f64(i, v);
        }
        Ok(())
    }

    /// Sets element `offset` (row-major) from an f64.
    pub fn set_f64(&mut self, offset: usize, v: f64) {
        let n = self.info.len();
        match self.info.elem {
            ElemType::F32 => self.buf.as_mut_slice::<f32>(n)[offset] = v as f32,
            ElemType::F64 => self.buf.as_mut_slice::<f64>(n)[offset] = v,
            ElemType::I32 => self.buf.as_mut_slice::<i32>(n)[offset] = v as i32,
        }
    }

    /// A copy of the field's contents (counted in the allocation counters).
    pub fn snapshot(&self) -> Result<Snapshot, Error> {
        let n = self.info.bytes();
        let what = || Error::OutOfMemory { what: format!("a snapshot of @{}", self.info.name), bytes: n };
        let mut buf = AlignedBuf::zeroed(n).ok_or_else(what)?;
        buf.as_mut_slice::<u8>(n).copy_from_slice(self.buf.as_slice::<u8>(n));
        Ok(Snapshot { buf, bytes: n })
    }

    /// Puts back the contents saved by `snapshot` (of this field).
    pub fn restore(&mut self, s: &Snapshot) -> Result<(), Error> {
        let n = self.info.bytes();
        if s.bytes != n {
            return Err(Error::Internal(format!("snapshot of {} bytes restored into @{} ({n} bytes)", s.bytes, self.info.name)));
        }
        self.buf.as_mut_slice::<u8>(n).copy_from_slice(s.buf.as_slice::<u8>(n));
        Ok(())
    }

    pub(crate) fn ptr(&self) -> *mut u8 {
        self.buf.as_ptr()
    }
}
