//! Output size of ds-autodiff on deeply nested control flow with results:
//! linear in the nesting depth for `scf.if`, quadratic (and bounded by the
//! `max-recompute` option, a located error past it) for `scf.for` with carried
//! values. Sizes are op counts, never times.

use ds_dialects::ir::Op;

const FIELDS: &str = r#""ds.field"() {sym_name = "a", element_type = f32, shape = array<i64: 8>, grad = @a_grad} : () -> ()
"ds.field"() {sym_name = "a_grad", element_type = f32, shape = array<i64: 8>} : () -> ()
"ds.field"() {sym_name = "out", element_type = f32, shape = array<i64: 8>, grad = @out_grad} : () -> ()
"ds.field"() {sym_name = "out_grad", element_type = f32, shape = array<i64: 8>} : () -> ()
"#;

/// A kernel whose parallel body nests `depth` levels of `nest` around
/// `%r = f(%a)` and stores `%r`.
fn kernel(nest: &str) -> String {
    format!(
        r#"{FIELDS}func.func @k() attributes {{ds.kernel}} {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c8 = arith.constant 8 : index
  "ds.parallel_for"(%c0, %c8) ({{
  ^bb0(%i: index):
    %a = "ds.load"(%i) {{field = @a}} : (index) -> f32
    %z = arith.constant 0.0 : f32
    %p = arith.cmpf ogt, %a, %z : f32
{nest}    "ds.store"(%r, %i) {{field = @out}} : (f32, index) -> ()
    gpu.yield
  }}) : (index, index) -> ()
  return
}}
"#
    )
}

/// `depth` nested `scf.if`s with results, each level `sin` then `mulf` of the
/// inner result.
fn nested_ifs(depth: usize) -> String {
    let mut open = String::new();
    let mut close = String::new();
    for d in 0..depth {
        let x = if d == 0 { "%a".to_string() } else { format!("%s{}", d - 1) };
        open += &format!("%s{d} = math.sin {x} : f32\n%r{d} = scf.if %p -> (f32) {{\n");
        close = format!(
            "}} else {{\nscf.yield %s{d} : f32\n}}\n%m{d} = arith.mulf %r{d}, %s{d} : f32\nscf.yield %m{d} : f32\n{close}"
        );
    }
    let last = if depth == 0 { "%a".to_string() } else { format!("%s{}", depth - 1) };
    kernel(&format!(
        "%r = scf.if %p -> (f32) {{\n{open}%e = math.sin {last} : f32\nscf.yield %e : f32\n{close}}} else {{\nscf.yield %a : f32\n}}\n"
    ))
}

/// `depth` nested `scf.for`s, each carrying one value.
fn nested_carried_loops(depth: usize) -> String {
    let mut open = String::new();
    let mut close = String::new();
    for d in 0..depth {
        let x = if d == 0 { "%a".to_string() } else { format!("%m{}", d - 1) };
        open += &format!(
            "%r{d} = scf.for %j{d} = %c0 to %c2 step %c1 iter_args(%x{d} = {x}) -> (f32) {{\n%m{d} = arith.mulf %x{d}, %a : f32\n"
        );
        let inner = if d + 1 < depth { format!("%r{}", d + 1) } else { format!("%m{d}") };
        close = format!("scf.yield {inner} : f32\n}}\n{close}");
    }
    kernel(&format!("{open}{close}%r = arith.addf %r0, %a : f32\n"))
}

/// Runs ds-opt with `flags` on `text`: the op count of the output, or the
/// error output.
fn autodiff_ops(text: &str, flags: &[&str]) -> Result<usize, String> {
    let args: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    let out = ds_opt::run(&args, || Ok(text.to_string()));
    if out.code != 0 {
        return Err(out.stderr);
    }
    let context = ds_dialects::context();
    let module = ds_dialects::parse_module(&context, &out.stdout, "out").expect("the output parses");
    Ok(Op::of_module(&module).walk().len())
}

/// Ops of the grad kernel alone: the output minus the input.
fn grad_ops(text: &str) -> usize {
    let all = autodiff_ops(text, &["-", "--ds-autodiff"]).expect("ds-autodiff succeeds");
    all - autodiff_ops(text, &["-"]).expect("the input parses")
}

/// Runs `f` on a thread with a large stack: the nesting is deep, and test
/// threads get 2 MiB.
fn deep<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(256 << 20).spawn(f).expect("thread").join().expect("no panic")
}

#[test]
fn nested_ifs_grow_linearly() {
    let (small, large) = deep(|| (grad_ops(&nested_ifs(20)), grad_ops(&nested_ifs(200))));
    // Depth x10: at most ~x10 ops (recomputing per level was x100).
    eprintln!("nested ifs: grad ops {small} at depth 20, {large} at depth 200");
    assert!(large <= 11 * small, "grad ops at depth 20: {small}, at depth 200: {large}");
}

#[test]
fn nested_carried_loops_grow_quadratically_within_the_limit() {
    let (small, large, mid) =
        deep(|| (grad_ops(&nested_carried_loops(20)), grad_ops(&nested_carried_loops(200)), grad_ops(&nested_carried_loops(100))));
    // Each level's reversed body recomputes the loops inside it: quadratic,
    // with a linear part that keeps the ratio below x100.
    eprintln!("nested carried loops: grad ops {small} at depth 20, {mid} at 100, {large} at 200");
    assert!(large <= 100 * small, "grad ops at depth 20: {small}, at depth 200: {large}");
    assert!(large >= 3 * mid, "quadratic, not linear: depth 100: {mid}, depth 200: {large}");
    // Past the limit: an error at the innermost loop, before generating anything.
    let err = deep(|| autodiff_ops(&nested_carried_loops(400), &["-", "--ds-autodiff"])).expect_err("over the limit");
    assert!(err.contains("<stdin>:") && err.contains("max-recompute=100000"), "{err}");
    let err = autodiff_ops(&nested_carried_loops(30), &["-", "--ds-autodiff=max-recompute=100"]).expect_err("over");
    assert!(err.contains("nested 30 deep"), "{err}");
}
