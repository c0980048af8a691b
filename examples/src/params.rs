//! `--params FILE.npz` and `--save-params FILE.npz`: the optimized parameters
//! as numpy arrays named after their fields, each with its field's shape
//! (vector and matrix components last, as numpy would hold them) and element
//! type (`<f4`, `<f8`, `<i4`). Loading checks every array before writing any
//! field: a missing array, a wrong shape or dtype is an error naming it.

use crate::RunError;
use diffsim::Backend;
use ds_runtime::{ElemType, Element, FieldInfo};
use npyz::WriterBuilder;
use std::path::Path;

/// An array read from the file, checked against its field.
enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I32(Vec<i32>),
}

fn dtype_of(elem: ElemType) -> npyz::DType {
    let name = match elem {
        ElemType::F32 => "<f4",
        ElemType::F64 => "<f8",
        ElemType::I32 => "<i4",
    };
    npyz::DType::Plain(name.parse().expect("a numpy type string"))
}

fn fields<'p, B: Backend>(p: &'p B, names: &[&str]) -> Result<Vec<(usize, &'p FieldInfo)>, RunError> {
    names
        .iter()
        .map(|name| {
            let i = p.field_index(name)?;
            Ok((i, &p.field_infos()[i]))
        })
        .collect()
}

/// Sets the fields `names` of `p` from the arrays of the same names in `path`.
pub fn load<B: Backend>(p: &mut B, names: &[&str], path: &Path) -> Result<(), RunError> {
    let mut archive = npyz::npz::NpzArchive::open(path).map_err(RunError::io(path))?;
    let problem = |array: &str, problem: String| RunError::Params { path: path.to_path_buf(), array: array.into(), problem };
    let mut loaded = Vec::new();
    for (i, info) in fields(p, names)? {
        let name = info.name.as_str();
        let Some(array) = archive.by_name(name).map_err(|e| problem(name, e.to_string()))? else {
            let present: Vec<&str> = archive.array_names().collect();
            return Err(problem(name, format!("missing (the file has: {})", present.join(", "))));
        };
        let shape: Vec<usize> = array.shape().iter().map(|&d| d as usize).collect();
        if shape != info.shape {
            return Err(problem(name, format!("shape {shape:?}, but the field `{name}` has shape {:?}", info.shape)));
        }
        if array.dtype() != dtype_of(info.elem) {
            return Err(problem(name, format!("dtype {}, but the field holds {} ({})", array.dtype().descr(), info.elem, dtype_of(info.elem).descr())));
        }
        let read = |e: std::io::Error| problem(name, e.to_string());
        let values = match info.elem {
            ElemType::F32 => Values::F32(array.into_vec().map_err(read)?),
            ElemType::F64 => Values::F64(array.into_vec().map_err(read)?),
            ElemType::I32 => Values::I32(array.into_vec().map_err(read)?),
        };
        loaded.push((i, values));
    }
    for (i, values) in loaded {
        match values {
            Values::F32(v) => p.write(i, 0, &v)?,
            Values::F64(v) => p.write(i, 0, &v)?,
            Values::I32(v) => p.write(i, 0, &v)?,
        }
    }
    Ok(())
}

/// Writes the fields `names` of `p` to `path`, one array each.
pub fn save<B: Backend>(p: &B, names: &[&str], path: &Path) -> Result<(), RunError> {
    let mut npz = npyz::npz::NpzWriter::create(path).map_err(RunError::io(path))?;
    for (i, info) in fields(p, names)? {
        match info.elem {
            ElemType::F32 => write_array::<f32, B>(p, &mut npz, i, info),
            ElemType::F64 => write_array::<f64, B>(p, &mut npz, i, info),
            ElemType::I32 => write_array::<i32, B>(p, &mut npz, i, info),
        }
        .map_err(|e| match e {
            WriteError::Io(source) => RunError::Io { path: path.to_path_buf(), source },
            WriteError::Program(e) => e.into(),
        })?;
    }
    npz.zip_writer().finish().map_err(|e| RunError::Io { path: path.to_path_buf(), source: e.into() })?;
    Ok(())
}

enum WriteError {
    Io(std::io::Error),
    Program(ds_runtime::Error),
}

fn write_array<T: Element + npyz::Serialize + npyz::AutoSerialize + Default, B: Backend>(
    p: &B,
    npz: &mut npyz::npz::NpzWriter<std::io::BufWriter<std::fs::File>>,
    i: usize,
    info: &FieldInfo,
) -> Result<(), WriteError> {
    let mut values = vec![T::default(); info.len()];
    p.read(i, 0, &mut values).map_err(WriteError::Program)?;
    let shape: Vec<u64> = info.shape.iter().map(|&d| d as u64).collect();
    let mut writer = npz
        .array::<T>(&info.name, Default::default())
        .and_then(|a| a.default_dtype().shape(&shape).begin_nd())
        .map_err(WriteError::Io)?;
    writer.extend(values).map_err(WriteError::Io)?;
    writer.finish().map_err(WriteError::Io)
}
