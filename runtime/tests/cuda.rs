//! The CUDA path without a GPU: every corpus kernel and its gradient compile to
//! PTX; missing libdevice and a missing driver are clear errors. (On a GPU
//! machine, `scripts/gpu-check` runs the corpus on the device.)

use crate::common::corpus;
use ds_runtime::CompileOptions;
use ds_runtime::compile::{Target, compile};
use ds_runtime::cuda::{CudaProgram, compile_ptx, driver_present, find_libdevice};

fn autodiff() -> CompileOptions {
    CompileOptions { autodiff: true, ..Default::default() }
}

#[test]
fn every_corpus_kernel_and_its_gradient_compiles_to_ptx() {
    let files = corpus();
    assert!(files.len() >= 6);
    for (name, src) in files {
        // Math kernels need libdevice; without it they must fail clearly (below).
        let compiled = match compile_ptx(&src, &name, &autodiff(), "sm_90") {
            Ok(c) => c,
            Err(e) if find_libdevice().is_none() && e.to_string().contains("libdevice") => continue,
            Err(e) => panic!("{name}: {e}"),
        };
        let ptx = compiled.ptx.as_deref().expect("PTX");
        assert!(ptx.contains(".target sm_90"), "{name}");
        for kernel in ["k", "k_grad"] {
            let info = &compiled.kernels[kernel];
            assert!(!info.tasks.is_empty(), "{name}: {kernel} has no tasks");
            for task in &info.tasks {
                assert!(ptx.contains(&format!(".entry {}(", task.name)), "{name}: no .entry for {}", task.name);
            }
        }
    }
}

#[test]
fn sm_80_is_an_option() {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../test/kernels/stencil.mlir")).unwrap();
    let c = compile_ptx(&src, "stencil.mlir", &autodiff(), "sm_80").unwrap();
    assert!(c.ptx.as_deref().unwrap().contains(".target sm_80"));
}

#[test]
fn math_without_libdevice_is_a_clear_error() {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../test/kernels/elementwise.mlir")).unwrap();
    let target = Target::Cuda { chip: "sm_90".into(), libdevice: None };
    let err = compile(&src, "elementwise.mlir", &CompileOptions::default(), &target).err().expect("must fail");
    let text = err.to_string();
    assert!(text.contains("libdevice") && text.contains("__nv_sinf") && text.contains("DS_LIBDEVICE"), "{text}");
}

#[test]
fn cuda_program_needs_a_driver() {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../test/kernels/stencil.mlir")).unwrap();
    match CudaProgram::new(&src, "stencil.mlir", &autodiff()) {
        Ok(_) => assert!(driver_present(), "a CUDA program without a driver"),
        Err(e) => {
            assert!(!driver_present(), "driver present but: {e}");
            assert!(e.to_string().contains("no CUDA driver"), "{e}");
        }
    }
}
