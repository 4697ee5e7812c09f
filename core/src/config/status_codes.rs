//! `codes:` items of `on_status_codes` entries and the check for codes listed twice.

use super::raw::{Scalar, S};
use super::report::{join, Pos, Report};
use super::{StatusRange, StatusRule};

/// One `codes:` item: an int 100-599, `"429"`, or `"start-end"`.
pub(crate) fn status_range(c: &S<Scalar>) -> Result<StatusRange, String> {
    let check = |n: i128| -> Result<u16, String> {
        u16::try_from(n)
            .ok()
            .filter(|n| (100..=599).contains(n))
            .ok_or_else(|| {
                format!("status code {n} is outside 100-599; HTTP status codes are 100 to 599")
            })
    };
    match &c.value {
        Scalar::Int(n) => {
            let n = check(*n)?;
            Ok(StatusRange { start: n, end: n })
        }
        Scalar::Str(s) => {
            let s = s.trim();
            let parse = |part: &str| -> Result<u16, String> {
                let n: i128 = part.trim().parse().map_err(|_| {
                    format!("`{s}` is not a status code or range; write a code like 429 or a range like \"502-504\"")
                })?;
                check(n)
            };
            match s.split_once('-') {
                Some((a, b)) => {
                    let (start, end) = (parse(a)?, parse(b)?);
                    if start > end {
                        return Err(format!(
                            "the range \"{s}\" is inverted; write the smaller code first: \"{end}-{start}\""
                        ));
                    }
                    Ok(StatusRange { start, end })
                }
                None => {
                    let n = parse(s)?;
                    Ok(StatusRange { start: n, end: n })
                }
            }
        }
        other => Err(format!(
            "a status code must be a number like 429 or a range like \"502-504\", not {}",
            other.kind()
        )),
    }
}

/// Warns about a status code that an earlier entry already covers (the first entry wins).
pub(crate) fn warn_duplicate_codes(rep: &mut Report, rules: &[(StatusRule, String, Pos)]) {
    for (i, (rule, path, pos)) in rules.iter().enumerate() {
        for range in &rule.codes {
            let earlier = rules[..i].iter().find(|(prev, _, _)| {
                let same_filter = prev.error_codes.is_empty() == rule.error_codes.is_empty()
                    && (rule.error_codes.is_empty()
                        || prev
                            .error_codes
                            .iter()
                            .any(|c| rule.error_codes.contains(c)));
                same_filter
                    && prev
                        .codes
                        .iter()
                        .any(|p| p.start <= range.end && range.start <= p.end)
            });
            if let Some((_, prev_path, _)) = earlier {
                rep.warn(
                    join(path, "codes"),
                    *pos,
                    format!(
                        "status {} is already listed in {prev_path}; the first entry wins, so this one never applies to it",
                        if range.start == range.end {
                            range.start.to_string()
                        } else {
                            format!("{}-{}", range.start, range.end)
                        }
                    ),
                );
            }
        }
    }
}
