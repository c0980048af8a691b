//! `#[kernel]` and `#[func]`: Rust functions compiled into DiffSim kernels.
//!
//! The attribute rewrites the body so that running it builds the kernel's IR
//! (see `diffsim::builder`):
//! - scalar parameters (`i32 i64 f32 f64 usize bool`, or a type parameter
//!   bound by `Scalar` or `Param`) become kernel
//!   parameters, and their types the kernel's launch arguments (`()`, the one
//!   type, or a tuple: `Kernel<(usize, f32)>`); other parameters (field
//!   handles, constants) are build-time context, and the function returns the
//!   built kernel (`Result<KernelDef<args>, Error>`);
//! - `for i in a..b` is the kernel's parallel loop when outermost, a serial
//!   `scf.for` inside; variables it reassigns are carried through it;
//!   `for (i, j) in x.active()` (outermost only) is the parallel loop over
//!   the active cells of field `x` (`ds.struct_for`);
//!   `for k in unroll(a..b)` unrolls at build time (Taichi's `ti.static`);
//!   `continue` works in every loop and `break` in serial and unrolled loops
//!   (lowered to flags, see `exits`);
//! - `if` / `else` becomes `scf.if`; reassigned variables become its results,
//!   and an `if` with a value yields it;
//! - `f[(i, j)]` loads a field element, `f[(i, j)] = v` stores,
//!   `f[(i, j)] += v` / `-= v` add atomically;
//! - `< <= > >= == != && || !` and `as` become IR comparisons, logic and casts;
//! - every statement, and every operator, cast, call, method call and field
//!   access, records its Rust file, line and column for the ops it emits
//!   (operands first, so an op carries the location of its own expression).
//!
//! `#[func]` applies the same rewriting to a helper called from kernels (it
//! is inlined by being called), and so are closures in a kernel. Unsupported
//! syntax (while, loop, match, return, `break` out of a parallel loop, strings, nested items,
//! macros) is a compile error at its span.

mod exits;

use exits::LoopKind;

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::quote;
use syn::fold::Fold;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{BinOp, Block, Expr, FnArg, ItemFn, Pat, Stmt, Type, UnOp, parse_macro_input, parse_quote};

/// A kernel; `#[kernel(no_grad)]` marks one that gets no gradient kernel
/// (e.g. an optimizer step that reads and writes the same field).
#[proc_macro_attribute]
pub fn kernel(attr: TokenStream, item: TokenStream) -> TokenStream {
    let f = parse_macro_input!(item as ItemFn);
    let attr = Tokens::from(attr);
    let no_grad = match attr.to_string().as_str() {
        "" => false,
        "no_grad" => true,
        _ => return syn::Error::new_spanned(attr, "the only kernel option is `no_grad`").to_compile_error().into(),
    };
    expand(f, Some(no_grad)).unwrap_or_else(|e| e.to_compile_error()).into()
}

/// A helper called from kernels (inlined: running it emits its ops).
#[proc_macro_attribute]
pub fn func(attr: TokenStream, item: TokenStream) -> TokenStream {
    let f = parse_macro_input!(item as ItemFn);
    let attr = Tokens::from(attr);
    if !attr.is_empty() {
        return syn::Error::new_spanned(attr, "#[func] takes no options").to_compile_error().into();
    }
    expand(f, None).unwrap_or_else(|e| e.to_compile_error()).into()
}

