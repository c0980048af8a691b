//! .npy files (through the `npyz` crate): f32, f64 and i32 arrays of any
//! rank, C or Fortran order on reading (stored row-major, as fields are),
//! C order on writing.

use crate::error::Error;
use ds_runtime::ElemType;
use npyz::{DType, TypeChar, WriterBuilder};
use std::fs::File;
use std::io::{BufReader, BufWriter};

/// A field's elements, row-major.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I32(Vec<i32>),
}

impl Values {
    pub fn elem(&self) -> ElemType {
        match self {
            Values::F32(_) => ElemType::F32,
            Values::F64(_) => ElemType::F64,
            Values::I32(_) => ElemType::I32,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::I32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every element as f64 (exact for all three types).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            Values::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Values::F64(v) => v.clone(),
            Values::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        }
    }

    /// Elements `range`, each as ds-run prints it (`{:?}`: the shortest text
    /// that reads back to the same value, `1.0` rather than `1`).
    pub fn format(&self, range: std::ops::Range<usize>) -> Vec<String> {
        match self {
            Values::F32(v) => v[range].iter().map(|x| format!("{x:?}")).collect(),
            Values::F64(v) => v[range].iter().map(|x| format!("{x:?}")).collect(),
            Values::I32(v) => v[range].iter().map(|x| x.to_string()).collect(),
        }
    }
}

/// An array read from a .npy file.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<u64>,
    pub values: Values,
}

fn io_error(path: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| match source.kind() {
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
            Error::Npy { path: path.into(), message: source.to_string() }
        }
        _ => Error::Io { path: path.into(), source },
    }
}

/// The element type a .npy type string stands for, if a field can hold it.
fn elem_of(dtype: &DType) -> Option<ElemType> {
    let DType::Plain(ts) = dtype else { return None };
    match (ts.type_char(), ts.num_bytes()) {
        (TypeChar::Float, Some(4)) => Some(ElemType::F32),
        (TypeChar::Float, Some(8)) => Some(ElemType::F64),
        (TypeChar::Int, Some(4)) => Some(ElemType::I32),
        _ => None,
    }
}

fn describe(dtype: &DType) -> String {
    match dtype {
        DType::Plain(ts) => ts.to_string(),
        other => format!("{other:?}"),
    }
}

/// Why a file does not fit what the caller wants.
enum Mismatch {
    /// The file's type string.
    Dtype(String),
    Shape(Vec<u64>),
}

/// Reads `path`. With `want` (a field's element type and shape), a file of
/// another element type or shape is a [`Mismatch`], found before its data is read.
fn read_checked(path: &str, want: Option<(ElemType, &[usize])>) -> Result<Result<Array, Mismatch>, Error> {
    let file = File::open(path).map_err(|source| Error::Io { path: path.into(), source })?;
    let npy = npyz::NpyFile::new(BufReader::new(file)).map_err(io_error(path))?;
    let dtype = npy.dtype();
    let Some(elem) = elem_of(&dtype).filter(|e| want.is_none_or(|(w, _)| w == *e)) else {
        return Ok(Err(Mismatch::Dtype(describe(&dtype))));
    };
    let shape = npy.shape().to_vec();
    if let Some((_, want)) = want
        && (shape.len() != want.len() || shape.iter().zip(want).any(|(&a, &b)| a != b as u64))
    {
        return Ok(Err(Mismatch::Shape(shape)));
    }
    let fortran = npy.order() == npyz::Order::Fortran && shape.len() > 1;
    let strides = npy.strides().to_vec();
    let expected: u64 = shape.iter().product();
    let checked = |n: usize| {
        if n as u64 == expected {
            Ok(())
        } else {
            Err(Error::Npy { path: path.into(), message: format!("{n} elements for shape {shape:?}") })
        }
    };
    let values = match elem {
        ElemType::F32 => {
            let v = npy.into_vec::<f32>().map_err(io_error(path))?;
            checked(v.len())?;
            Values::F32(c_order(v, &shape, &strides, fortran))
        }
        ElemType::F64 => {
            let v = npy.into_vec::<f64>().map_err(io_error(path))?;
            checked(v.len())?;
            Values::F64(c_order(v, &shape, &strides, fortran))
        }
        ElemType::I32 => {
            let v = npy.into_vec::<i32>().map_err(io_error(path))?;
            checked(v.len())?;
            Values::I32(c_order(v, &shape, &strides, fortran))
        }
    };
    Ok(Ok(Array { shape, values }))
}

/// Reads a .npy file of f32, f64 or i32 elements.
pub fn read(path: &str) -> Result<Array, Error> {
    match read_checked(path, None)? {
        Ok(a) => Ok(a),
        Err(Mismatch::Dtype(found)) => Err(Error::Npy {
            path: path.into(),
            message: format!("element type {found}: ds-run reads float32, float64 and int32 arrays"),
        }),
        Err(Mismatch::Shape(_)) => Err(Error::Npy { path: path.into(), message: "unexpected shape".into() }),
    }
}

/// Reads `path` for field `field` of type `elem` and shape `shape`: a
/// different element type or shape is an error naming the field.
pub fn read_field(path: &str, field: &str, elem: ElemType, shape: &[usize]) -> Result<Values, Error> {
    match read_checked(path, Some((elem, shape)))? {
        Ok(a) => Ok(a.values),
        Err(Mismatch::Dtype(found)) => {
            Err(Error::NpyDtype { field: field.into(), path: path.into(), found, expected: elem })
        }
        Err(Mismatch::Shape(found)) => {
            Err(Error::NpyShape { field: field.into(), path: path.into(), found, expected: shape.to_vec() })
        }
    }
}

/// Elements stored in Fortran order, put in row-major order.
fn c_order<T: Copy>(data: Vec<T>, shape: &[u64], strides: &[u64], fortran: bool) -> Vec<T> {
    if !fortran {
        return data;
    }
    let mut out = Vec::with_capacity(data.len());
    let mut index = vec![0u64; shape.len()];
    for _ in 0..data.len() {
        let at: u64 = index.iter().zip(strides).map(|(i, s)| i * s).sum();
        out.push(data[at as usize]);
        for d in (0..shape.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}

fn write_values<T: npyz::AutoSerialize + Copy>(path: &str, shape: &[u64], values: &[T]) -> Result<(), Error> {
    let file = File::create(path).map_err(|source| Error::Io { path: path.into(), source })?;
    let io = |source| Error::Io { path: path.into(), source };
    let mut w = npyz::WriteOptions::new().default_dtype().shape(shape).writer(BufWriter::new(file)).begin_nd().map_err(io)?;
    w.extend(values.iter().copied()).map_err(io)?;
    w.finish().map_err(io)
}

/// Writes `values` with `shape` (row-major) to `path`.
pub fn write(path: &str, shape: &[usize], values: &Values) -> Result<(), Error> {
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    match values {
        Values::F32(v) => write_values(path, &shape, v),
        Values::F64(v) => write_values(path, &shape, v),
        Values::I32(v) => write_values(path, &shape, v),
    }
}
