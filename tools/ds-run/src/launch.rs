//! `--launch 'KERNEL(ARG, ...); KERNEL(...)'` and its loop (`--for VAR=A..B`,
//! `--repeat N`): parsing with columns, then typing every argument against
//! the kernel's signature before anything runs, so a launch that cannot run
//! fails first, with its column, and the timed launches do no parsing.

use crate::error::{ArgAt, Error};
use ds_runtime::compile::{KernelInfo, ParamType};
use ds_runtime::{Arg, Backend};

/// One argument as written, with its column in the `--launch` value.
#[derive(Clone, Debug, PartialEq)]
pub enum ArgExpr {
    /// `%VAR`, `%VAR+N`, `%VAR-N`.
    Var { name: String, offset: i64, column: usize, text: String },
    /// A literal, typed once the kernel's signature is known.
    Lit { text: String, column: usize },
}

impl ArgExpr {
    fn column(&self) -> usize {
        match self {
            ArgExpr::Var { column, .. } | ArgExpr::Lit { column, .. } => *column,
        }
    }
    fn text(&self) -> &str {
        match self {
            ArgExpr::Var { text, .. } | ArgExpr::Lit { text, .. } => text,
        }
    }
}

/// `KERNEL(ARG, ...)` as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub kernel: String,
    /// Column of the kernel name in the `--launch` value.
    pub column: usize,
    pub args: Vec<ArgExpr>,
}

/// How often a `--launch` runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Repeat {
    Once,
    Times(usize),
    For { var: String, start: i64, end: i64 },
}

/// One `--launch` (one or more calls) and its loop.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub calls: Vec<Call>,
    pub repeat: Repeat,
    /// The `--launch` argument.
    pub at: ArgAt,
    /// The `--for` / `--repeat` argument.
    pub loop_at: Option<ArgAt>,
}

fn syntax(value: &str, column: usize, message: impl Into<String>) -> Error {
    Error::Syntax { at: ArgAt::at("--launch", value, column), message: message.into() }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.'
}

/// A small cursor over the `--launch` value; columns are 1-based characters.
struct Cursor<'a> {
    text: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor { text, chars: text.chars().collect(), pos: 0 }
    }
    fn skip_ws(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn column(&self) -> usize {
        self.pos + 1
    }
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }
    fn error(&self, message: impl Into<String>) -> Error {
        syntax(self.text, self.column(), message)
    }
}

/// Parses `k(a, b); k2(); k3` (parentheses optional for no arguments).
pub fn parse_calls(value: &str) -> Result<Vec<Call>, Error> {
    let mut c = Cursor::new(value);
    let mut calls = Vec::new();
    loop {
        c.skip_ws();
        calls.push(parse_call(&mut c)?);
        c.skip_ws();
        match c.peek() {
            None => break,
            Some(';') => {
                c.pos += 1;
                c.skip_ws();
                if c.peek().is_none() {
                    break;
                }
            }
            Some(ch) => return Err(c.error(format!("expected `;` or the end after the call, found `{ch}`"))),
        }
    }
    Ok(calls)
}

fn parse_call(c: &mut Cursor) -> Result<Call, Error> {
    let column = c.column();
    if !c.peek().is_some_and(is_ident_start) {
        return Err(c.error("expected a kernel name"));
    }
    let kernel = c.take_while(is_ident);
    c.skip_ws();
    let mut args = Vec::new();
    if c.peek() != Some('(') {
        return Ok(Call { kernel, column, args });
    }
    c.pos += 1;
    c.skip_ws();
    if c.peek() == Some(')') {
        c.pos += 1;
        return Ok(Call { kernel, column, args });
    }
    loop {
        c.skip_ws();
        args.push(parse_arg(c)?);
        c.skip_ws();
        match c.peek() {
            Some(',') => c.pos += 1,
            Some(')') => {
                c.pos += 1;
                return Ok(Call { kernel, column, args });
            }
            Some(ch) => return Err(c.error(format!("expected `,` or `)`, found `{ch}`"))),
            None => return Err(c.error("expected `,` or `)`")),
        }
    }
}

