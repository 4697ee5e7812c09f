//! `$VAR` / `${VAR}` expansion and `.env` files.
//!
//! Expansion rules (applied to `access_key`, `base_url`, `headers` and `state.redis.url`
//! values only):
//! - `$NAME` and `${NAME}` are replaced by the variable's value; `NAME` is letters, digits
//!   and `_`, not starting with a digit.
//! - `$$` is a literal `$`.
//! - A `$` followed by anything else (a space, `-`, the end of the string) is kept as is.
//! - A referenced variable that is unset is an error; one set to an empty string is set.

use std::collections::HashMap;

/// Why a string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExpandError {
    /// The variable is not set.
    Unset(String),
    /// `${` with no closing `}` or with an invalid name inside.
    Malformed(String),
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands `$VAR`, `${VAR}` and `$$` in `input`, looking variables up with `env`.
pub(crate) fn expand(
    input: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(input.len());
    let mut chars = input.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek().map(|&(_, c)| c) {
            Some('$') => {
                chars.next();
                out.push('$');
            }
            Some('{') => {
                chars.next();
                let mut name = String::new();
                let mut closed = false;
                for (_, c) in chars.by_ref() {
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    name.push(c);
                }
                let valid = name.chars().next().is_some_and(is_name_start)
                    && name.chars().all(is_name_char);
                if !closed || !valid {
                    return Err(ExpandError::Malformed(name));
                }
                out.push_str(&env(&name).ok_or(ExpandError::Unset(name))?);
            }
            Some(c) if is_name_start(c) => {
                let mut name = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if !is_name_char(c) {
                        break;
                    }
                    name.push(c);
                    chars.next();
                }
                out.push_str(&env(&name).ok_or(ExpandError::Unset(name))?);
            }
            _ => out.push('$'),
        }
    }
    Ok(out)
}

/// A `.env` line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DotenvError {
    /// 1-based line.
    pub line: usize,
    pub message: String,
}

/// Parses a `.env` file: `KEY=value` and `export KEY=value` lines, blank lines and `#`
/// comments. Values may be bare (a ` #` starts a comment, surrounding spaces are trimmed),
/// 'single-quoted' (taken literally) or "double-quoted" (`\n`, `\t`, `\"`, `\\` and `\$`
/// escapes). Values are not expanded. A later line wins over an earlier one.
pub(crate) fn parse_dotenv(text: &str) -> Result<HashMap<String, String>, Vec<DotenvError>> {
    let mut vars = HashMap::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let Some((key, rest)) = line.split_once('=') else {
            errors.push(DotenvError {
                line: line_no,
                message: "expected `KEY=value`".to_string(),
            });
            continue;
        };
        let key = key.trim();
        if !(key.chars().next().is_some_and(is_name_start) && key.chars().all(is_name_char)) {
            errors.push(DotenvError {
                line: line_no,
                message: format!(
                    "`{key}` is not a valid variable name (letters, digits and _, not starting with a digit)"
                ),
            });
            continue;
        }
        match parse_value(rest.trim_start()) {
            Ok(v) => {
                vars.insert(key.to_string(), v);
            }
            Err(message) => errors.push(DotenvError {
                line: line_no,
                message: format!("the value of `{key}` {message}"),
            }),
        }
    }
    if errors.is_empty() {
        Ok(vars)
    } else {
        Err(errors)
    }
}

fn parse_value(v: &str) -> Result<String, &'static str> {
    if let Some(rest) = v.strip_prefix('\'') {
        let end = rest.find('\'').ok_or("has no closing single quote")?;
        check_trailing(&rest[end + 1..])?;
        return Ok(rest[..end].to_string());
    }
    if let Some(rest) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    check_trailing(&rest[i + 1..])?;
                    return Ok(out);
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(c @ ('"' | '\\' | '$')) => out.push(c),
                    Some(c) => {
                        out.push('\\');
                        out.push(c);
                    }
                    None => return Err("has no closing double quote"),
                },
                c => out.push(c),
            }
        }
        return Err("has no closing double quote");
    }
    let end = v.find(" #").or_else(|| v.find("\t#")).unwrap_or(v.len());
    Ok(v[..end].trim_end().to_string())
}

fn check_trailing(rest: &str) -> Result<(), &'static str> {
    let rest = rest.trim();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(())
    } else {
        Err("has text after its closing quote")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("sk-1".into()),
            "PORT" => Some("8080".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_both_forms() {
        assert_eq!(expand("$KEY", &env).unwrap(), "sk-1");
        assert_eq!(expand("${KEY}", &env).unwrap(), "sk-1");
        assert_eq!(
            expand("http://h:${PORT}/v1", &env).unwrap(),
            "http://h:8080/v1"
        );
        assert_eq!(expand("Bearer $KEY!", &env).unwrap(), "Bearer sk-1!");
        assert_eq!(expand("x${EMPTY}y", &env).unwrap(), "xy");
    }

    #[test]
    fn dollar_escapes_and_literals() {
        assert_eq!(expand("a$$KEY", &env).unwrap(), "a$KEY");
        assert_eq!(expand("cost $5 -$", &env).unwrap(), "cost $5 -$");
        assert_eq!(expand("no vars", &env).unwrap(), "no vars");
    }

    #[test]
    fn unset_and_malformed() {
        assert_eq!(
            expand("$NOPE", &env),
            Err(ExpandError::Unset("NOPE".into()))
        );
        assert_eq!(
            expand("x ${NOPE} y", &env),
            Err(ExpandError::Unset("NOPE".into()))
        );
        assert!(matches!(
            expand("${KEY", &env),
            Err(ExpandError::Malformed(_))
        ));
        assert!(matches!(
            expand("${1X}", &env),
            Err(ExpandError::Malformed(_))
        ));
        assert!(matches!(
            expand("${A:-b}", &env),
            Err(ExpandError::Malformed(_))
        ));
    }

    #[test]
    fn dotenv_forms() {
        let text = "# comment\n\nA=1\nexport B = two \nC='lit $X # not comment'\nD=\"q\\\"x\\n\" # c\nE=bare # comment\nF=\nA=3\n";
        let v = parse_dotenv(text).unwrap();
        assert_eq!(v["A"], "3");
        assert_eq!(v["B"], "two");
        assert_eq!(v["C"], "lit $X # not comment");
        assert_eq!(v["D"], "q\"x\n");
        assert_eq!(v["E"], "bare");
        assert_eq!(v["F"], "");
    }

    #[test]
    fn dotenv_errors_name_lines() {
        let errs = parse_dotenv("A=1\nnot a line\n1B=2\nC=\"open\n").unwrap_err();
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4]);
    }
}
