//! Capturing MLIR diagnostics as values, so tools can print them as
//! `file:line:col: error: message`, compare them with expectations, or turn them
//! into Rust errors.

use crate::ir::{FileLineCol, Loc};
use melior::{Context, diagnostic::DiagnosticSeverity};
use std::{cell::RefCell, fmt, rc::Rc};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Note,
    Remark,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
            Severity::Remark => "remark",
        }
    }
}

/// One diagnostic with its position and notes.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub severity: Severity,
    /// file:line:col when the location has one.
    pub pos: Option<FileLineCol>,
    /// The location as text (file:line:col, or MLIR's form otherwise).
    pub loc: String,
    pub message: String,
    pub notes: Vec<Diagnostic>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.loc, self.severity.as_str(), self.message)?;
        for n in &self.notes {
            write!(f, "\n{n}")?;
        }
        Ok(())
    }
}

fn convert(d: &melior::diagnostic::Diagnostic) -> Diagnostic {
    let loc = Loc(d.location().to_raw());
    let severity = match d.severity() {
        DiagnosticSeverity::Error => Severity::Error,
        DiagnosticSeverity::Warning => Severity::Warning,
        DiagnosticSeverity::Note => Severity::Note,
        DiagnosticSeverity::Remark => Severity::Remark,
    };
    let notes = (0..d.note_count()).filter_map(|i| d.note(i).ok()).map(|n| convert(&n)).collect();
    Diagnostic { severity, pos: loc.file_line_col(), loc: loc.to_string(), message: d.to_string(), notes }
}

/// Runs `f` while collecting every diagnostic the context emits (they are not
/// printed). Returns `f`'s result and the diagnostics in order.
pub fn capture<R>(context: &Context, f: impl FnOnce() -> R) -> (R, Vec<Diagnostic>) {
    let sink: Rc<RefCell<Vec<Diagnostic>>> = Rc::default();
    let s = sink.clone();
    let id = context.attach_diagnostic_handler(move |d| {
        s.borrow_mut().push(convert(&d));
        true
    });
    let r = f();
    context.detach_diagnostic_handler(id);
    let diags = sink.take();
    (r, diags)
}
