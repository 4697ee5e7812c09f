//! Every file of the Plano config corpus (`tests/configs/plano/`) gives the `check`
//! result its header states (see the corpus README): exactly those errors or warnings,
//! each at its path and line.

use std::path::{Path, PathBuf};

use switchback_core::config::{load_str, Diagnostic};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/configs/plano")
}

/// Test values for the variables corpus files use: keys, and the mock ports.
pub fn env(name: &str) -> Option<String> {
    match name {
        "PRIMARY" => Some("18001".into()),
        "SECONDARY" => Some("18002".into()),
        "TERTIARY" => Some("18003".into()),
        n if n.ends_with("_API_KEY") || n.starts_with("AWS_") || n.ends_with("_KEY") => {
            Some(format!("test-secret-{n}"))
        }
        _ => None,
    }
}

/// One `# warning:` or `# error:` header line.
#[derive(Debug)]
struct Expected {
    error: bool,
    path: String,
    line: usize,
    text: String,
}

fn header(text: &str) -> (bool, Vec<Expected>) {
    let mut ok = None;
    let mut expected = Vec::new();
    for l in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(v) = l.strip_prefix("# check: ") {
            ok = Some(v.trim() == "ok");
        }
        for (kind, error) in [("# warning: ", false), ("# error: ", true)] {
            if let Some(rest) = l.strip_prefix(kind) {
                let (path, rest) = rest.split_once(" (line ").expect("PATH (line N): TEXT");
                let (line, text) = rest.split_once("): ").expect("PATH (line N): TEXT");
                expected.push(Expected {
                    error,
                    path: path.to_string(),
                    line: line.parse().expect("a line number"),
                    text: text.to_string(),
                });
            }
        }
    }
    (ok.expect("a `# check:` line"), expected)
}

fn matches(e: &Expected, d: &Diagnostic) -> bool {
    d.path == e.path && d.line == Some(e.line) && d.message.contains(&e.text)
}

#[test]
fn every_corpus_file_gives_its_expected_check_result() {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("tests/configs/plano")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "only {} corpus files", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let (want_ok, expected) = header(&text);
        let (got_ok, errors, warnings) = match load_str(&text, &env) {
            Ok(l) => (true, Vec::new(), l.warnings),
            Err(e) => (false, e.errors, Vec::new()),
        };
        let found: Vec<(bool, &Diagnostic)> = errors
            .iter()
            .map(|d| (true, d))
            .chain(warnings.iter().map(|d| (false, d)))
            .collect();
        let mut problems = Vec::new();
        if got_ok != want_ok {
            problems.push(format!("check gave ok={got_ok}, expected ok={want_ok}"));
        }
        for e in &expected {
            if !found
                .iter()
                .any(|(err, d)| *err == e.error && matches(e, d))
            {
                problems.push(format!("missing {e:?}"));
            }
        }
        for (err, d) in &found {
            if !expected.iter().any(|e| e.error == *err && matches(e, d)) {
                let kind = if *err { "error" } else { "warning" };
                problems.push(format!("unexpected # {kind}: {d}"));
            }
            assert!(
                !d.message.contains("test-secret"),
                "{name}: a secret in a message: {d}"
            );
        }
        if !problems.is_empty() {
            failures.push(format!("{name}:\n  {}", problems.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