fn parse_arg(c: &mut Cursor) -> Result<ArgExpr, Error> {
    let column = c.column();
    let start = c.pos;
    if c.peek() == Some('%') {
        c.pos += 1;
        if !c.peek().is_some_and(is_ident_start) {
            return Err(c.error("expected a loop variable name after `%`"));
        }
        let name = c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        c.skip_ws();
        let mut offset = 0;
        if let Some(sign @ ('+' | '-')) = c.peek() {
            c.pos += 1;
            c.skip_ws();
            let digits_at = c.column();
            let digits = c.take_while(|ch| ch.is_ascii_digit());
            let n: i64 = digits.parse().map_err(|_| syntax(c.text, digits_at, "expected an integer offset"))?;
            offset = if sign == '-' { -n } else { n };
        }
        let text: String = c.chars[start..c.pos].iter().collect::<String>().trim().to_string();
        return Ok(ArgExpr::Var { name, offset, column, text });
    }
    let text = c.take_while(|ch| ch != ',' && ch != ')' && ch != ';').trim().to_string();
    if text.is_empty() {
        return Err(syntax(c.text, column, "expected an argument"));
    }
    Ok(ArgExpr::Lit { text, column })
}

/// `VAR=A..B` (B excluded) or `VAR=A..=B`.
pub fn parse_for(value: &str) -> Result<Repeat, Error> {
    let err = |column: usize, message: &str| Error::Syntax { at: ArgAt::at("--for", value, column), message: message.into() };
    let (var, range) = value.split_once('=').ok_or_else(|| err(value.len() + 1, "expected VAR=A..B"))?;
    let var = var.trim().trim_start_matches('%');
    if !var.starts_with(is_ident_start) || !var.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
        return Err(err(1, "expected a variable name before `=`"));
    }
    let range_col = value.len() - range.len() + 1;
    let (a, b, inclusive) = match range.split_once("..=") {
        Some((a, b)) => (a, b, true),
        None => match range.split_once("..") {
            Some((a, b)) => (a, b, false),
            None => return Err(err(range_col, "expected a range A..B")),
        },
    };
    let start: i64 = a.trim().parse().map_err(|_| err(range_col, "expected an integer"))?;
    let b_col = value.len() - b.len() + 1;
    let last: i64 = b.trim().parse().map_err(|_| err(b_col, "expected an integer"))?;
    let end = if inclusive { last.checked_add(1).ok_or_else(|| err(b_col, "the range is too large"))? } else { last };
    Ok(Repeat::For { var: var.to_string(), start, end })
}

/// An argument ready for launch: fixed, or the loop variable plus an offset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Typed {
    Fixed(Arg),
    Var { offset: i64, ty: ParamType },
}

impl Typed {
    fn arg(self, value: i64) -> Arg {
        match self {
            Typed::Fixed(a) => a,
            Typed::Var { offset, ty } => {
                let v = value + offset;
                match ty {
                    ParamType::Index => Arg::Index(v),
                    ParamType::I64 => Arg::I64(v),
                    ParamType::I32 => Arg::I32(v as i32),
                    ParamType::I1 => Arg::I1(v != 0),
                    ParamType::F32 => Arg::F32(v as f32),
                    ParamType::F64 => Arg::F64(v as f64),
                }
            }
        }
    }
}

/// A call whose arguments are checked against its kernel.
#[derive(Clone, Debug)]
pub struct Checked {
    pub kernel: String,
    pub args: Vec<Typed>,
}

impl Checked {
    /// The arguments for loop value `value` (ignored when none is a variable).
    pub fn args(&self, value: i64) -> Vec<Arg> {
        self.args.iter().map(|a| a.arg(value)).collect()
    }
}

/// A group with every call checked.
#[derive(Clone, Debug)]
pub struct Plan {
    pub calls: Vec<Checked>,
    pub repeat: Repeat,
    pub at: ArgAt,
}

