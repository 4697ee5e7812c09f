//! Reading one scalar field into the type it must have, reporting what is wrong otherwise.
//!
//! Each reader returns `None` after recording an error, so conversion can carry on and
//! report every bad field of a file in one go.

use super::duration::parse_duration;
use super::raw::{Scalar, S};
use super::report::{Pos, Report};
use std::time::Duration;

/// The text of a scalar (numbers and booleans as written in their usual form).
pub(crate) fn text(v: &S<Scalar>) -> String {
    match &v.value {
        Scalar::Str(s) => s.clone(),
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => f.to_string(),
        Scalar::Bool(b) => b.to_string(),
    }
}

/// The last key of a path, for messages.
pub(crate) fn field(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// A whole number in `min..=max`.
pub(crate) fn int_in(
    rep: &mut Report,
    v: &S<Scalar>,
    path: &str,
    min: u64,
    max: u64,
) -> Option<u64> {
    let name = field(path);
    let range = if max == u64::MAX {
        format!("{min} or more")
    } else {
        format!("from {min} to {max}")
    };
    match &v.value {
        Scalar::Int(i) => match u64::try_from(*i) {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ if *i == 0 && min == 1 => {
                rep.error(
                    path,
                    Pos::at(v),
                    format!("`{name}` must be a positive whole number, not 0; set it to 1 or more"),
                );
                None
            }
            _ => {
                rep.error(
                    path,
                    Pos::at(v),
                    format!("`{name}` is {i}, but it must be a whole number {range}"),
                );
                None
            }
        },
        Scalar::Str(s) if s.trim().parse::<i128>().is_ok() => {
            rep.error(
                path,
                Pos::at(v),
                format!("`{name}` must be a number, not the string \"{s}\"; remove the quotes"),
            );
            None
        }
        other => {
            rep.error(
                path,
                Pos::at(v),
                format!(
                    "`{name}` must be a whole number {range}, but it is {} (`{}`)",
                    other.kind(),
                    text(v)
                ),
            );
            None
        }
    }
}

/// A whole number `>= 0` that fits a `u32` (counts such as `max_attempts`).
pub(crate) fn count(rep: &mut Report, v: &S<Scalar>, path: &str) -> Option<u32> {
    int_in(rep, v, path, 0, u64::from(u32::MAX)).and_then(|n| u32::try_from(n).ok())
}

/// A whole number `>= 1` that fits a `u32`.
pub(crate) fn positive_count(rep: &mut Report, v: &S<Scalar>, path: &str) -> Option<u32> {
    int_in(rep, v, path, 1, u64::from(u32::MAX)).and_then(|n| u32::try_from(n).ok())
}

/// A positive number of milliseconds (`*_ms` fields).
pub(crate) fn positive_ms(rep: &mut Report, v: &S<Scalar>, path: &str) -> Option<Duration> {
    int_in(rep, v, path, 1, u64::MAX).map(Duration::from_millis)
}

/// A positive number of seconds (`*_seconds` fields).
pub(crate) fn positive_secs(rep: &mut Report, v: &S<Scalar>, path: &str) -> Option<Duration> {
    int_in(rep, v, path, 1, u64::MAX).map(Duration::from_secs)
}

/// `true` or `false`.
pub(crate) fn boolean(rep: &mut Report, v: &S<Scalar>, path: &str) -> Option<bool> {
    match &v.value {
        Scalar::Bool(b) => Some(*b),
        Scalar::Str(s) if matches!(s.as_str(), "true" | "false") => {
            rep.error(
                path,
                Pos::at(v),
                format!(
                    "`{}` must be a boolean; write {s} without quotes",
                    field(path)
                ),
            );
            None
        }
        other => {
            rep.error(
                path,
                Pos::at(v),
                format!(
                    "`{}` must be true or false, but it is {} (`{}`)",
                    field(path),
                    other.kind(),
                    text(v)
                ),
            );
            None
        }
    }
}

/// One of a fixed set of words.
pub(crate) fn choice<T: Copy>(
    rep: &mut Report,
    v: &S<Scalar>,
    path: &str,
    options: &[(&str, T)],
) -> Option<T> {
    let got = text(v);
    if let Some((_, t)) = options.iter().find(|(name, _)| *name == got) {
        return Some(*t);
    }
    let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
    rep.error(
        path,
        Pos::at(v),
        format!(
            "`{}` must be one of {}, not `{got}`",
            field(path),
            names.join(", ")
        ),
    );
    None
}

/// A duration string such as `"30s"`; zero is refused unless `allow_zero`.
pub(crate) fn duration(
    rep: &mut Report,
    v: &S<Scalar>,
    path: &str,
    allow_zero: bool,
) -> Option<Duration> {
    let name = field(path);
    match &v.value {
        Scalar::Str(s) => match parse_duration(s) {
            Ok(d) if d.is_zero() && !allow_zero => {
                rep.error(
                    path,
                    Pos::at(v),
                    format!("`{name}` must be longer than zero, e.g. \"30s\""),
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                rep.error(path, Pos::at(v), format!("`{name}`: {e}"));
                None
            }
        },
        Scalar::Int(i) => {
            rep.error(
                path,
                Pos::at(v),
                format!("`{name}` needs a unit: write \"{i}s\" for seconds or \"{i}ms\" for milliseconds"),
            );
            None
        }
        other => {
            rep.error(
                path,
                Pos::at(v),
                format!(
                    "`{name}` must be a duration such as \"30s\", but it is {}",
                    other.kind()
                ),
            );
            None
        }
    }
}

/// The strategies a rule may name.
pub(crate) const STRATEGIES: &[(&str, super::Strategy)] = &[
    ("same_model", super::Strategy::SameModel),
    ("same_provider", super::Strategy::SameProvider),
    ("different_provider", super::Strategy::DifferentProvider),
];

/// `model` or `provider` (block scope).
pub(crate) const SCOPES: &[(&str, super::BlockScope)] = &[
    ("model", super::BlockScope::Model),
    ("provider", super::BlockScope::Provider),
];

/// `global` or `request` (where a block lives).
pub(crate) const BLOCK_APPLY_TO: &[(&str, super::BlockApplyTo)] = &[
    ("global", super::BlockApplyTo::Global),
    ("request", super::BlockApplyTo::Request),
];
