//! What can go wrong running an example: the program's own errors, and the
//! command line's (a setting, a parameter file, a picture, an output folder).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Program(#[from] ds_runtime::Error),
    #[error("no setting `{name}` (settings: {known})")]
    UnknownSetting { name: String, known: String },
    #[error("setting `{name}`: `{value}` is not {expected}")]
    BadSetting { name: String, value: String, expected: &'static str },
    #[error("`--set {0}`: expected KEY=VALUE")]
    SettingSyntax(String),
    #[error("{path}: array `{array}`: {problem}")]
    Params { path: PathBuf, array: String, problem: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: cannot read the picture: {message}")]
    Image { path: PathBuf, message: String },
    #[error("{path}: drawing failed: {message}")]
    Plot { path: PathBuf, message: String },
}

impl RunError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
        move |source| RunError::Io { path: path.to_path_buf(), source }
    }
}