impl Plan {
    /// The loop values: the variable's values, or 0 for each repeat.
    pub fn values(&self) -> impl Iterator<Item = i64> {
        let (start, end) = match &self.repeat {
            Repeat::Once => (0, 1),
            Repeat::Times(n) => (0, i64::try_from(*n).unwrap_or(i64::MAX)),
            Repeat::For { start, end, .. } => (*start, *end),
        };
        start..end.max(start)
    }

    /// The variable's name, for error messages.
    pub fn var(&self) -> Option<&str> {
        match &self.repeat {
            Repeat::For { var, .. } => Some(var),
            _ => None,
        }
    }
}

/// Types one literal against a parameter type.
fn literal(text: &str, ty: ParamType) -> Option<Arg> {
    let int = || -> Option<i64> {
        let t = text.replace('_', "");
        t.parse::<i64>().ok()
    };
    Some(match ty {
        ParamType::Index => Arg::Index(int()?),
        ParamType::I64 => Arg::I64(int()?),
        ParamType::I32 => Arg::I32(i32::try_from(int()?).ok()?),
        ParamType::I1 => Arg::I1(match text {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return None,
        }),
        ParamType::F32 => Arg::F32(text.parse::<f32>().ok()?),
        ParamType::F64 => Arg::F64(text.parse::<f64>().ok()?),
    })
}

/// Checks every call of `group` against the kernels of `p`.
pub fn check<B: Backend>(p: &B, group: &Group) -> Result<Plan, Error> {
    let var = match &group.repeat {
        Repeat::For { var, .. } => Some(var.as_str()),
        _ => None,
    };
    let (lo, hi) = match &group.repeat {
        Repeat::For { start, end, .. } => (*start, end.saturating_sub(1).max(*start)),
        _ => (0, 0),
    };
    let mut calls = Vec::new();
    for call in &group.calls {
        let at = |column: usize| ArgAt::at("--launch", &group.at.value, column);
        let info: &KernelInfo =
            p.kernel_info(&call.kernel).map_err(|source| Error::Arg { at: at(call.column), iteration: None, source: Box::new(source) })?;
        if info.params.len() != call.args.len() {
            let source = ds_runtime::Error::Arity {
                kernel: call.kernel.clone(),
                expected: info.params.len(),
                given: call.args.len(),
                params: info.params.clone(),
            };
            return Err(Error::Arg { at: at(call.column), iteration: None, source: Box::new(source) });
        }
        let mut args = Vec::new();
        for (index, (expr, &ty)) in call.args.iter().zip(&info.params).enumerate() {
            let bad = || Error::Argument {
                at: at(expr.column()),
                kernel: call.kernel.clone(),
                index,
                expected: ty,
                given: expr.text().to_string(),
            };
            let typed = match expr {
                ArgExpr::Lit { text, .. } => Typed::Fixed(literal(text, ty).ok_or_else(bad)?),
                ArgExpr::Var { name, offset, column, .. } => {
                    if var != Some(name.as_str()) {
                        let message = match var {
                            Some(v) => format!("unknown loop variable %{name} (this launch's loop is over %{v})"),
                            None => format!("%{name} is not a loop variable: give the launch a `--for {name}=A..B`"),
                        };
                        return Err(Error::Syntax { at: at(*column), message });
                    }
                    // The values the loop gives must fit the parameter.
                    let (a, b) = (lo.checked_add(*offset), hi.checked_add(*offset));
                    let fits = match (a, b, ty) {
                        (Some(a), Some(b), ParamType::I32) => i32::try_from(a).is_ok() && i32::try_from(b).is_ok(),
                        (Some(a), Some(b), ParamType::I1) => (0..=1).contains(&a) && (0..=1).contains(&b),
                        (Some(_), Some(_), _) => true,
                        _ => false,
                    };
                    if !fits {
                        return Err(bad());
                    }
                    Typed::Var { offset: *offset, ty }
                }
            };
            args.push(typed);
        }
        calls.push(Checked { kernel: call.kernel.clone(), args });
    }
    Ok(Plan { calls, repeat: group.repeat.clone(), at: group.at.clone() })
}
