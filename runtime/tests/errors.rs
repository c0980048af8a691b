//! One test per run-time error variant a module-level user meets (launching
//! by name, host access, memory, the CUDA path), each matching on the variant
//! and its payload. Errors of the Tape are in `tape`, run-time checks in
//! `kernels` (bounds) and `autodiff` (assertions, the AD stack).

use crate::common::{fields, loop_kernel};
use ds_runtime::compile::{self, ParamType, Target};
use ds_runtime::{Arg, Backend, CompileOptions, ElemType, Error, Program, cuda};

/// `@scale(%n: index, %a: f32)`: y = a x over `[0, n)`, x and y of 8 f32.
fn scale() -> Program {
    let src = fields(&[("x", "f32", "8"), ("y", "f32", "8")])
        + &loop_kernel(
            "scale",
            "%n: index, %a: f32",
            None,
            r#"    %x = "ds.load"(%i) {field = @x} : (index) -> f32
    %y = arith.mulf %x, %a : f32
    "ds.store"(%y, %i) {field = @y} : (f32, index) -> ()"#,
        );
    Program::new(&src).unwrap()
}

#[test]
fn unknown_kernel_lists_the_kernels() {
    let err = scale().launch("scal", &[]).unwrap_err();
    let Error::UnknownKernel { name, known } = &err else { panic!("{err}") };
    assert_eq!(name, "scal");
    assert_eq!(known, &["scale".to_string()]);
}

#[test]
fn wrong_arity_and_argument_types() {
    let mut p = scale();
    let err = p.launch("scale", &[Arg::Index(8)]).unwrap_err();
    let Error::Arity { kernel, expected, given, params } = &err else { panic!("{err}") };
    assert_eq!((kernel.as_str(), *expected, *given), ("scale", 2, 1));
    assert_eq!(params, &[ParamType::Index, ParamType::F32]);
    let err = p.launch("scale", &[Arg::Index(8), Arg::F64(2.0)]).unwrap_err();
    let Error::ArgumentType { kernel, index, expected, given } = &err else { panic!("{err}") };
    assert_eq!((kernel.as_str(), *index, *expected, given.as_str()), ("scale", 1, ParamType::F32, "F64(2.0)"));
}

#[test]
fn too_many_arguments_is_an_error_not_a_panic() {
    let params: Vec<String> = (0..70).map(|k| format!("%a{k}: f32")).collect();
    let src = fields(&[("y", "f32", "4")]) + &loop_kernel("many", &params.join(", "), Some(4), "");
    let mut p = Program::new(&src).unwrap();
    let err = p.launch("many", &vec![Arg::F32(1.0); 70]).unwrap_err();
    assert!(matches!(&err, Error::TooManyArguments { kernel, limit: 62 } if kernel == "many"), "{err}");
}

#[test]
fn host_access_errors_name_the_field() {
    let mut p = scale();
    let err = p.field("z").err().expect("no field z");
    assert!(matches!(&err, Error::UnknownField { name } if name == "z"), "{err}");
    let err = p.field("x").unwrap().get::<f64>(&[0]).unwrap_err();
    assert!(matches!(&err, Error::ElementType { field, holds: ElemType::F32, accessed: ElemType::F64 } if field == "x"), "{err}");
    let err = p.field("x").unwrap().get::<f32>(&[8]).unwrap_err();
    assert!(matches!(&err, Error::HostIndex { field, index, shape } if field == "x" && index == &[8] && shape == &[8]), "{err}");
    let err = p.field_mut("x").unwrap().copy_from(&[1.0f32; 3]).unwrap_err();
    assert!(matches!(&err, Error::Length { field, expected: 8, given: 3 } if field == "x"), "{err}");
    let x = p.field_index("x").unwrap();
    let err = p.read(x, 6, &mut [0.0f32; 4]).unwrap_err();
    assert!(matches!(&err, Error::Length { expected: 8, given: 10, .. }), "{err}");
}

#[test]
fn a_field_larger_than_memory_is_out_of_memory() {
    let src = r#""ds.field"() {sym_name = "huge", element_type = f64, shape = array<i64: 1099511627776, 1024>} : () -> ()"#;
    let err = Program::new(src).err().expect("2^50 f64 do not fit");
    assert!(matches!(&err, Error::OutOfMemory { what, .. } if what == "field @huge"), "{err}");
}

#[test]
fn missing_libdevice_names_the_functions() {
    let src = fields(&[("x", "f32", "8")])
        + &loop_kernel(
            "k",
            "",
            Some(8),
            r#"    %x = "ds.load"(%i) {field = @x} : (index) -> f32
    %s = math.sin %x : f32
    "ds.store"(%s, %i) {field = @x} : (f32, index) -> ()"#,
        );
    let target = Target::Cuda { chip: "sm_90".into(), libdevice: None };
    let err = compile::compile(&src, "sin.mlir", &CompileOptions::default(), &target).err().expect("sin needs libdevice");
    assert!(matches!(&err, Error::NoLibdevice { functions } if functions.iter().any(|f| f.starts_with("__nv_sin"))), "{err}");
}

#[test]
fn cuda_without_a_driver_is_no_driver() {
    match cuda::CudaProgram::new(&fields(&[("x", "f32", "8")]), "x.mlir", &CompileOptions::default()) {
        Err(Error::NoDriver) => assert!(!cuda::driver_present()),
        Err(e) => panic!("{e}"),
        Ok(p) => assert!(cuda::driver_present() && p.field_infos()[0].name == "x"),
    }
}
