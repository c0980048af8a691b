//! Textual pass pipelines that mix DiffSim passes with upstream MLIR passes.
//!
//! MLIR's C API cannot register external passes by name, so a pipeline string
//! such as `builtin.module(ds-verify, canonicalize, func.func(cse))` is split
//! here: DiffSim pass names (and named pipelines such as `ds-to-llvm-cpu`)
//! become [`Step::Ds`] / expansions, and every other element is handed to MLIR's
//! own pipeline parser unchanged, so any upstream pass works with its options.

use ds_dialects::diag::{self, Diagnostic};
use ds_passes::{PassInfo, PassOptions};
use melior::{Context, ir::Module, pass::PassManager};

/// A named pipeline: a flag that expands to a list of pipeline elements.
pub struct NamedPipeline {
    pub name: &'static str,
    pub summary: &'static str,
    /// Comma-separated elements, in the same syntax as `--pass-pipeline`;
    /// `$name` stands for the value of option `name`.
    pub elements: &'static str,
    /// Options (`name{key=value}`) with their defaults and checks.
    pub options: &'static [PipelineOption],
}

/// An option of a named pipeline.
pub struct PipelineOption {
    pub name: &'static str,
    pub default: &'static str,
    /// Rejects a value the pipeline's passes cannot take (they are
    /// substituted into pipeline text, and upstream passes do not check them).
    pub check: fn(&str) -> Result<(), String>,
}

impl NamedPipeline {
    /// The elements with the options substituted.
    pub fn expand(&self, given: &PassOptions) -> Result<String, String> {
        let known: Vec<&str> = self.options.iter().map(|o| o.name).collect();
        given.check_known(self.name, &known)?;
        let mut text = self.elements.to_string();
        for option in self.options {
            let value = given.0.get(option.name).map_or(option.default, |v| v.as_str());
            (option.check)(value).map_err(|e| format!("{}: option {}={value:?}: {e}", self.name, option.name))?;
            text = text.replace(&format!("${}", option.name), value);
        }
        Ok(text)
    }
}

/// One step of a pipeline.
#[derive(Clone)]
pub enum Step {
    /// A DiffSim pass with its options.
    Ds(&'static PassInfo, PassOptions),
    /// An upstream pipeline element, as text (`canonicalize`, `func.func(cse)`).
    Upstream(String),
}

impl Step {
    /// The step's name as printed by `--print-ir-after-all`.
    pub fn label(&self) -> String {
        match self {
            Step::Ds(info, _) => info.name.to_string(),
            Step::Upstream(text) => text.clone(),
        }
    }
}

/// Every DiffSim pass: those of `ds-passes` and those of this crate.
pub fn all_passes() -> impl Iterator<Item = &'static PassInfo> {
    ds_passes::REGISTRY.iter().chain(crate::REGISTRY.iter()).copied()
}

fn find_pass(name: &str) -> Option<&'static PassInfo> {
    all_passes().find(|p| p.name == name)
}

fn find_pipeline(name: &str) -> Option<&'static NamedPipeline> {
    crate::PIPELINES.iter().copied().find(|p| p.name == name)
}

/// Splits `a, b{x=1}, func.func(c, d)` at top-level commas.
fn split_elements(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for ch in text.chars() {
        match ch {
            '(' | '{' => depth += 1,
            ')' | '}' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return Err(format!("unbalanced `{ch}` in pass pipeline `{text}`"));
        }
        if ch == ',' && depth == 0 {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(ch);
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced brackets in pass pipeline `{text}`"));
    }
    out.push(cur);
    Ok(out.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
}

/// Parses a pipeline: either `builtin.module(elements)` or bare elements.
pub fn parse(text: &str) -> Result<Vec<Step>, String> {
    let text = text.trim();
    let inner = match text.strip_prefix("builtin.module(") {
        Some(rest) => rest.strip_suffix(')').ok_or_else(|| format!("missing `)` in pass pipeline `{text}`"))?,
        None => text,
    };
    let mut steps = Vec::new();
    for element in split_elements(inner)? {
        steps.extend(parse_element(&element)?);
    }
    Ok(steps)
}

/// One element: a DiffSim pass (`name` or `name{opts}`), a named pipeline, or
/// anything else for MLIR.
pub fn parse_element(element: &str) -> Result<Vec<Step>, String> {
    // `name{options}`; an element with a nested pipeline (`op(...)`) is upstream.
    let options_start = element.find(['{', '(']).filter(|&i| element[i..].starts_with('{'));
    let (name, options) = match options_start.map(|i| (&element[..i], &element[i + 1..])) {
        Some((n, rest)) => {
            let opts = rest.strip_suffix('}').ok_or_else(|| format!("missing `}}` in `{element}`"))?;
            (n.trim(), opts)
        }
        None => (element.trim(), ""),
    };
    if let Some(info) = find_pass(name) {
        return Ok(vec![Step::Ds(info, PassOptions::parse(options)?)]);
    }
    if let Some(p) = find_pipeline(name) {
        return parse(&p.expand(&PassOptions::parse(options)?)?);
    }
    Ok(vec![Step::Upstream(element.to_string())])
}

/// Adds steps to a pass manager, in order.
fn add_steps(pm: &PassManager, steps: &[Step]) -> Result<(), String> {
    let opm = pm.as_operation_pass_manager();
    for step in steps {
        match step {
            Step::Ds(info, options) => opm.add_pass(info.to_mlir(options.clone())?),
            Step::Upstream(text) => ds_dialects::ir::add_textual_pipeline(&opm, text)?,
        }
    }
    Ok(())
}

/// Why a pipeline did not run to the end.
#[derive(Debug)]
pub enum PipelineError {
    /// The pipeline text is malformed or names an unknown pass.
    Invalid(String),
    /// A pass failed; its diagnostics say why.
    Failed(Vec<Diagnostic>),
}

/// Called after a step with its label and the module (`--print-ir-after-all`).
pub type AfterEach<'a> = &'a mut dyn FnMut(&str, &Module);

/// Runs `steps` on `module`. With `after_each`, runs them one at a time and
/// calls `after_each(step label, module)` after each.
pub fn run(
    context: &Context,
    module: &mut Module,
    steps: &[Step],
    mut after_each: Option<AfterEach>,
) -> Result<Vec<Diagnostic>, PipelineError> {
    let groups: Vec<&[Step]> = match after_each {
        Some(_) => steps.chunks(1).collect(),
        None => vec![steps],
    };
    let mut all = Vec::new();
    for group in groups {
        let pm = PassManager::new(context);
        add_steps(&pm, group).map_err(PipelineError::Invalid)?;
        let (result, diags) = diag::capture(context, || pm.run(module));
        all.extend(diags);
        if result.is_err() {
            return Err(PipelineError::Failed(all));
        }
        if let (Some(f), Some(step)) = (after_each.as_mut(), group.first()) {
            f(&step.label(), module);
        }
    }
    Ok(all)
}

/// The names in `names` that MLIR knows as passes.
pub fn registered_upstream<'a>(names: &[&'a str]) -> Vec<&'a str> {
    let context = ds_dialects::context();
    names
        .iter()
        .copied()
        .filter(|name| {
            let pm = PassManager::new(&context);
            ds_dialects::ir::add_textual_pipeline(&pm.as_operation_pass_manager(), name).is_ok()
        })
        .collect()
}
