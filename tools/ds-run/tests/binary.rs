//! The built binary: what it prints and its exit status.

use crate::path;
use std::io::Write;
use std::process::{Command, Stdio};

fn ds_run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ds-run")).args(args).output().expect("ds-run runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn exit_status_is_0_on_success_and_1_on_bad_input() {
    let module = path("examples/kernels/appendix_c.mlir");
    let (code, stdout, stderr) = ds_run(&[&module, "--fill", "x=1", "--launch", "reduce()", "--grad", "L", "--print", "L"]);
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (0, "@L: f32[] = 16.0\n", ""));
    for args in [
        vec![module.as_str(), "--launch", "nope()"],
        vec![module.as_str(), "--launch", "reduce(1)"],
        vec![module.as_str(), "--fill", "nope=1"],
        vec![module.as_str(), "--launch", "reduce(("],
        vec!["/no/such/file.mlir"],
        vec![],
    ] {
        let (code, stdout, stderr) = ds_run(&args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stdout.is_empty() && stderr.starts_with("ds-run: error: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // The module from standard input.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ds-run"))
        .args(["-", "--fill", "x=3", "--launch", "reduce", "--print", "L"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ds-run runs");
    let source = std::fs::read(&module).unwrap();
    child.stdin.take().expect("stdin").write_all(&source).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stdout).as_ref()), (Some(0), "@L: f32[] = 144.0\n"));
    let (code, _, stderr) = ds_run(&[&path("test/run/invalid.mlir"), "--launch", "k"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("invalid.mlir:7:8: error: ds.load of @x takes 2 indices"), "{stderr}");
}
