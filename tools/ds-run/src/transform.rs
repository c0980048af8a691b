//! `--pass-pipeline`: the module is parsed, run through the pipeline (parsed
//! by `ds_lowering::pipeline`, as ds-opt parses it: DiffSim passes, named
//! pipelines and upstream MLIR passes), verified and printed with its
//! locations, and the runtime compiles that text. Diagnostics keep pointing
//! at the input file.

use crate::error::Error;
use ds_dialects::diag;
use ds_dialects::ir::Op;
use ds_lowering::pipeline::{self, PipelineError};

/// The module `source` after `pipeline`, as text.
pub fn apply(source: &str, name: &str, pipeline: &str) -> Result<String, Error> {
    let steps = pipeline::parse(pipeline).map_err(Error::Pipeline)?;
    let context = ds_dialects::context();
    let (module, diags) = diag::capture(&context, || ds_dialects::parse_module(&context, source, name));
    let Some(mut module) = module else {
        return Err(ds_runtime::Error::Compile(diags).into());
    };
    match pipeline::run(&context, &mut module, &steps, None) {
        Ok(_) => {}
        Err(PipelineError::Failed(d)) => return Err(ds_runtime::Error::Compile(d).into()),
        Err(PipelineError::Invalid(m)) => return Err(Error::Pipeline(m)),
    }
    let op = Op::of_module(&module);
    let (ok, diags) = diag::capture(&context, || op.verify());
    if !ok {
        return Err(ds_runtime::Error::Compile(diags).into());
    }
    Ok(op.print_with_locations())
}
