//! The command line: flags in the order given (field set-up and launches run
//! in that order), values as `--flag VALUE` or `--flag=VALUE`.

use crate::error::{ArgAt, Error};
use crate::launch::{self, Group, Repeat};

pub const USAGE: &str = "\
usage: ds-run FILE.mlir [options]
  --field NAME=PATH.npy     load a field (shape and dtype must be the field's)
  --fill NAME=VALUE         set every element of a field
  --launch 'KERNEL(ARG, ...)[; KERNEL(...)]'
                            launch kernels, in order; scalar arguments are typed by the
                            kernel's signature, `%VAR` (`%VAR+N`, `%VAR-N`) is a loop variable
  --for VAR=A..B            run the --launch before it for VAR = A, ..., B-1 (`A..=B`: to B)
  --repeat N                run the --launch before it N times
  --grad LOSS               record the launches on a Tape, then run backward from LOSS
  --memory-budget BYTES     checkpoint within BYTES of saved state (suffixes k, M, G)
  --print-plan              print the checkpointing plan of backward
  --print NAME[[I, ...]]    print a field (or its part at leading indices) after the run
  --out NAME=PATH.npy       save a field after the run
  --arch cpu|cuda           where the kernels run (default cpu)
  --threads N               CPU threads (default: all cores)
  --check-bounds            check every field index at run time
  --pass-pipeline PIPELINE  run passes on the module first (DiffSim or upstream MLIR)
  --time                    per-kernel timings: median and min over its launches
  -h, --help";

/// Where kernels run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Arch {
    #[default]
    Cpu,
    Cuda,
}

/// A field set-up step, run before the launches in command-line order.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    Load { field: String, path: String, at: ArgAt },
    Fill { field: String, value: f64, at: ArgAt },
}

/// `--print NAME[I, ...]`: a field, or its part at leading indices.
#[derive(Clone, Debug, PartialEq)]
pub struct PrintSpec {
    pub field: String,
    pub index: Vec<usize>,
    pub at: ArgAt,
}

/// `--out NAME=PATH`.
#[derive(Clone, Debug, PartialEq)]
pub struct OutSpec {
    pub field: String,
    pub path: String,
    pub at: ArgAt,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The module's path, `-` for standard input.
    pub input: Option<String>,
    pub inits: Vec<Init>,
    pub groups: Vec<Group>,
    pub grad: Option<(String, ArgAt)>,
    pub memory_budget: Option<usize>,
    pub print_plan: bool,
    pub prints: Vec<PrintSpec>,
    pub outs: Vec<OutSpec>,
    pub arch: Arch,
    pub threads: Option<usize>,
    pub check_bounds: bool,
    pub pipeline: Option<String>,
    pub time: bool,
    pub help: bool,
}

fn syntax(flag: &'static str, value: &str, column: usize, message: impl Into<String>) -> Error {
    Error::Syntax { at: ArgAt::at(flag, value, column), message: message.into() }
}

/// `NAME=REST`, with `NAME` a field name.
fn name_eq<'a>(flag: &'static str, value: &'a str, what: &str) -> Result<(&'a str, &'a str), Error> {
    let Some((name, rest)) = value.split_once('=') else {
        return Err(syntax(flag, value, value.len() + 1, format!("expected NAME={what}")));
    };
    let name = name.trim().trim_start_matches('@');
    if name.is_empty() {
        return Err(syntax(flag, value, 1, "expected a field name before `=`"));
    }
    if rest.is_empty() {
        return Err(syntax(flag, value, value.len() + 1, format!("expected {what} after `=`")));
    }
    Ok((name, rest))
}

fn parse_count(flag: &'static str, value: &str) -> Result<usize, Error> {
    value.trim().parse::<usize>().map_err(|_| syntax(flag, value, 1, "expected a non-negative integer"))
}

/// Bytes with an optional suffix: k/K (1024), M, G.
fn parse_bytes(value: &str) -> Result<usize, Error> {
    let v = value.trim();
    let (digits, scale) = match v.char_indices().last() {
        Some((i, 'k' | 'K')) => (&v[..i], 1usize << 10),
        Some((i, 'm' | 'M')) => (&v[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&v[..i], 1 << 30),
        _ => (v, 1),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| syntax("--memory-budget", value, 1, "expected a number of bytes (suffixes k, M, G)"))
}

/// `NAME` or `NAME[I, J]`.
fn parse_print(value: &str) -> Result<PrintSpec, Error> {
    let at = ArgAt::new("--print", value);
    let (name, index) = match value.find('[') {
        None => (value.trim(), Vec::new()),
        Some(open) => {
            let inner = value[open + 1..]
                .strip_suffix(']')
                .ok_or_else(|| syntax("--print", value, value.len() + 1, "expected `]`"))?;
            let mut index = Vec::new();
            let mut col = open + 2;
            for part in inner.split(',') {
                let i = part
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| syntax("--print", value, col, "expected a non-negative index"))?;
                index.push(i);
                col += part.len() + 1;
            }
            (value[..open].trim(), index)
        }
    };
    let name = name.trim_start_matches('@');
    if name.is_empty() {
        return Err(syntax("--print", value, 1, "expected a field name"));
    }
    Ok(PrintSpec { field: name.to_string(), index, at })
}

