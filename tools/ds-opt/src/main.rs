//! `ds-opt`: see the library documentation.

use std::io::{Read, Write};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = ds_opt::run(&args, || {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    });
    std::io::stdout().write_all(out.stdout.as_bytes()).ok();
    std::io::stderr().write_all(out.stderr.as_bytes()).ok();
    std::process::exit(out.code);
}
