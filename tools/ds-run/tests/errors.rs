//! Bad input is a typed, located error (exit status 1 in the binary), never
//! a panic: unknown kernels and fields, wrong shapes, dtypes and arity,
//! malformed arguments, modules that do not verify.

use crate::{ds_run, file, path, scratch};
use ds_run::{Error, Values, npy};
use ds_runtime::{ElemType, Error as RtError};

const APPENDIX_C: &str = "examples/kernels/appendix_c.mlir";

fn run_err(args: &[&str]) -> Error {
    match ds_run(args) {
        Ok(out) => panic!("ds-run {args:?} succeeded: {}", out.stdout),
        Err(e) => e,
    }
}

#[test]
fn npy_files_must_fit_their_field() {
    let dir = scratch("npy_errors");
    let module = path(APPENDIX_C);
    let f64s = file(&dir, "f64.npy");
    npy::write(&f64s, &[32], &Values::F64(vec![0.5; 32])).unwrap();
    match run_err(&[&module, "--field", &format!("y={f64s}"), "--launch", "reduce"]) {
        Error::NpyDtype { field, found, expected, .. } => {
            assert_eq!((field.as_str(), found.as_str(), expected), ("y", "<f8", ElemType::F32));
        }
        e => panic!("{e}"),
    }
    let short = file(&dir, "short.npy");
    npy::write(&short, &[4, 8], &Values::F32(vec![0.5; 32])).unwrap();
    let e = run_err(&[&module, "--field", &format!("x={short}")]);
    assert!(matches!(&e, Error::NpyShape { field, found, expected, .. } if field == "x" && found == &[4, 8] && expected == &[32]), "{e}");
    assert!(e.to_string().contains("field @x has shape [32]"), "{e}");
    let junk = file(&dir, "junk.npy");
    std::fs::write(&junk, b"not an npy file").unwrap();
    assert!(matches!(run_err(&[&module, "--field", &format!("x={junk}")]), Error::Npy { .. }));
    let missing = file(&dir, "missing.npy");
    let e = run_err(&[&module, "--field", &format!("x={missing}")]);
    assert!(matches!(&e, Error::Io { path, .. } if path == &missing), "{e}");
    let e = run_err(&[&module, "--field", &format!("nope={short}")]);
    assert!(matches!(&e, Error::Arg { source, .. } if matches!(**source, RtError::UnknownField { .. })), "{e}");
    let e = run_err(&[&module, "--launch", "reduce", "--out", &format!("x_grad={}", file(&dir, "no/such/dir.npy"))]);
    assert!(matches!(e, Error::Io { .. }), "{e}");
}

