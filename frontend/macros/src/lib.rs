//! `#[kernel]` and `#[func]`: Rust functions compiled into DiffSim kernels.
//!
//! The attribute rewrites the body so that running it builds the kernel's IR
//! (see `diffsim::builder`):
//! - scalar parameters (`i32 i64 f32 f64 usize bool`) become kernel
//!   parameters; other parameters (field handles, constants) are build-time
//!   context, and the function returns the built kernel;
//! - `for i in a..b` is the kernel's parallel loop when outermost, a serial
//!   `scf.for` inside; variables it reassigns are carried through it;
//!   `for k in unroll(a..b)` unrolls at build time (Taichi's `ti.static`);
//! - `if` / `else` becomes `scf.if`; reassigned variables become its results,
//!   and an `if` with a value yields it;
//! - `f[(i, j)]` loads a field element, `f[(i, j)] = v` stores,
//!   `f[(i, j)] += v` / `-= v` add atomically;
//! - `< <= > >= == != && || !` and `as` become IR comparisons, logic and casts;
//! - every statement records its Rust file, line and column for the IR.
//!
//! `#[func]` applies the same rewriting to a helper called from kernels (it
//! is inlined by being called). Unsupported syntax (while, loop, match,
//! closures, return, break, continue, strings, nested items, macros) is a
//! compile error at its span.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{quote, quote_spanned};
use syn::fold::Fold;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{BinOp, Block, Expr, FnArg, ItemFn, Pat, Stmt, Type, UnOp, parse_macro_input, parse_quote};

#[proc_macro_attribute]
pub fn kernel(_attr: TokenStream, item: TokenStream) -> TokenStream {
    let f = parse_macro_input!(item as ItemFn);
    expand(f, true).unwrap_or_else(|e| e.to_compile_error()).into()
}

#[proc_macro_attribute]
pub fn func(_attr: TokenStream, item: TokenStream) -> TokenStream {
    let f = parse_macro_input!(item as ItemFn);
    expand(f, false).unwrap_or_else(|e| e.to_compile_error()).into()
}

