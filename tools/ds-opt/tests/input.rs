//! Reading input: `--split-input-file` at scale (each chunk is parsed alone,
//! without padding, and keeps the file's line numbers), and the guards of the
//! shared parse entry against input that crashes MLIR's parser.

use ds_dialects::{MAX_NESTING, TextError, check_text};

const CHUNK: &str = r#""ds.field"() {sym_name = "x", element_type = f32, shape = array<i64: 8>} : () -> ()
func.func @k() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  return
}
"#;

fn run(args: &[&str], input: &str) -> ds_opt::Outcome {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    ds_opt::run(&args, || Ok(input.to_string()))
}

#[test]
fn split_input_is_linear_in_the_text() {
    let n = 200_000;
    let text = vec![CHUNK; n].join("// -----\n");
    let chunks = ds_opt::split_input(&text);
    assert_eq!(chunks.len(), n);
    // Chunks borrow the text (nothing is copied or padded) and know their first line.
    let (last_line, last) = chunks[n - 1];
    assert_eq!(last_line, (n - 1) * (CHUNK.lines().count() + 1));
    assert_eq!(last.as_ptr(), text[text.len() - CHUNK.len()..].as_ptr());
    assert_eq!(chunks.iter().map(|(_, c)| c.len()).sum::<usize>() + (n - 1) * "// -----\n".len(), text.len());
}

#[test]
fn many_chunks_keep_the_file_line_numbers() {
    let n = 2000;
    let bad = CHUNK.replace("%c0 = arith.constant 0 : index", "%c0 = arith.constant 0 : f99");
    let text = vec![CHUNK; n - 1].join("// -----\n") + "// -----\n" + &bad;
    let out = run(&["-", "--split-input-file", "--ds-verify"], &text);
    let line = (n - 1) * (CHUNK.lines().count() + 1) + 3;
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with(&format!("<stdin>:{line}:")), "{}", out.stderr);
    assert_eq!(out.stdout.matches("func.func @k").count(), n - 1);
    // Op locations too (the parser shifts them).
    let two = format!("{CHUNK}// -----\n{CHUNK}");
    let out = run(&["-", "--split-input-file", "--mlir-print-debuginfo"], &two);
    assert!(out.stdout.contains("<stdin>\":9:9"), "{}", out.stdout);
}

#[test]
fn array_of_index_is_a_located_error() {
    let text = r#""ds.field"() {sym_name = "x", element_type = f32, shape = array<index: 8>} : () -> ()"#;
    let out = run(&["-", "--ds-verify"], text);
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("<stdin>:1:59: error: array<index"), "{}", out.stderr);
    // In a string or a comment it is only text.
    assert_eq!(check_text("// array<index: 8>\n\"array<index: 8>\""), Ok(()));
}

#[test]
fn nesting_past_the_limit_is_a_located_error() {
    let deep = format!("func.func @f() {{\n{}", "(".repeat(5000));
    let out = run(&["-"], &deep);
    assert_eq!(out.code, 1);
    let col = MAX_NESTING; // the brace on line 1 is level 1
    assert!(out.stderr.starts_with(&format!("<stdin>:2:{col}: error: nesting deeper than")), "{}", out.stderr);
    // Brackets in strings and comments, and `->`, do not count.
    let text = format!("// {}\n\"{}\" -> -> ->", "{".repeat(5000), "[".repeat(5000));
    assert_eq!(check_text(&text), Ok(()));
    let at_limit = "<".repeat(MAX_NESTING);
    assert_eq!(check_text(&at_limit), Ok(()));
    assert!(matches!(check_text(&(at_limit + "<")), Err(TextError { line: 1, .. })));
}
