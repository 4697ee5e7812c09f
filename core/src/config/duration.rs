//! Duration strings: `"500ms"`, `"30s"`, `"5m"`, `"1h"`, and sums such as `"1m30s"`.

use std::time::Duration;

/// Parses a duration string. A unit is required on every number: `ms`, `s`, `m` or `h`.
/// Returns a sentence saying what is wrong otherwise.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("is empty; write a duration such as \"30s\" or \"500ms\"".to_string());
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "`{s}` is not a duration; write a whole number with a unit, such as \"30s\", \"500ms\", \"5m\" or \"1h\""
            ));
        }
        let number: u128 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{s}` is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let millis_per_unit: u128 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "" => {
                return Err(format!(
                    "`{s}` has no unit; add one, e.g. \"{number}s\" or \"{number}ms\""
                ))
            }
            other => {
                return Err(format!(
                    "`{s}` has the unknown unit `{other}`; use ms, s, m or h"
                ))
            }
        };
        total = number
            .checked_mul(millis_per_unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("`{s}` is too large"))?;
        rest = &rest[unit_len..];
    }
    let millis = u64::try_from(total).map_err(|_| format!("`{s}` is too large"))?;
    Ok(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "30",
            "s",
            "1.5s",
            "5 s",
            "10d",
            "-1s",
            "99999999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should fail");
        }
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
    }
}