/// Parses the arguments (without the program name).
pub fn parse(args: &[String]) -> Result<Options, Error> {
    let mut o = Options::default();
    let mut it = args.iter().peekable();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let takes_value = matches!(
            flag,
            "--field"
                | "--fill"
                | "--launch"
                | "--for"
                | "--repeat"
                | "--grad"
                | "--memory-budget"
                | "--print"
                | "--out"
                | "--arch"
                | "--threads"
                | "--pass-pipeline"
        );
        let value = if takes_value {
            match inline {
                Some(v) => v,
                None => it.next().cloned().ok_or_else(|| Error::Usage(format!("{flag} needs a value")))?,
            }
        } else {
            if inline.is_some() {
                return Err(Error::Usage(format!("{flag} takes no value")));
            }
            String::new()
        };
        let v = value.as_str();
        match flag {
            "--field" => {
                let (name, path) = name_eq("--field", v, "PATH.npy")?;
                o.inits.push(Init::Load { field: name.into(), path: path.into(), at: ArgAt::new("--field", v) });
            }
            "--fill" => {
                let (name, text) = name_eq("--fill", v, "VALUE")?;
                let value = text.trim().parse::<f64>().map_err(|_| {
                    syntax("--fill", v, v.len() - text.len() + 1, format!("`{text}` is not a number"))
                })?;
                o.inits.push(Init::Fill { field: name.into(), value, at: ArgAt::new("--fill", v) });
            }
            "--out" => {
                let (name, path) = name_eq("--out", v, "PATH.npy")?;
                o.outs.push(OutSpec { field: name.into(), path: path.into(), at: ArgAt::new("--out", v) });
            }
            "--print" => o.prints.push(parse_print(v)?),
            "--launch" => {
                let calls = launch::parse_calls(v)?;
                o.groups.push(Group { calls, repeat: Repeat::Once, at: ArgAt::new("--launch", v), loop_at: None });
            }
            "--for" | "--repeat" => {
                let flag: &'static str = if flag == "--for" { "--for" } else { "--repeat" };
                let repeat = if flag == "--for" {
                    launch::parse_for(v)?
                } else {
                    Repeat::Times(parse_count(flag, v)?)
                };
                match o.groups.last_mut() {
                    Some(g) if g.repeat == Repeat::Once => {
                        g.repeat = repeat;
                        g.loop_at = Some(ArgAt::new(flag, v));
                    }
                    Some(_) => return Err(syntax(flag, v, 1, "the --launch before it already has a loop")),
                    None => return Err(syntax(flag, v, 1, "no --launch before it to repeat")),
                }
            }
            "--grad" => {
                let name = v.trim().trim_start_matches('@');
                if name.is_empty() {
                    return Err(syntax("--grad", v, 1, "expected the loss field's name"));
                }
                o.grad = Some((name.to_string(), ArgAt::new("--grad", v)));
            }
            "--memory-budget" => o.memory_budget = Some(parse_bytes(v)?),
            "--print-plan" => o.print_plan = true,
            "--arch" => {
                o.arch = match v.trim() {
                    "cpu" => Arch::Cpu,
                    "cuda" | "gpu" => Arch::Cuda,
                    _ => return Err(syntax("--arch", v, 1, "expected cpu or cuda")),
                }
            }
            "--threads" => {
                let n = parse_count("--threads", v)?;
                if n == 0 {
                    return Err(syntax("--threads", v, 1, "expected at least 1 thread"));
                }
                o.threads = Some(n);
            }
            "--check-bounds" => o.check_bounds = true,
            "--pass-pipeline" => o.pipeline = Some(value.clone()),
            "--time" => o.time = true,
            "-h" | "--help" => o.help = true,
            "-" => set_input(&mut o, arg)?,
            _ if flag.starts_with('-') => return Err(Error::Usage(format!("unknown option `{arg}`"))),
            _ => set_input(&mut o, arg)?,
        }
    }
    if o.input.is_none() && !o.help {
        return Err(Error::Usage("no input file".into()));
    }
    if (o.memory_budget.is_some() || o.print_plan) && o.grad.is_none() {
        return Err(Error::Usage("--memory-budget and --print-plan need --grad LOSS".into()));
    }
    Ok(o)
}

fn set_input(o: &mut Options, arg: &str) -> Result<(), Error> {
    match o.input.replace(arg.to_string()) {
        Some(first) => Err(Error::Usage(format!("more than one input file given (`{first}` and `{arg}`)"))),
        None => Ok(()),
    }
}