#[test]
fn fortran_order_files_are_read_row_major() {
    use npyz::WriterBuilder;
    let dir = scratch("fortran");
    let f = file(&dir, "m.npy");
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[2, 3])
        .order(npyz::Order::Fortran)
        .writer(std::io::BufWriter::new(std::fs::File::create(&f).unwrap()))
        .begin_nd()
        .unwrap();
    // Column-major: m[0][0], m[1][0], m[0][1], ...
    w.extend([1.0f32, 4.0, 2.0, 5.0, 3.0, 6.0]).unwrap();
    w.finish().unwrap();
    let a = npy::read(&f).unwrap();
    assert_eq!(a.values, Values::F32(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
}

#[test]
fn launches_are_checked_against_the_kernels() {
    let module = path(APPENDIX_C);
    let e = run_err(&[&module, "--launch", "update(); reduse()"]);
    match &e {
        Error::Arg { at, source, .. } => {
            assert_eq!(at.column, Some(11));
            assert!(matches!(&**source, RtError::UnknownKernel { name, known } if name == "reduse" && known.contains(&"reduce".to_string())));
        }
        e => panic!("{e}"),
    }
    let e = run_err(&[&module, "--launch", "reduce(1)"]);
    assert!(matches!(&e, Error::Arg { source, .. } if matches!(**source, RtError::Arity { expected: 0, given: 1, .. })), "{e}");
    let e = run_err(&[&module, "--launch", "reduce(1,"]);
    assert!(matches!(&e, Error::Syntax { at, .. } if at.column == Some(10)), "{e}");
    let spring = path("examples/kernels/mass_spring_simple.mlir");
    let e = run_err(&[&spring, "--launch", "compute_loss(-0.5)"]);
    assert!(matches!(&e, Error::Argument { index: 0, at, .. } if at.column == Some(14)), "{e}");
    let e = run_err(&[&spring, "--launch", "compute_loss(%t)", "--for", "t=0..1", "--for", "t=1..2"]);
    assert!(matches!(e, Error::Syntax { .. }), "{e}");
    let e = run_err(&[&spring, "--for", "t=0..1"]);
    assert!(matches!(e, Error::Syntax { .. }), "{e}");
    // The launch that failed, with its loop value and the kernel's source line.
    let e = run_err(&[&spring, "--check-bounds", "--launch", "compute_loss(%t)", "--for", "t=1020..1030"]);
    match &e {
        Error::Arg { iteration, source, .. } => {
            assert_eq!(iteration, &Some(("t".to_string(), 1024)));
            assert!(matches!(&**source, RtError::OutOfBounds { location: Some(_), index: 1024, .. }), "{source}");
        }
        e => panic!("{e}"),
    }
    // Nothing runs before every launch has been checked.
    let e = run_err(&[&module, "--launch", "reduce", "--launch", "reduce(2)", "--print", "L"]);
    assert!(matches!(e, Error::Arg { .. }));
}

#[test]
fn bad_modules_and_options_are_errors() {
    let dir = scratch("bad_module");
    let bad = file(&dir, "bad.mlir");
    std::fs::write(
        &bad,
        "\"ds.field\"() {sym_name = \"x\", element_type = f32, shape = array<i64: 4>} : () -> ()\n\
         func.func @k() attributes {ds.kernel} {\n  %v = \"ds.load\"() {field = @x} : () -> f32\n  return\n}\n",
    )
    .unwrap();
    let e = run_err(&[&bad, "--launch", "k"]);
    match &e {
        Error::Runtime(r) if matches!(**r, RtError::Compile(_)) => {
            let RtError::Compile(diags) = &**r else { unreachable!() };
            assert_eq!(diags[0].pos.as_ref().map(|p| p.line), Some(3), "{e}");
        }
        e => panic!("{e}"),
    }
    assert!(e.render().starts_with(&format!("{bad}:3:")), "{}", e.render());
    std::fs::write(&bad, "func.func @k( {").unwrap();
    assert!(matches!(run_err(&[&bad]), Error::Runtime(r) if matches!(*r, RtError::Compile(_))));
    let module = path(APPENDIX_C);
    for args in [
        vec![],
        vec![module.as_str(), "--bogus"],
        vec![module.as_str(), "--launch"],
        vec![module.as_str(), module.as_str()],
        vec![module.as_str(), "--print-plan"],
    ] {
        assert!(matches!(run_err(&args), Error::Usage(_)), "{args:?}");
    }
    for args in [
        vec![module.as_str(), "--threads", "0"],
        vec![module.as_str(), "--arch", "tpu"],
        vec![module.as_str(), "--memory-budget", "lots", "--grad", "L"],
        vec![module.as_str(), "--fill", "x"],
        vec![module.as_str(), "--fill", "x=one"],
        vec![module.as_str(), "--print", "x[a]"],
        vec![module.as_str(), "--launch", "reduce", "--repeat", "-1"],
    ] {
        assert!(matches!(run_err(&args), Error::Syntax { .. }), "{args:?}");
    }
    let e = run_err(&[&module, "--pass-pipeline", "builtin.module(ds-verify, not-a-pass)"]);
    assert!(matches!(e, Error::Pipeline(_)), "{e}");
    let e = run_err(&[&module, "--launch", "reduce", "--grad", "y"]);
    assert!(matches!(&e, Error::Arg { source, .. } if matches!(**source, RtError::NoGradient { .. })), "{e}");
    if !ds_runtime::cuda::driver_present() {
        let e = run_err(&[&module, "--arch", "cuda", "--launch", "reduce"]);
        assert!(matches!(&e, Error::Runtime(r) if matches!(**r, RtError::NoDriver)), "{e}");
    }
}

#[test]
fn options_that_change_how_it_runs_keep_the_results() {
    let module = path(APPENDIX_C);
    let base = ["--fill", "x=2", "--fill", "y=0.5", "--launch", "reduce", "--grad", "L", "--print", "x_grad", "--print", "L"];
    let plain = ds_run(&[&[module.as_str()][..], &base].concat()).unwrap();
    for extra in [
        vec!["--threads", "1"],
        vec!["--check-bounds"],
        vec!["--pass-pipeline", "builtin.module(canonicalize, cse)"],
        vec!["--time"],
        vec!["--memory-budget", "1G", "--print-plan"],
    ] {
        let out = ds_run(&[&[module.as_str()][..], &base, &extra].concat()).unwrap();
        assert_eq!(out.printed, plain.printed, "{extra:?}");
    }
    let timed = ds_run(&[&[module.as_str()][..], &base, &["--time"]].concat()).unwrap();
    let kernels: Vec<&str> = timed.timings.iter().map(|t| t.kernel.as_str()).collect();
    assert_eq!(kernels, ["reduce", "reduce_grad"]);
    assert!(timed.timings.iter().all(|t| t.launches == 1 && t.min <= t.median && t.median > 0.0));
    assert!(timed.stdout.contains("time reduce: median "), "{}", timed.stdout);
    let stencil = path("test/kernels/stencil.mlir");
    let timed = ds_run(&[&stencil, "--fill", "u=1", "--launch", "k", "--repeat", "5", "--grad", "v", "--time"]).unwrap();
    let counts: Vec<(&str, usize)> = timed.timings.iter().map(|t| (t.kernel.as_str(), t.launches)).collect();
    assert_eq!(counts, [("k", 5), ("k_grad", 5)]);
    assert_eq!(timed.launches, 10);
    let help = ds_run(&["--help"]).unwrap();
    assert!(help.stdout.contains("--launch"));
}

/// Random command lines from pieces of good and bad arguments: errors are
/// expected, a panic fails the test.
#[test]
fn random_command_lines_never_panic() {
    let module = path(APPENDIX_C);
    let spring = path("examples/kernels/mass_spring_simple.mlir");
    let pieces: &[&str] = &[
        &module, &spring, "--launch", "reduce", "reduce()", "update; reduce", "reduce(", "reduce(1)", "compute_loss(%t)",
        "compute_loss(%t-1)", "compute_loss(%t+99999999999999999999)", "apply_spring_force(%t); time_integrate(%t)",
        "k(%)", "(", ")", ";", "--for", "t=1..4", "t=4..1", "t=0..=0", "x=1..", "--repeat", "3", "0", "-1",
        "--fill", "x=1", "L=nan", "spring_a=1e99", "x", "--print", "x", "x[1]", "x[99]", "x[0, 0, 0, 0]", "L",
        "--grad", "L", "loss", "y", "--memory-budget", "1", "1G", "99999999999999999999G", "--print-plan",
        "--check-bounds", "--time", "--threads", "2", "--arch", "cpu", "--pass-pipeline", "builtin.module(cse)",
        "builtin.module(", "--out", "--field", "x=/nonexistent.npy", "é", "--launch=reduce", "--time=1",
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..300 {
        let n = 1 + (next() % 8) as usize;
        let mut args: Vec<String> = vec![pieces[(next() % 2) as usize].to_string()];
        args.extend((0..n).map(|_| pieces[(next() % pieces.len() as u64) as usize].to_string()));
        let result = std::panic::catch_unwind(|| ds_run::run(&args));
        assert!(result.is_ok(), "ds-run panicked on {args:?}");
        if let Ok(Err(e)) = result {
            assert!(!e.render().is_empty());
        }
    }
}
