//! Turning a parser error into a diagnostic with a YAML path.
//!
//! serde-saphyr reports where an error happened (line and column) but not the path of
//! keys leading there. This module parses the document a second time into a plain tree
//! of positions and finds the node the error points at.

use super::report::{index, join, Pos};
use super::Diagnostic;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::fmt;

/// A YAML node with only its shape kept.
#[derive(Debug)]
enum Node {
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Leaf,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_i128<E>(self, _: i128) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_u128<E>(self, _: u128) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_str<E>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_bytes<E>(self, _: &[u8]) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Node::Seq(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some(k) = a.next_key()? {
                    v.push((k, a.next_value()?));
                }
                Ok(Node::Map(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A node's start and its path, in document order.
struct Mark {
    line: u64,
    column: u64,
    path: String,
}

fn walk(node: &Spanned<Node>, path: &str, out: &mut Vec<Mark>) {
    out.push(Mark {
        line: node.referenced.line(),
        column: node.referenced.column(),
        path: path.to_string(),
    });
    match &node.value {
        Node::Map(entries) => {
            for (k, v) in entries {
                let p = join(path, &k.value);
                out.push(Mark {
                    line: k.referenced.line(),
                    column: k.referenced.column(),
                    path: p.clone(),
                });
                walk(v, &p, out);
            }
        }
        Node::Seq(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, &index(path, i), out);
            }
        }
        Node::Leaf => {}
    }
}

/// Converts a serde-saphyr error into a diagnostic naming the path and line, with a hint.
pub(crate) fn diagnose(yaml: &str, err: &serde_saphyr::Error) -> Diagnostic {
    let pos = err.location().map(|l| Pos::of(&l)).unwrap_or_default();
    let text = err.without_snippet().to_string();
    let text = match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let duplicate = text
        .strip_prefix("duplicate mapping key: ")
        .and_then(|rest| rest.split(',').next())
        .map(str::to_owned);
    // A duplicate key stops the ordinary parse too: read the tree keeping the first of
    // each key, and name the duplicate by the first occurrence's path.
    let tree = if duplicate.is_some() {
        let mut options = serde_saphyr::Options::default();
        options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::FirstWins;
        serde_saphyr::from_str_with_options::<Spanned<Node>>(yaml, options)
    } else {
        serde_saphyr::from_str::<Spanned<Node>>(yaml)
    };
    let path = match (err.location(), tree) {
        (Some(loc), Ok(tree)) if duplicate.is_some() => {
            let key = duplicate.as_deref().unwrap_or_default();
            let mut marks = Vec::new();
            walk(&tree, "", &mut marks);
            marks
                .iter()
                .filter(|m| {
                    m.column == loc.column()
                        && m.line < loc.line()
                        && (m.path == key || m.path.ends_with(&format!(".{key}")))
                })
                .max_by_key(|m| m.line)
                .map(|m| m.path.clone())
                .unwrap_or_default()
        }
        (Some(loc), Ok(tree)) => {
            let mut marks = Vec::new();
            walk(&tree, "", &mut marks);
            let at = (loc.line(), loc.column());
            let mut best: Option<&Mark> = None;
            for m in &marks {
                if (m.line, m.column) <= at && m.line > 0 {
                    // "missing field" points at the mapping itself: keep the outermost node
                    // that starts there rather than its first key.
                    let same_start = best.is_some_and(|b| (b.line, b.column) == (m.line, m.column));
                    if !(same_start && text.starts_with("missing field")) {
                        best = Some(m);
                    }
                }
            }
            best.map(|m| m.path.clone()).unwrap_or_default()
        }
        _ => String::new(),
    };
    let path = if path.is_empty() {
        "(document)".to_string()
    } else {
        path
    };
    let message = explain(&path, &text);
    Diagnostic {
        path,
        line: pos.line,
        column: pos.column,
        message,
    }
}

/// Adds what to do to the parser's own words.
fn explain(path: &str, text: &str) -> String {
    let field = path.rsplit('.').next().unwrap_or(path);
    if text.starts_with("unknown field") {
        let text = text.replace("expected one of", "the keys allowed here are");
        return format!("{text}; remove or rename this key (see docs/configuration.md)");
    }
    if text.starts_with("duplicate mapping key") {
        let key = text
            .trim_start_matches("duplicate mapping key: ")
            .split(',')
            .next()
            .unwrap_or("");
        return format!("the key `{key}` appears twice in this mapping; keep only one");
    }
    if text.contains("a single value") {
        return format!("`{field}` must be a single value, not a list or a mapping: {text}");
    }
    if text.contains("expected mapping") {
        return format!(
            "`{field}` must be a mapping of `key: value` pairs here, not a list or a single value"
        );
    }
    if text.contains("expected sequence") {
        return format!("`{field}` must be a list here, e.g. `[a, b]` or `- a` lines");
    }
    if text.starts_with("invalid type") {
        return format!(
            "`{field}` has the wrong shape: {text}; see docs/configuration.md for its form"
        );
    }
    if path == "(document)" {
        return format!("the file is not valid YAML: {text}; fix the syntax at this line");
    }
    format!("{text}; check the value of `{field}` (see docs/configuration.md)")
}