/// The kernel type of a scalar parameter type, if it is one.
fn scalar_ty(t: &Type) -> Option<Tokens> {
    let Type::Path(p) = t else { return None };
    let name = p.path.get_ident()?.to_string();
    let ty = match name.as_str() {
        "i32" => quote!(I32),
        "i64" => quote!(I64),
        "f32" => quote!(F32),
        "f64" => quote!(F64),
        "usize" => quote!(Index),
        "bool" => quote!(Bool),
        _ => return None,
    };
    Some(quote!(::diffsim::__rt::Ty::#ty))
}

fn expand(f: ItemFn, is_kernel: bool) -> syn::Result<Tokens> {
    let mut rewriter = Rewriter { depth: if is_kernel { 0 } else { 1 }, error: None };
    let body = rewriter.fold_block((*f.block).clone());
    if let Some(e) = rewriter.error {
        return Err(e);
    }
    if !is_kernel {
        let mut out = f.clone();
        *out.block = body;
        return Ok(quote!(#[allow(unused_parens, unused_mut, unused_variables, unused_assignments)] #out));
    }
    let name = f.sig.ident.to_string();
    let (mut context, mut params, mut bind) = (Vec::new(), Vec::new(), Vec::new());
    for arg in &f.sig.inputs {
        let FnArg::Typed(pt) = arg else {
            return Err(syn::Error::new(arg.span(), "a kernel cannot take self"));
        };
        match scalar_ty(&pt.ty) {
            Some(ty) => {
                let Pat::Ident(id) = &*pt.pat else {
                    return Err(syn::Error::new(pt.pat.span(), "kernel parameters must be plain names"));
                };
                let ident = &id.ident;
                let n = params.len();
                params.push(quote!((stringify!(#ident), #ty)));
                bind.push(quote!(let #ident = __params[#n].clone();));
            }
            None => context.push(arg.clone()),
        }
    }
    if !matches!(f.sig.output, syn::ReturnType::Default) {
        return Err(syn::Error::new(f.sig.output.span(), "a kernel returns nothing: write results into fields"));
    }
    let (vis, ident, generics) = (&f.vis, &f.sig.ident, &f.sig.generics);
    let attrs = &f.attrs;
    Ok(quote! {
        #(#attrs)*
        #[allow(unused_parens, unused_mut, unused_variables, unused_assignments)]
        #vis fn #ident #generics (#(#context),*) -> ::std::result::Result<::diffsim::KernelDef, ::std::string::String> {
            ::diffsim::__rt::build_kernel(#name, &[#(#params),*], |__params| {
                #(#bind)*
                #body
            })
        }
    })
}

struct Rewriter {
    /// Loop nesting: 0 at a kernel's top level (the next loop is parallel).
    depth: usize,
    error: Option<syn::Error>,
}

impl Rewriter {
    fn fail(&mut self, span: Span, message: &str) -> Expr {
        if self.error.is_none() {
            self.error = Some(syn::Error::new(span, message));
        }
        parse_quote!(())
    }

    fn rt(name: &str) -> Tokens {
        let id = syn::Ident::new(name, Span::call_site());
        quote!(::diffsim::__rt::#id)
    }

    /// `f[(i, j)]` indices as a vec of index values.
    fn indices(&mut self, index: &Expr) -> Tokens {
        let parts: Vec<Expr> = match index {
            Expr::Tuple(t) => t.elems.iter().cloned().collect(),
            Expr::Paren(p) => vec![(*p.expr).clone()],
            other => vec![other.clone()],
        };
        let parts: Vec<Expr> = parts.into_iter().map(|e| self.fold_expr(e)).collect();
        let index = Self::rt("index");
        quote!(vec![#(#index(#parts)),*])
    }

    /// Variables a block reassigns that it does not declare itself.
    fn reassigned(block: &Block) -> Vec<syn::Ident> {
        #[derive(Default)]
        struct Finder {
            assigned: Vec<syn::Ident>,
            declared: Vec<syn::Ident>,
        }
        impl<'a> Visit<'a> for Finder {
            fn visit_expr(&mut self, e: &'a Expr) {
                let target = match e {
                    Expr::Assign(a) => Some(&*a.left),
                    Expr::Binary(b) if is_compound_assign(&b.op) => Some(&*b.left),
                    _ => None,
                };
                if let Some(Expr::Path(p)) = target
                    && let Some(id) = p.path.get_ident()
                    && !self.assigned.contains(id)
                {
                    self.assigned.push(id.clone());
                }
                syn::visit::visit_expr(self, e);
            }
            fn visit_pat_ident(&mut self, p: &'a syn::PatIdent) {
                self.declared.push(p.ident.clone());
            }
        }
        let mut f = Finder::default();
        f.visit_block(block);
        f.assigned.into_iter().filter(|a| !f.declared.contains(a)).collect()
    }

    fn body_with(&mut self, block: Block, depth: usize) -> Block {
        let saved = std::mem::replace(&mut self.depth, depth);
        let b = self.fold_block(block);
        self.depth = saved;
        b
    }

    fn rewrite_for(&mut self, f: syn::ExprForLoop) -> Stmt {
        let pat = &f.pat;
        // `for k in unroll(a..b)`: a Rust loop run at build time.
        if let Expr::Call(c) = &*f.expr
            && matches!(&*c.func, Expr::Path(p) if p.path.is_ident("unroll"))
        {
            let range = c.args.first().cloned();
            let body = self.body_with(f.body.clone(), self.depth);
            return parse_quote!(for #pat in #range #body);
        }
        let Expr::Range(r) = &*f.expr else {
            return Stmt::Expr(self.fail(f.expr.span(), "kernel loops run over a range `a..b` (or `unroll(a..b)` at build time)"), None);
        };
        let (Some(lo), Some(hi)) = (r.start.clone(), r.end.clone()) else {
            return Stmt::Expr(self.fail(r.span(), "kernel loop ranges need both ends: `a..b`"), None);
        };
        if matches!(r.limits, syn::RangeLimits::Closed(_)) {
            return Stmt::Expr(self.fail(r.span(), "use a half-open range `a..b` in kernel loops"), None);
        }
        let (lo, hi) = (self.fold_expr(*lo), self.fold_expr(*hi));
        let carried = Self::reassigned(&f.body);
        if self.depth == 0 {
            if let Some(v) = carried.first() {
                return Stmt::Expr(self.fail(v.span(), "a parallel loop cannot reassign a variable declared outside it"), None);
            }
            let body = self.body_with(f.body, 1);
            let pf = Self::rt("parallel_for");
            return parse_quote!(#pf(#lo, #hi, |#pat| #body););
        }
        let body = statements(self.body_with(f.body, self.depth + 1));
        let sf = Self::rt("serial_for");
        // The body's statements are spliced (not a nested block), so variables
        // it rebinds are the ones returned.
        parse_quote! {
            let (#(#carried,)*) = #sf(#lo, #hi, (#(#carried,)*), |#pat, (#(mut #carried,)*)| {
                #(#body)*
                (#(#carried,)*)
            });
        }
    }

    /// `if` as a statement: reassigned variables become the `scf.if`'s results.
    fn rewrite_if_stmt(&mut self, i: syn::ExprIf) -> Stmt {
        let cond = self.fold_expr(*i.cond);
        let mut carried = Self::reassigned(&i.then_branch);
        let else_block: Block = match i.else_branch {
            Some((_, e)) => match *e {
                Expr::Block(b) => b.block,
                other => parse_quote!({ #other; }),
            },
            None => parse_quote!({}),
        };
        for v in Self::reassigned(&else_block) {
            if !carried.contains(&v) {
                carried.push(v);
            }
        }
        let then = statements(self.body_with(i.then_branch, self.depth.max(1)));
        let otherwise = statements(self.body_with(else_block, self.depth.max(1)));
        let br = Self::rt("branch");
        parse_quote! {
            let (#(#carried,)*) = #br(#cond, (#(#carried,)*),
                |(#(mut #carried,)*)| { #(#then)* (#(#carried,)*) },
                |(#(mut #carried,)*)| { #(#otherwise)* (#(#carried,)*) });
        }
    }

    fn located(stmt: Stmt, span: Span) -> Vec<Stmt> {
        let at = Self::rt("at");
        let mark: Stmt = syn::parse2(quote_spanned!(span=> #at(file!(), line!(), column!());)).expect("a statement");
        vec![mark, stmt]
    }
}

/// A block's statements for splicing before a value: expression statements
/// get their semicolons.
fn statements(block: Block) -> Vec<Stmt> {
    block
        .stmts
        .into_iter()
        .map(|s| match s {
            Stmt::Expr(e, None) => Stmt::Expr(e, Some(Default::default())),
            other => other,
        })
        .collect()
}

fn is_compound_assign(op: &BinOp) -> bool {
    matches!(op, BinOp::AddAssign(_) | BinOp::SubAssign(_) | BinOp::MulAssign(_) | BinOp::DivAssign(_))
}

impl Fold for Rewriter {
    fn fold_block(&mut self, b: Block) -> Block {
        let mut stmts = Vec::new();
        let last = b.stmts.len().saturating_sub(1);
        for (k, s) in b.stmts.into_iter().enumerate() {
            let span = s.span();
            let s = match s {
                // A trailing `if` with an `else` and no semicolon is the block's value.
                Stmt::Expr(Expr::If(i), None) if k == last && i.else_branch.is_some() => {
                    Stmt::Expr(self.fold_expr(Expr::If(i)), None)
                }
                Stmt::Expr(Expr::If(i), _) => self.rewrite_if_stmt(i),
                Stmt::Expr(Expr::ForLoop(f), _) => self.rewrite_for(f),
                Stmt::Item(item) => {
                    Stmt::Expr(self.fail(item.span(), "items (nested fn, struct, use ...) are not supported in kernels"), None)
                }
                Stmt::Macro(m) => Stmt::Expr(
                    self.fail(m.span(), "macros are not supported in kernels (their code cannot be compiled for the device)"),
                    None,
                ),
                other => syn::fold::fold_stmt(self, other),
            };
            stmts.extend(Self::located(s, span));
        }
        Block { brace_token: b.brace_token, stmts }
    }

    fn fold_expr(&mut self, e: Expr) -> Expr {
        let span = e.span();
        match e {
            Expr::Index(ix) => {
                let base = self.fold_expr(*ix.expr);
                let idx = self.indices(&ix.index);
                let load = Self::rt("load");
                parse_quote!(#load(&#base, #idx))
            }
            Expr::Assign(a) => match *a.left {
                Expr::Index(ix) => {
                    let base = self.fold_expr(*ix.expr);
                    let idx = self.indices(&ix.index);
                    let value = self.fold_expr(*a.right);
                    let store = Self::rt("store");
                    parse_quote!(#store(&#base, #idx, #value))
                }
                left => {
                    let value = self.fold_expr(*a.right);
                    parse_quote!(#left = #value)
                }
            },
            Expr::Binary(b) => {
                let op = b.op;
                if is_compound_assign(&op) {
                    let value = self.fold_expr(*b.right);
                    return match (*b.left, op) {
                        (Expr::Index(ix), BinOp::AddAssign(_) | BinOp::SubAssign(_)) => {
                            let base = self.fold_expr(*ix.expr);
                            let idx = self.indices(&ix.index);
                            let f = Self::rt(if matches!(op, BinOp::AddAssign(_)) { "atomic_add" } else { "atomic_sub" });
                            parse_quote!(#f(&#base, #idx, #value))
                        }
                        (Expr::Index(_), _) => self.fail(span, "only += and -= update field elements (atomically)"),
                        (left, op) => {
                            let bin: Tokens = match op {
                                BinOp::AddAssign(_) => quote!(+),
                                BinOp::SubAssign(_) => quote!(-),
                                BinOp::MulAssign(_) => quote!(*),
                                _ => quote!(/),
                            };
                            parse_quote!(#left = #left.clone() #bin #value)
                        }
                    };
                }
                let (l, r) = (self.fold_expr(*b.left), self.fold_expr(*b.right));
                let f = match op {
                    BinOp::Lt(_) => "lt",
                    BinOp::Le(_) => "le",
                    BinOp::Gt(_) => "gt",
                    BinOp::Ge(_) => "ge",
                    BinOp::Eq(_) => "eq",
                    BinOp::Ne(_) => "ne",
                    BinOp::And(_) => "and",
                    BinOp::Or(_) => "or",
                    _ => return parse_quote!(#l #op #r),
                };
                let f = Self::rt(f);
                parse_quote!(#f(#l, #r))
            }
            Expr::Unary(u) if matches!(u.op, UnOp::Not(_)) => {
                let inner = self.fold_expr(*u.expr);
                let not = Self::rt("not");
                parse_quote!(#not(#inner))
            }
            Expr::Cast(c) => {
                let inner = self.fold_expr(*c.expr);
                match scalar_ty(&c.ty) {
                    Some(ty) => {
                        let cast = Self::rt("cast_to");
                        parse_quote!(#cast(#inner, #ty))
                    }
                    None => self.fail(c.ty.span(), "kernels cast only to i32, i64, f32, f64, usize or bool"),
                }
            }
            Expr::If(i) => {
                let Some((_, otherwise)) = i.else_branch else {
                    return self.fail(span, "an `if` used as a value needs an `else`");
                };
                let cond = self.fold_expr(*i.cond);
                let then = self.body_with(i.then_branch, self.depth.max(1));
                let otherwise = self.fold_expr(*otherwise);
                let bv = Self::rt("branch_value");
                parse_quote!(#bv(#cond, || #then, || #otherwise))
            }
            Expr::ForLoop(f) => {
                let stmt = self.rewrite_for(f);
                parse_quote!({ #stmt })
            }
            Expr::While(_) => self.fail(span, "`while` is not supported in kernels: use `for i in a..b` with a bound"),
            Expr::Loop(_) => self.fail(span, "`loop` is not supported in kernels: use `for i in a..b` with a bound"),
            Expr::Match(_) => self.fail(span, "`match` is not supported in kernels: use if / else"),
            Expr::Closure(_) => self.fail(span, "closures are not supported in kernels: use a #[func] function"),
            Expr::Return(_) => self.fail(span, "`return` is not supported in kernels"),
            Expr::Break(_) | Expr::Continue(_) => {
                self.fail(span, "`break` and `continue` are not supported in kernels: guard the rest of the body with if")
            }
            Expr::Async(_) | Expr::Await(_) => self.fail(span, "async code is not supported in kernels"),
            Expr::Unsafe(_) => self.fail(span, "unsafe blocks are not supported in kernels"),
            Expr::Try(_) => self.fail(span, "the `?` operator is not supported in kernels"),
            Expr::Macro(_) => self.fail(span, "macros are not supported in kernels"),
            Expr::Lit(l) if matches!(l.lit, syn::Lit::Str(_) | syn::Lit::ByteStr(_) | syn::Lit::Char(_)) => {
                self.fail(span, "strings and characters are not values in kernels")
            }
            other => syn::fold::fold_expr(self, other),
        }
    }
}