/// The kernel type of a scalar parameter type, if it is one.
/// A by-value parameter of type `T`, a type parameter of the kernel bound
/// by `Scalar` or `Param`: a kernel parameter of `T`'s type.
fn generic_scalar_ty(t: &Type, scalar_generics: &[syn::Ident]) -> Option<Tokens> {
    let Type::Path(p) = t else { return None };
    let ident = p.path.get_ident().filter(|i| scalar_generics.contains(i))?;
    Some(quote!(<#ident as ::diffsim::Param>::TY))
}

/// The type parameters of `generics` bound (inline or in the where clause)
/// by a trait named `Scalar` or `Param`.
fn scalar_generics(generics: &syn::Generics) -> Vec<syn::Ident> {
    let scalar_bound = |bounds: &syn::punctuated::Punctuated<syn::TypeParamBound, syn::Token![+]>| {
        bounds.iter().any(|b| {
            matches!(b, syn::TypeParamBound::Trait(t) if t.path.segments.last().is_some_and(|s| s.ident == "Scalar" || s.ident == "Param"))
        })
    };
    let mut out: Vec<syn::Ident> = generics.type_params().filter(|p| scalar_bound(&p.bounds)).map(|p| p.ident.clone()).collect();
    for predicate in generics.where_clause.iter().flat_map(|w| &w.predicates) {
        if let syn::WherePredicate::Type(pt) = predicate
            && let Type::Path(p) = &pt.bounded_ty
            && let Some(ident) = p.path.get_ident()
            && scalar_bound(&pt.bounds)
            && !out.contains(ident)
        {
            out.push(ident.clone());
        }
    }
    out
}

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

/// `kernel` is `Some(no_grad)` for a kernel, `None` for a `#[func]`.
fn expand(f: ItemFn, kernel: Option<bool>) -> syn::Result<Tokens> {
    let generics = f.sig.generics.type_params().map(|p| p.ident.clone()).collect();
    let mut rewriter = Rewriter { depth: if kernel.is_some() { 0 } else { 1 }, loops: 0, locals: Vec::new(), generics, error: None };
    let body = rewriter.fold_block((*f.block).clone());
    if let Some(e) = rewriter.error {
        return Err(e);
    }
    let Some(no_grad) = kernel else {
        let mut out = f.clone();
        *out.block = body;
        return Ok(quote!(#[allow(unused_parens, unused_mut, unused_variables, unused_assignments, clippy::unused_unit)] #out));
    };
    let name = f.sig.ident.to_string();
    let (mut context, mut params, mut bind, mut types) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let scalars = scalar_generics(&f.sig.generics);
    for arg in &f.sig.inputs {
        let FnArg::Typed(pt) = arg else {
            return Err(syn::Error::new(arg.span(), "a kernel cannot take self"));
        };
        match scalar_ty(&pt.ty).or_else(|| generic_scalar_ty(&pt.ty, &scalars)) {
            Some(ty) => {
                let Pat::Ident(id) = &*pt.pat else {
                    return Err(syn::Error::new(pt.pat.span(), "kernel parameters must be plain names"));
                };
                let ident = &id.ident;
                let n = params.len();
                params.push(quote!((stringify!(#ident), #ty)));
                types.push(pt.ty.clone());
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
    // The launch arguments: `()`, the one scalar type, or a tuple of them.
    let args = match types.as_slice() {
        [one] => quote!(#one),
        many => quote!((#(#many),*)),
    };
    Ok(quote! {
        #(#attrs)*
        #[allow(unused_parens, unused_mut, unused_variables, unused_assignments, clippy::unused_unit)]
        #vis fn #ident #generics (#(#context),*) -> ::std::result::Result<::diffsim::KernelDef<#args>, ::diffsim::Error> {
            ::diffsim::__rt::kernel_def(::diffsim::__rt::build_kernel(#name, &[#(#params),*], #no_grad, |__params| {
                #(#bind)*
                #body
            }))
        }
    })
}

struct Rewriter {
    /// Loop nesting: 0 at a kernel's top level (the next loop is parallel).
    depth: usize,
    /// Loops rewritten so far (names the flags of their exits).
    loops: usize,
    /// The `let` bindings in scope: `v[i] = x` reassigns a local vector `v`
    /// (a field handle is not a local and is not reassigned by a store).
    locals: Vec<syn::Ident>,
    /// The function's type parameters: `v as T` casts to a generic scalar.
    generics: Vec<syn::Ident>,
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

    /// Sets the location of the ops that follow to `span`'s (taken here, so
    /// the generated call has no user-spanned tokens for lints to flag).
    fn at(span: Span) -> Tokens {
        let at = Self::rt("at");
        let start = span.unwrap();
        let (file, line, column) = (start.file(), start.line() as u32, start.column() as u32);
        quote!(#at(#file, #line, #column))
    }

    /// `make(operands)` run after `operands` are evaluated and the location is
    /// set to `span`, so the ops `make` emits carry the expression's location.
    /// Names and literals are used in place (they emit nothing).
    fn located_expr(span: Span, operands: Vec<Expr>, make: impl FnOnce(Vec<Tokens>) -> Tokens) -> Expr {
        let mut lets = Vec::new();
        let mut uses = Vec::new();
        for (k, operand) in operands.into_iter().enumerate() {
            let simple = match &operand {
                Expr::Path(_) | Expr::Lit(_) => true,
                Expr::Reference(r) => matches!(&*r.expr, Expr::Path(_)),
                _ => false,
            };
            if simple {
                uses.push(quote!(#operand));
            } else {
                let id = syn::Ident::new(&format!("__ds_operand{k}"), Span::mixed_site());
                lets.push(quote!(let #id = #operand;));
                uses.push(quote!(#id));
            }
        }
        let at = Self::at(span);
        let made = make(uses);
        parse_quote!({ #(#lets)* #at; #made })
    }

    /// `f[(i, j)]` indices as a vec of index values.
    fn indices(&mut self, index: &Expr) -> Expr {
        let parts: Vec<Expr> = match index {
            Expr::Tuple(t) => t.elems.iter().cloned().collect(),
            Expr::Paren(p) => vec![(*p.expr).clone()],
            // One index, or a tuple of them held in a variable (`rt::indices`).
            other => {
                let (other, indices) = (self.fold_expr(other.clone()), Self::rt("indices"));
                return parse_quote!(#indices(#other));
            }
        };
        let parts: Vec<Expr> = parts.into_iter().map(|e| self.fold_expr(e)).collect();
        let index = Self::rt("index");
        parse_quote!(vec![#(#index(#parts)),*])
    }

    /// A field update `f[idx] (op)= value` through `rt::<name>`.
    fn field_update(&mut self, span: Span, name: &str, ix: syn::ExprIndex, value: Expr) -> Expr {
        let base = self.fold_expr(*ix.expr);
        let idx = self.indices(&ix.index);
        let value = self.fold_expr(value);
        let f = Self::rt(name);
        Self::located_expr(span, vec![idx, value], |o| {
            let (i, v) = (&o[0], &o[1]);
            quote!(#f(&#base, #i, #v))
        })
    }

    /// Variables a block reassigns that it does not declare itself.
    fn reassigned(&self, block: &Block) -> Vec<syn::Ident> {
        struct Finder<'l> {
            locals: &'l [syn::Ident],
            assigned: Vec<syn::Ident>,
            declared: Vec<syn::Ident>,
        }
        impl Finder<'_> {
            /// The variables an assignment target names: `x`, each of a
            /// destructuring `(p, q) = ...`, or a local vector or matrix
            /// whose component is assigned (`v[i] = ...`).
            fn note_target(&mut self, target: &Expr) {
                match target {
                    Expr::Path(p) => {
                        if let Some(id) = p.path.get_ident()
                            && !self.assigned.contains(id)
                        {
                            self.assigned.push(id.clone());
                        }
                    }
                    Expr::Tuple(t) => t.elems.iter().for_each(|e| self.note_target(e)),
                    Expr::Paren(p) => self.note_target(&p.expr),
                    Expr::Index(ix) => {
                        if let Expr::Path(p) = &*ix.expr
                            && p.path.get_ident().is_some_and(|id| self.locals.contains(id))
                        {
                            self.note_target(&ix.expr)
                        }
                    }
                    _ => {}
                }
            }
        }
        impl<'a> Visit<'a> for Finder<'_> {
            fn visit_expr(&mut self, e: &'a Expr) {
                let target = match e {
                    Expr::Assign(a) => Some(&*a.left),
                    Expr::Binary(b) if is_compound_assign(&b.op) => Some(&*b.left),
                    _ => None,
                };
                if let Some(t) = target {
                    self.note_target(t);
                }
                syn::visit::visit_expr(self, e);
            }
            fn visit_pat_ident(&mut self, p: &'a syn::PatIdent) {
                self.declared.push(p.ident.clone());
            }
        }
        let mut f = Finder { locals: &self.locals, assigned: Vec::new(), declared: Vec::new() };
        f.visit_block(block);
        f.assigned.into_iter().filter(|a| !f.declared.contains(a)).collect()
    }

    fn body_with(&mut self, block: Block, depth: usize) -> Block {
        let saved = std::mem::replace(&mut self.depth, depth);
        let b = self.fold_block(block);
        self.depth = saved;
        b
    }

    /// A `for` loop as statements: the declarations of its exit flags (see
    /// `exits`), then the loop.
    fn rewrite_for(&mut self, f: syn::ExprForLoop) -> Vec<Stmt> {
        let pat = &f.pat;
        // `for k in unroll(a..b)`: a Rust loop run at build time.
        let unrolled = matches!(&*f.expr, Expr::Call(c) if matches!(&*c.func, Expr::Path(p) if p.path.is_ident("unroll")));
        let kind = match (unrolled, self.depth) {
            (true, _) => LoopKind::Unrolled,
            (false, 0) => LoopKind::Parallel,
            (false, _) => LoopKind::Serial,
        };
        self.loops += 1;
        let exits::Lowered { before, body } = match exits::lower(f.body, kind, self.loops) {
            Ok(lowered) => lowered,
            Err(e) => return vec![self.fail_stmt(e)],
        };
        let mut out = before;
        if let (LoopKind::Unrolled, Expr::Call(c)) = (kind, &*f.expr) {
            let range = c.args.first().cloned();
            let body = self.body_with(body, self.depth);
            out.push(parse_quote!(for #pat in #range #body));
            return out;
        }
        // `for (i, j) in x.active()`: the kernel's parallel loop over the active cells of x.
        if let Expr::MethodCall(m) = &*f.expr
            && m.method == "active"
            && m.args.is_empty()
        {
            if kind != LoopKind::Parallel {
                return vec![self.fail_at(f.expr.span(), "a loop over a field's active cells must be a kernel's outermost loop")];
            }
            let cells: Vec<Pat> = match &*f.pat {
                Pat::Tuple(t) => t.elems.iter().cloned().collect(),
                Pat::Paren(p) => vec![(*p.pat).clone()],
                other => vec![other.clone()],
            };
            if let Some(v) = self.reassigned(&body).first() {
                return vec![self.fail_at(v.span(), "a parallel loop cannot reassign a variable declared outside it")];
            }
            let field = self.fold_expr((*m.receiver).clone());
            let k = cells.len();
            let body = self.body_with(body, 1);
            let sf = Self::rt("struct_for");
            out.push(parse_quote!(#sf::<_, #k>(&#field, |[#(#cells),*]: [::diffsim::Expr; #k]| #body);));
            return out;
        }
        let Expr::Range(r) = &*f.expr else {
            return vec![self.fail_at(f.expr.span(), "kernel loops run over a range `a..b`, a field's active cells `x.active()`, or `unroll(a..b)` at build time")];
        };
        let (Some(lo), Some(hi)) = (r.start.clone(), r.end.clone()) else {
            return vec![self.fail_at(r.span(), "kernel loop ranges need both ends: `a..b`")];
        };
        if matches!(r.limits, syn::RangeLimits::Closed(_)) {
            return vec![self.fail_at(r.span(), "use a half-open range `a..b` in kernel loops")];
        }
        let (lo, hi) = (self.fold_expr(*lo), self.fold_expr(*hi));
        let carried = self.reassigned(&body);
        if kind == LoopKind::Parallel {
            if let Some(v) = carried.first() {
                return vec![self.fail_at(v.span(), "a parallel loop cannot reassign a variable declared outside it")];
            }
            let body = self.body_with(body, 1);
            let pf = Self::rt("parallel_for");
            out.push(parse_quote!(#pf(#lo, #hi, |#pat| #body);));
            return out;
        }
        let body = statements(self.body_with(body, self.depth + 1));
        let sf = Self::rt("serial_for");
        out.push(Self::assign(
            &carried,
            parse_quote! {
                #sf(#lo, #hi, (#(#carried,)*), |#pat, (#(mut #carried,)*)| {
                    #(#body)*
                    (#(#carried,)*)
                })
            },
        ));
        out
    }

    /// `(a, b) = value;`: the new values of carried variables, assigned (not
    /// rebound, so that they outlive any block around the statement).
    fn assign(carried: &[syn::Ident], value: Expr) -> Stmt {
        if carried.is_empty() {
            parse_quote!(#value;)
        } else {
            parse_quote!((#(#carried,)*) = #value;)
        }
    }

    /// `if` as a statement: reassigned variables become the `scf.if`'s results.
    fn rewrite_if_stmt(&mut self, i: syn::ExprIf) -> Stmt {
        let cond = self.fold_expr(*i.cond);
        let mut carried = self.reassigned(&i.then_branch);
        let else_block: Block = match i.else_branch {
            Some((_, e)) => match *e {
                Expr::Block(b) => b.block,
                other => parse_quote!({ #other; }),
            },
            None => parse_quote!({}),
        };
        for v in self.reassigned(&else_block) {
            if !carried.contains(&v) {
                carried.push(v);
            }
        }
        let then = statements(self.body_with(i.then_branch, self.depth.max(1)));
        let otherwise = statements(self.body_with(else_block, self.depth.max(1)));
        let br = Self::rt("branch");
        Self::assign(
            &carried,
            parse_quote! {
                #br(#cond, (#(#carried,)*),
                    |(#(mut #carried,)*)| { #(#then)* (#(#carried,)*) },
                    |(#(mut #carried,)*)| { #(#otherwise)* (#(#carried,)*) })
            },
        )
    }

    fn fail_at(&mut self, span: Span, message: &str) -> Stmt {
        Stmt::Expr(self.fail(span, message), None)
    }

    fn fail_stmt(&mut self, error: syn::Error) -> Stmt {
        if self.error.is_none() {
            self.error = Some(error);
        }
        Stmt::Expr(parse_quote!(()), None)
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

/// Whether a block ends in a value (not `()`): a trailing `if` / `else`
/// whose branches end in statements (`acc += x;`) is a statement.
fn has_value(block: &Block) -> bool {
    match block.stmts.last() {
        Some(Stmt::Expr(Expr::If(i), None)) => i.else_branch.is_some() && has_value(&i.then_branch),
        Some(Stmt::Expr(Expr::Block(b), None)) => has_value(&b.block),
        Some(Stmt::Expr(Expr::ForLoop(_) | Expr::Assign(_), None)) => false,
        Some(Stmt::Expr(Expr::Binary(b), None)) => !is_compound_assign(&b.op),
        Some(Stmt::Expr(_, None)) => true,
        _ => false,
    }
}

/// Wraps a block's tail number literal as `literal_arm(LIT)` (a kernel value
/// that takes the other branch's type); whether it had one.
fn literal_tail(block: &mut Block) -> bool {
    match block.stmts.last_mut() {
        Some(Stmt::Expr(e, None)) if is_number_literal(e) => {
            let arm = Rewriter::rt("literal_arm");
            *e = parse_quote!(#arm(#e));
            true
        }
        _ => false,
    }
}

/// A number literal, maybe negated (`0.0`, `-1`, `2.5f64`).
fn is_number_literal(e: &Expr) -> bool {
    match e {
        Expr::Lit(l) => matches!(l.lit, syn::Lit::Int(_) | syn::Lit::Float(_)),
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => is_number_literal(&u.expr),
        Expr::Paren(p) => is_number_literal(&p.expr),
        _ => false,
    }
}

/// The names a `let` pattern binds.
fn pattern_names(pat: &Pat, out: &mut Vec<syn::Ident>) {
    struct Names<'o>(&'o mut Vec<syn::Ident>);
    impl<'a> Visit<'a> for Names<'_> {
        fn visit_pat_ident(&mut self, p: &'a syn::PatIdent) {
            self.0.push(p.ident.clone());
        }
    }
    Names(out).visit_pat(pat);
}

fn is_compound_assign(op: &BinOp) -> bool {
    matches!(op, BinOp::AddAssign(_) | BinOp::SubAssign(_) | BinOp::MulAssign(_) | BinOp::DivAssign(_))
}

impl Fold for Rewriter {
    /// Types are Rust's, never kernel code (array lengths stay constants).
    fn fold_type(&mut self, t: Type) -> Type {
        t
    }

    fn fold_block(&mut self, b: Block) -> Block {
        let scope = self.locals.len();
        let mut stmts = Vec::new();
        let last = b.stmts.len().saturating_sub(1);
        for (k, s) in b.stmts.into_iter().enumerate() {
            let at = Self::at(s.span());
            stmts.push(parse_quote!(#at;));
            match s {
                // A trailing `if` with an `else` and no semicolon is the block's value.
                Stmt::Expr(Expr::If(i), None) if k == last && i.else_branch.is_some() && has_value(&i.then_branch) => {
                    stmts.push(Stmt::Expr(self.fold_expr(Expr::If(i)), None))
                }
                Stmt::Expr(Expr::If(i), _) => stmts.push(self.rewrite_if_stmt(i)),
                Stmt::Expr(Expr::ForLoop(f), _) => stmts.extend(self.rewrite_for(f)),
                Stmt::Item(item) => {
                    stmts.push(self.fail_at(item.span(), "items (nested fn, struct, use ...) are not supported in kernels"))
                }
                Stmt::Macro(m) => stmts.push(
                    self.fail_at(m.span(), "macros are not supported in kernels (their code cannot be compiled for the device)"),
                ),
                Stmt::Local(mut local) => {
                    let mut names = Vec::new();
                    pattern_names(&local.pat, &mut names);
                    // `let mut t = 0.0;` is a kernel value (later assigned
                    // kernel values); a `let` without `mut` stays a Rust number.
                    if let (Pat::Ident(p), Some(init)) = (&local.pat, &mut local.init)
                        && p.mutability.is_some()
                        && is_number_literal(&init.expr)
                    {
                        let (lit, value) = (Self::rt("literal"), &init.expr);
                        *init.expr = parse_quote!(#lit(#value));
                    }
                    stmts.push(syn::fold::fold_stmt(self, Stmt::Local(local)));
                    self.locals.extend(names);
                }
                other => stmts.push(syn::fold::fold_stmt(self, other)),
            }
        }
        self.locals.truncate(scope);
        Block { brace_token: b.brace_token, stmts }
    }

    fn fold_expr(&mut self, e: Expr) -> Expr {
        let span = e.span();
        match e {
            Expr::Index(ix) => {
                let base = self.fold_expr(*ix.expr);
                let idx = self.indices(&ix.index);
                let load = Self::rt("load");
                Self::located_expr(span, vec![idx], |o| {
                    let i = &o[0];
                    quote!(#load(&#base, #i))
                })
            }
            Expr::Assign(a) => match *a.left {
                // `x[idx] = v`: a field element, or a component of a local
                // vector or matrix (`Place`, by method call for its autoref).
                Expr::Index(ix) => {
                    let base = self.fold_expr(*ix.expr);
                    let idx = self.indices(&ix.index);
                    let value = self.fold_expr(*a.right);
                    let place = Self::rt("Place");
                    Self::located_expr(span, vec![idx, value], |o| {
                        let (i, v) = (&o[0], &o[1]);
                        quote!({ use #place as _; (#base).store_at(#i, #v) })
                    })
                }
                // `x = 1`: the literal takes the type of `x`.
                left if is_number_literal(&a.right) => {
                    let (like, value) = (Self::rt("literal_like"), &a.right);
                    parse_quote!(#left = #like(&#left, (#value) as f64))
                }
                left => {
                    let value = self.fold_expr(*a.right);
                    parse_quote!(#left = #value)
                }
            },
            Expr::Binary(b) => {
                let op = b.op;
                if is_compound_assign(&op) {
                    return match (*b.left, op) {
                        (Expr::Index(ix), BinOp::AddAssign(_)) => self.field_update(span, "atomic_add", ix, *b.right),
                        (Expr::Index(ix), BinOp::SubAssign(_)) => self.field_update(span, "atomic_sub", ix, *b.right),
                        (Expr::Index(_), _) => self.fail(span, "only += and -= update field elements (atomically)"),
                        (left, op) => {
                            let bin: Tokens = match op {
                                BinOp::AddAssign(_) => quote!(+),
                                BinOp::SubAssign(_) => quote!(-),
                                BinOp::MulAssign(_) => quote!(*),
                                _ => quote!(/),
                            };
                            let value = self.fold_expr(*b.right);
                            let updated = Self::located_expr(span, vec![value], |o| {
                                let v = &o[0];
                                quote!(#left.clone() #bin #v)
                            });
                            parse_quote!(#left = #updated)
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
                    _ => return Self::located_expr(span, vec![l, r], |o| {
                        let (l, r) = (&o[0], &o[1]);
                        quote!(#l #op #r)
                    }),
                };
                let f = Self::rt(f);
                Self::located_expr(span, vec![l, r], |o| {
                    let (l, r) = (&o[0], &o[1]);
                    quote!(#f(#l, #r))
                })
            }
            Expr::Unary(u) => {
                let op = u.op;
                let inner = self.fold_expr(*u.expr);
                let not = Self::rt("not");
                Self::located_expr(span, vec![inner], |o| {
                    let v = &o[0];
                    match op {
                        UnOp::Not(_) => quote!(#not(#v)),
                        op => quote!(#op #v),
                    }
                })
            }
            Expr::Cast(c) => {
                let generic = matches!(&*c.ty, Type::Path(p) if p.path.get_ident().is_some_and(|i| self.generics.contains(i)));
                if generic && is_number_literal(&c.expr) {
                    // `0.5 as T` for a generic scalar T: a constant of T's type.
                    let (lit, to, value) = (Self::rt("literal_of"), &c.ty, &c.expr);
                    return parse_quote!(#lit::<#to>(#value as f64));
                }
                let inner = self.fold_expr(*c.expr);
                match scalar_ty(&c.ty).or(generic.then(Tokens::new)) {
                    // `v as T`: a kernel value's conversion, or a Rust
                    // number's (a build-time value stays one); to a type
                    // parameter of the kernel (a generic scalar), a Rust
                    // number becomes a constant of its type.
                    Some(_) => {
                        let (cast, to) = (Self::rt(if generic { "cast_to_param" } else { "cast" }), &c.ty);
                        Self::located_expr(span, vec![inner], |o| {
                            let v = &o[0];
                            quote!(#cast::<#to, _>(#v))
                        })
                    }
                    None => self.fail(c.ty.span(), "kernels cast only to i32, i64, f32, f64, usize, bool or a type parameter of the kernel"),
                }
            }
            Expr::MethodCall(m) => {
                let mut operands = vec![self.fold_expr(*m.receiver)];
                operands.extend(m.args.into_iter().map(|a| self.fold_expr(a)));
                let (method, turbofish) = (m.method, m.turbofish);
                Self::located_expr(span, operands, |o| {
                    let (receiver, args) = (&o[0], &o[1..]);
                    quote!(#receiver.#method #turbofish (#(#args),*))
                })
            }
            Expr::Call(c) => {
                let func = self.fold_expr(*c.func);
                let args: Vec<Expr> = c.args.into_iter().map(|a| self.fold_expr(a)).collect();
                Self::located_expr(span, args, |o| quote!(#func(#(#o),*)))
            }
            // Array lengths are Rust constants, never kernel code.
            Expr::Repeat(mut r) => {
                r.expr = Box::new(self.fold_expr(*r.expr));
                Expr::Repeat(r)
            }
            Expr::If(i) => {
                let Some((_, otherwise)) = i.else_branch else {
                    return self.fail(span, "an `if` used as a value needs an `else`");
                };
                let cond = self.fold_expr(*i.cond);
                // A branch whose value is a number literal (`else { 0.0 }`)
                // takes the other branch's type: that branch is built first.
                let mut then_block = i.then_branch;
                let then_literal = literal_tail(&mut then_block);
                let mut otherwise = *otherwise;
                let otherwise_literal = match &mut otherwise {
                    Expr::Block(b) => literal_tail(&mut b.block),
                    other if is_number_literal(other) => {
                        let arm = Self::rt("literal_arm");
                        *other = parse_quote!(#arm(#other));
                        true
                    }
                    _ => false,
                };
                let then = self.body_with(then_block, self.depth.max(1));
                let otherwise = self.fold_expr(otherwise);
                let bv = Self::rt(if then_literal && !otherwise_literal { "branch_value_else_first" } else { "branch_value" });
                parse_quote!(#bv(#cond, || #then, || #otherwise))
            }
            Expr::ForLoop(f) => {
                let stmts = self.rewrite_for(f);
                parse_quote!({ #(#stmts)* })
            }
            Expr::While(_) => self.fail(span, "`while` is not supported in kernels: use `for i in a..b` with a bound"),
            Expr::Loop(_) => self.fail(span, "`loop` is not supported in kernels: use `for i in a..b` with a bound"),
            Expr::Match(_) => self.fail(span, "`match` is not supported in kernels: use if / else"),
            // A closure is a helper inlined where it is called, like a
            // #[func]: its body is kernel code, its loops serial.
            Expr::Closure(mut c) => {
                let body = match *c.body {
                    Expr::Block(b) => Expr::Block(syn::ExprBlock { block: self.body_with(b.block, self.depth.max(1)), ..b }),
                    other => self.fold_expr(other),
                };
                c.body = Box::new(body);
                Expr::Closure(c)
            }
            Expr::Return(_) => self.fail(span, "`return` is not supported in kernels"),
            // Exits inside loops were lowered (see `exits`) before this.
            Expr::Break(_) | Expr::Continue(_) => self.fail(span, "`break` and `continue` belong in a loop"),
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
