//! The CUDA path without a GPU: every corpus kernel, its gradient and their
//! tangent kernels compile to PTX; missing libdevice and a missing driver are clear errors. (On a GPU
//! machine, `scripts/gpu-check` runs the corpus on the device.)

use crate::common::corpus;
use ds_runtime::{Backend, CompileOptions, Error, Program};
use ds_runtime::compile::{Target, compile};
use ds_runtime::cuda::{CudaProgram, compile_ptx, driver_present, find_libdevice};

fn autodiff() -> CompileOptions {
    CompileOptions { autodiff: true, ..Default::default() }
}

#[test]
fn every_corpus_kernel_its_gradient_and_tangents_compile_to_ptx() {
    // The set-up installs libdevice, and the math kernels of the corpus need
    // it: a machine without it fails here rather than skipping them.
    // (`math_without_libdevice_is_a_clear_error` checks the error without it.)
    assert!(
        find_libdevice().is_some(),
        "libdevice.10.bc not found: run ./scripts/setup (pip: nvidia-cuda-nvcc-cu12) or set DS_LIBDEVICE"
    );
    let files = corpus();
    assert!(files.len() >= 6, "test/kernels: {} files", files.len());
    let mut compiled = 0;
    for (name, src) in &files {
        let both = CompileOptions { forward_mode: true, ..autodiff() };
        let c = compile_ptx(src, name, &both, "sm_90").unwrap_or_else(|e| panic!("{name}: {e}"));
        let ptx = c.ptx.as_deref().expect("PTX");
        assert!(ptx.contains(".target sm_90"), "{name}");
        for kernel in ["k", "k_grad", "k_jvp", "k_grad_jvp"] {
            let info = &c.kernels[kernel];
            assert!(!info.tasks.is_empty(), "{name}: {kernel} has no tasks");
            for task in &info.tasks {
                assert!(ptx.contains(&format!(".entry {}(", task.name)), "{name}: no .entry for {}", task.name);
            }
        }
        compiled += 1;
    }
    assert_eq!(compiled, files.len(), "every corpus file compiled");
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

/// The stencil's forward and gradient on `p` from fixed inputs: (v, dL/du)
/// for L = sum v.
fn stencil_run<B: Backend>(p: &mut B) -> Result<(Vec<f32>, Vec<f32>), Error> {
    let (u, v, v_grad, u_grad) = (p.field_index("u")?, p.field_index("v")?, p.field_index("v_grad")?, p.field_index("u_grad")?);
    let us: Vec<f32> = (0..p.field_infos()[u].len()).map(|k| ((k * 7919) % 1000) as f32 / 100.0).collect();
    p.write(u, 0, &us)?;
    p.fill(v_grad, 1.0)?;
    p.launch("k", &[])?;
    p.launch("k_grad", &[])?;
    let mut out = (vec![0.0; us.len()], vec![0.0; us.len()]);
    p.read(v, 0, &mut out.0)?;
    p.read(u_grad, 0, &mut out.1)?;
    Ok(out)
}

#[test]
fn cuda_program_needs_a_driver() {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../test/kernels/stencil.mlir")).unwrap();
    match CudaProgram::new(&src, "stencil.mlir", &autodiff()) {
        // With a driver: a program that runs, and computes what the CPU does.
        Ok(mut gpu) => {
            let (v, du) = stencil_run(&mut gpu).unwrap_or_else(|e| panic!("on the GPU: {e}"));
            let mut cpu = Program::with_options(&src, "stencil.mlir", &autodiff()).unwrap();
            let (want_v, want_du) = stencil_run(&mut cpu).unwrap();
            assert!(want_v.iter().any(|x| *x != 0.0) && want_du.iter().any(|x| *x != 0.0), "a stencil of zeros proves nothing");
            for (what, got, want) in [("v", &v, &want_v), ("dL/du", &du, &want_du)] {
                for (k, (g, w)) in got.iter().zip(want).enumerate() {
                    assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{what}[{k}]: GPU {g}, CPU {w}");
                }
            }
        }
        // Without one: exactly NoDriver, and only then.
        Err(e) => {
            assert!(!driver_present(), "driver present but: {e}");
            assert!(matches!(e, Error::NoDriver), "{e:?}");
            assert!(e.to_string().contains("no CUDA driver"), "{e}");
        }
    }
}
