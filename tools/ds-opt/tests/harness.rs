//! What the lit harness and ds-run's `test/run` harness (which includes this
//! file by path) share: splitting RUN lines into words, and comparing a
//! file's output with the insta snapshot beside it.

use std::path::Path;

/// Compares `output` with `NAME.snap` beside `file` (insta, so
/// `INSTA_UPDATE` blesses it); the failure, naming `rel`, when they differ.
pub fn check_snapshot(file: &Path, rel: &str, output: &str) -> Option<String> {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(file.parent().expect("file in a dir"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_input_file(file);
    settings.set_omit_expression(true);
    let name = file.file_name().expect("file name").to_string_lossy().to_string();
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        settings.bind(|| insta::assert_snapshot!(name.clone(), output));
    }));
    checked.is_err().then(|| format!("{rel}: output differs from {name}.snap"))
}

/// Splits a command line into words, honouring single and double quotes.
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for ch in line.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(ch);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}
