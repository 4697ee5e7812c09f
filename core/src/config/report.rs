//! Collecting errors and warnings while a config is converted.

use super::Diagnostic;
use serde_saphyr::{Location, Spanned};

/// Where a finding points: a YAML path and, when known, a 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl Pos {
    /// The position of a parsed node (unknown when the parser could not tell).
    pub(crate) fn of(loc: &Location) -> Pos {
        if loc.line() == 0 {
            return Pos::default();
        }
        Pos {
            line: usize::try_from(loc.line()).ok(),
            column: usize::try_from(loc.column()).ok(),
        }
    }

    /// The position of a spanned value.
    pub(crate) fn at<T>(s: &Spanned<T>) -> Pos {
        Pos::of(&s.referenced)
    }
}

/// Every error and warning found so far.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl Report {
    pub(crate) fn error(&mut self, path: impl Into<String>, pos: Pos, message: impl Into<String>) {
        self.errors.push(diag(path.into(), pos, message.into()));
    }

    pub(crate) fn warn(&mut self, path: impl Into<String>, pos: Pos, message: impl Into<String>) {
        self.warnings.push(diag(path.into(), pos, message.into()));
    }
}

fn diag(path: String, pos: Pos, message: String) -> Diagnostic {
    Diagnostic {
        path,
        line: pos.line,
        column: pos.column,
        message,
    }
}

/// `parent.key`, or `key` at the top level.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[index]`.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}
