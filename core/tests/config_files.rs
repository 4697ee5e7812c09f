//! Loads the seed templates and the repository's examples.

use std::path::{Path, PathBuf};
use std::time::Duration;
use switchback_core::config::{
    load_file, load_str, BackoffApplyTo, BlockApplyTo, BlockScope, LatencyMeasure, Loaded, Strategy,
};

fn fake_env(name: &str) -> Option<String> {
    name.ends_with("_API_KEY").then(|| format!("test-{name}"))
}

/// Replaces every `${MOCK_..._PORT}` with a port number.
fn fill_ports(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    let mut port = 18000;
    while let Some(i) = rest.find("${MOCK_") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').map(|e| i + e + 1).unwrap_or(rest.len());
        out.push_str(&port.to_string());
        port += 1;
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[path = "common/seed_dir.rs"]
mod seed_dir;

/// The seed configs (see `common/seed_dir.rs`); `None` (said on stderr) when absent
/// outside CI.
fn seed_dir() -> Option<PathBuf> {
    seed_dir::seed_configs(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}

fn load_seed(name: &str) -> Option<Loaded> {
    let path = seed_dir()?.join(name);
    let text = std::fs::read_to_string(&path).ok()?;
    let loaded = load_str(&fill_ports(&text), &|_| None)
        .unwrap_or_else(|e| panic!("{name} failed to load:\n{e}"));
    Some(loaded)
}

#[test]
fn every_seed_template_loads_without_warnings() {
    let Some(dir) = seed_dir() else {
        return;
    };
    let entries = std::fs::read_dir(&dir).expect("the seed configs directory reads");
    let mut count = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.ends_with(".yaml") {
            continue;
        }
        let loaded = load_seed(&name).expect("readable");
        // IT-11 writes on_high_latency.max_attempts, which is accepted with a warning.
        let unexpected: Vec<_> = loaded
            .warnings
            .iter()
            .filter(|w| !w.path.ends_with("on_high_latency.max_attempts"))
            .collect();
        assert!(unexpected.is_empty(), "{name}: {unexpected:?}");
        let first = &loaded.config.providers[0];
        assert_eq!(first.model, "openai/gpt-4o", "{name}");
        assert!(first.default, "{name}");
        assert!(first
            .base_url
            .as_deref()
            .unwrap_or("")
            .starts_with("http://127.0.0.1:18"));
        count += 1;
    }
    assert!(count >= 13, "only {count} templates found");
}

#[test]
fn seed_key_values() {
    let Some(it4) = load_seed("retry_it4_no_retry_policy.yaml") else {
        println!("skipped: seed configs missing");
        return;
    };
    assert!(it4.config.providers[0].retry_policy.is_none());
    assert_eq!(
        it4.config.providers[1].interface,
        switchback_core::config::Interface::OpenAi
    );

    let it5 = load_seed("retry_it5_max_attempts.yaml").unwrap();
    let p = it5.config.providers[0].retry_policy.as_ref().unwrap();
    assert_eq!(p.default_rule.max_attempts, 1);
    assert_eq!(p.on_status_codes[0].rule.max_attempts, 1);
    assert_eq!(it5.config.providers.len(), 3);

    let it6 = load_seed("retry_it6_backoff_delay.yaml").unwrap();
    let p = it6.config.providers[0].retry_policy.as_ref().unwrap();
    let b = p.backoff.unwrap();
    assert_eq!(b.base, Duration::from_millis(500));
    assert_eq!(b.max, Duration::from_millis(5000));
    assert!(!b.jitter);
    assert_eq!(b.apply_to, BackoffApplyTo::SameModel);
    assert_eq!(p.default_rule.strategy, Strategy::SameModel);
    assert_eq!(p.default_rule.max_attempts, 3);

    let it7 = load_seed("retry_it7_fallback_priority.yaml").unwrap();
    let p = it7.config.providers[0].retry_policy.as_ref().unwrap();
    assert_eq!(
        p.fallback_models,
        vec!["anthropic/claude-3-5-sonnet", "mistral/mistral-large"]
    );

    let it8 = load_seed("retry_it8_retry_after_honored.yaml").unwrap();
    let p = it8.config.providers[0].retry_policy.as_ref().unwrap();
    assert_eq!(p.retry_after_handling.apply_to, BlockApplyTo::Request);
    assert_eq!(p.retry_after_handling.scope, BlockScope::Model);
    assert_eq!(
        p.retry_after_handling.max_retry_after,
        Duration::from_secs(300)
    );

    let it10 = load_seed("retry_it10_timeout_triggers_retry.yaml").unwrap();
    let p = it10.config.providers[0].retry_policy.as_ref().unwrap();
    let t = p.on_timeout.as_ref().unwrap();
    assert_eq!(
        (t.strategy, t.max_attempts),
        (Strategy::DifferentProvider, 2)
    );

    let it11 = load_seed("retry_it11_high_latency_failover.yaml").unwrap();
    let p = it11.config.providers[0].retry_policy.as_ref().unwrap();
    let h = p.on_high_latency.unwrap();
    assert_eq!(h.threshold, Duration::from_millis(1000));
    assert_eq!(h.measure, LatencyMeasure::Total);
    assert_eq!(h.min_triggers, 1);
    assert_eq!(h.block_duration, Duration::from_secs(60));
    assert_eq!(h.scope, BlockScope::Model);
    assert_eq!(h.apply_to, BlockApplyTo::Global);
    assert_eq!(h.strategy, Strategy::DifferentProvider);

    let it9 = load_seed("retry_it9_retry_after_blocks_selection.yaml").unwrap();
    assert!(!it9.config.providers[1].default);
    assert!(it9.config.providers[1].retry_policy.is_some());
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

#[test]
fn examples_load_without_errors() {
    for name in [
        "minimal.yaml",
        "failover.yaml",
        "full-retry-policy.yaml",
        "demo.yaml",
    ] {
        let text = std::fs::read_to_string(examples_dir().join(name)).expect(name);
        let loaded = load_str(&text, &fake_env).unwrap_or_else(|e| panic!("{name} failed:\n{e}"));
        assert!(loaded.warnings.is_empty(), "{name}: {:?}", loaded.warnings);
    }
}

#[test]
fn full_example_values() {
    let text = std::fs::read_to_string(examples_dir().join("full-retry-policy.yaml")).unwrap();
    let c = load_str(&text, &fake_env).unwrap().config;
    let p = c.providers[0].retry_policy.as_ref().unwrap();
    // error_codes entries come first.
    assert_eq!(
        p.on_status_codes[0].error_codes,
        vec!["context_length_exceeded"]
    );
    assert_eq!(p.on_status_codes[1].rule.max_wait, Duration::from_secs(3));
    assert_eq!(
        p.on_status_codes[1].rule.then.map(|t| t.strategy),
        Some(Strategy::DifferentProvider)
    );
    assert_eq!(p.default_rule.then.map(|t| t.max_attempts), Some(1));
    assert_eq!(p.max_retry_duration, Some(Duration::from_secs(30)));
    assert_eq!(
        c.providers[0].access_key.as_ref().unwrap().expose(),
        "test-OPENAI_API_KEY"
    );
    assert_eq!(c.providers[2].headers[0].0, "x-team");
    let f = p.on_failures.expect("on_failures");
    assert_eq!(
        (f.consecutive, f.block_duration),
        (5, Duration::from_secs(30))
    );
    assert!(c.retry_budget.enabled);
    assert_eq!(c.limits.max_buffered_body_bytes, 256 << 20);
}

#[test]
fn load_file_reads_dotenv_beside_the_config() {
    let dir = std::env::temp_dir().join(format!("switchback-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("config.yaml");
    std::fs::write(
        &cfg,
        "model_providers:\n  - model: openai/gpt-4o\n    access_key: ${SWITCHBACK_TEST_DOTENV_ONLY_KEY}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join(".env"),
        "# keys\nexport SWITCHBACK_TEST_DOTENV_ONLY_KEY=\"from-dotenv\"\n",
    )
    .unwrap();
    let loaded = load_file(&cfg).unwrap();
    assert_eq!(
        loaded.config.providers[0]
            .access_key
            .as_ref()
            .unwrap()
            .expose(),
        "from-dotenv"
    );
    std::fs::write(dir.join(".env"), "NOT A LINE\n").unwrap();
    let err = load_file(&cfg).unwrap_err();
    assert_eq!(err.errors[0].line, Some(1));
    assert!(err.errors[0].path.ends_with(".env"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn load_file_missing_names_the_path() {
    let err = load_file(Path::new("/nonexistent/switchback/config.yaml")).unwrap_err();
    assert_eq!(err.errors[0].path, "/nonexistent/switchback/config.yaml");
    assert!(err.errors[0].message.contains("does not exist"));
}
