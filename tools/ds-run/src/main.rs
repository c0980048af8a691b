//! `ds-run`: see the library documentation (`ds_run`).

use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match ds_run::run(&args) {
        Ok(out) => {
            std::io::stdout().write_all(out.stdout.as_bytes()).ok();
            0
        }
        Err(e) => {
            std::io::stderr().write_all(e.render().as_bytes()).ok();
            1
        }
    };
    std::process::exit(code);
}
