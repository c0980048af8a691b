//! `break` and `continue` in kernel loops, lowered to flags before the body is
//! rewritten (the IR's `scf.for` and `ds.parallel_for` have no early exit).
//!
//! Each loop with exits gets a per-iteration flag `skip` (set by `continue`
//! and `break`) and, if it breaks, a flag `stop` declared before the loop and
//! carried through it (set by `break`). The statements after one that may exit
//! run under `if !skip { ... }`; a breaking loop's whole body runs under
//! `if !stop`. The flags are ordinary kernel variables, so the usual rewriting
//! makes them `scf.if` results and `scf.for` iteration arguments:
//!
//! ```ignore
//! for j in 0..n {                    let mut stop = flag(false);
//!     if x < 0.0 { break; }          for j in 0..n {
//!     s += x;                 ==>        let mut skip = stop;
//! }                                      if !skip {
//!                                            if x < 0.0 { stop = flag(true); skip = flag(true); }
//!                                            if !skip { s += x; }
//!                                        }
//!                                    }
//! ```
//!
//! Exits are lowered where they are statements, directly or inside
//! (`else`) `if` blocks and plain blocks; anywhere else, with a label or with a
//! value they are compile errors, as is `break` out of a parallel loop.

use proc_macro2::Span;
use quote::quote;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{Block, Expr, ExprIf, Ident, Stmt, parse_quote};

/// How a loop runs, which decides whether it may `break`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum LoopKind {
    Parallel,
    Serial,
    Unrolled,
}

/// A loop body with its exits lowered: statements to put before the loop
/// (the `stop` flag's declaration) and the new body.
pub struct Lowered {
    pub before: Vec<Stmt>,
    pub body: Block,
}

/// The exits of one loop (not those of loops nested in it).
#[derive(Default)]
struct Exits {
    breaks: Vec<Span>,
    continues: Vec<Span>,
    error: Option<syn::Error>,
}

impl<'a> Visit<'a> for Exits {
    fn visit_expr(&mut self, e: &'a Expr) {
        let problem = match e {
            Expr::Break(b) if b.label.is_some() => Some("labeled `break` is not supported in kernels"),
            Expr::Break(b) if b.expr.is_some() => Some("`break` with a value is not supported in kernels"),
            Expr::Continue(c) if c.label.is_some() => Some("labeled `continue` is not supported in kernels"),
            Expr::Break(b) => {
                self.breaks.push(b.span());
                None
            }
            Expr::Continue(c) => {
                self.continues.push(c.span());
                None
            }
            // Exits in nested loops are theirs; closures are rejected elsewhere.
            Expr::ForLoop(_) | Expr::While(_) | Expr::Loop(_) | Expr::Closure(_) => return,
            _ => None,
        };
        if let Some(message) = problem
            && self.error.is_none()
        {
            self.error = Some(syn::Error::new(e.span(), message));
        }
        syn::visit::visit_expr(self, e);
    }
}

fn exits_of(block: &Block) -> Exits {
    let mut x = Exits::default();
    x.visit_block(block);
    x
}

fn has_exit(stmt: &Stmt) -> bool {
    let mut x = Exits::default();
    x.visit_stmt(stmt);
    !x.breaks.is_empty() || !x.continues.is_empty() || x.error.is_some()
}

struct Flags {
    skip: Ident,
    stop: Ident,
}

impl Flags {
    fn set(&self, exit: &Expr) -> Vec<Stmt> {
        let (skip, stop) = (&self.skip, &self.stop);
        let mut out: Vec<Stmt> = Vec::new();
        if matches!(exit, Expr::Break(_)) {
            out.push(parse_quote!(#stop = ::diffsim::__rt::flag(true);));
        }
        out.push(parse_quote!(#skip = ::diffsim::__rt::flag(true);));
        out
    }

    /// The statements with each exit replaced by setting the flags and the
    /// statements after a possible exit guarded by `!skip`.
    fn guard(&self, stmts: Vec<Stmt>) -> Vec<Stmt> {
        let mut out = Vec::new();
        let mut rest = stmts.into_iter();
        while let Some(stmt) = rest.next() {
            if !has_exit(&stmt) {
                out.push(stmt);
                continue;
            }
            match stmt {
                // The statements after an exit never run.
                Stmt::Expr(e @ (Expr::Break(_) | Expr::Continue(_)), _) => {
                    out.extend(self.set(&e));
                    return out;
                }
                Stmt::Expr(Expr::If(i), _) => out.push(Stmt::Expr(Expr::If(self.guard_if(i)), None)),
                Stmt::Expr(Expr::Block(mut b), _) => {
                    b.block.stmts = self.guard(b.block.stmts);
                    out.push(Stmt::Expr(Expr::Block(b), None));
                }
                // Left in place: reported as an exit the lowering cannot handle.
                other => out.push(other),
            }
            let tail = self.guard(rest.collect());
            if !tail.is_empty() {
                let skip = &self.skip;
                out.push(parse_quote!(if !#skip { #(#tail)* }));
            }
            return out;
        }
        out
    }

    fn guard_if(&self, mut i: ExprIf) -> ExprIf {
        i.then_branch.stmts = self.guard(std::mem::take(&mut i.then_branch.stmts));
        if let Some((_, otherwise)) = &mut i.else_branch {
            let replaced = match std::mem::replace(&mut **otherwise, parse_quote!({})) {
                Expr::If(inner) => Expr::If(self.guard_if(inner)),
                Expr::Block(mut b) => {
                    b.block.stmts = self.guard(b.block.stmts);
                    Expr::Block(b)
                }
                other => other,
            };
            **otherwise = replaced;
        }
        i
    }
}

/// Lowers the exits of a loop body; `id` makes the flags' names unique.
pub fn lower(body: Block, kind: LoopKind, id: usize) -> syn::Result<Lowered> {
    let exits = exits_of(&body);
    if let Some(e) = exits.error {
        return Err(e);
    }
    if exits.breaks.is_empty() && exits.continues.is_empty() {
        return Ok(Lowered { before: vec![], body });
    }
    if kind == LoopKind::Parallel
        && let Some(span) = exits.breaks.first()
    {
        return Err(syn::Error::new(
            *span,
            "`break` cannot leave a parallel loop (its iterations run independently): use `continue`, or a serial loop",
        ));
    }
    let flags = Flags {
        skip: Ident::new(&format!("__ds_skip_{id}"), Span::call_site()),
        stop: Ident::new(&format!("__ds_stop_{id}"), Span::call_site()),
    };
    let (skip, stop) = (&flags.skip, &flags.stop);
    let stmts = flags.guard(body.stmts);
    // Exits the guarding could not reach (inside expressions) remain.
    let left = exits_of(&parse_quote!({ #(#stmts)* }));
    if let Some(span) = left.breaks.first().or(left.continues.first()) {
        return Err(syn::Error::new(*span, "`break` and `continue` must be statements (optionally inside if / else blocks) in kernels"));
    }
    // Statements are spliced, never nested in a new block, so that variables
    // they assign stay visible to the rest of the body.
    let (before, body) = if exits.breaks.is_empty() {
        let flag = quote!(::diffsim::__rt::flag(false));
        (vec![], parse_quote!({ let mut #skip = #flag; #(#stmts)* }))
    } else {
        (vec![parse_quote!(let mut #stop = ::diffsim::__rt::flag(false);)], parse_quote!({
            let mut #skip = #stop;
            if !#skip { #(#stmts)* }
        }))
    };
    Ok(Lowered { before, body })
}
