//! `state: {redis: {url, key_prefix}}` (spec §14): the URL forms, the defaults, every
//! error with its YAML path and line, and no credential in any message or `Debug`.

use switchback_core::config::{
    load_str, parse_redis_url, ConfigError, Loaded, RedisUrlError, DEFAULT_KEY_PREFIX,
};

const PROVIDERS: &str = "model_providers:\n  - model: openai/gpt-4o\n    access_key: k\n";

fn with_state(state: &str) -> String {
    format!("{PROVIDERS}state:\n{state}")
}

fn load_env(yaml: &str, env: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    load_str(yaml, &|name| {
        env.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    })
}

fn load(yaml: &str) -> Loaded {
    load_env(yaml, &[]).unwrap_or_else(|e| panic!("{e}"))
}

#[track_caller]
fn error_at(yaml: &str, path: &str, line: usize, needle: &str) -> String {
    let errors = match load_str(yaml, &|_| None) {
        Ok(l) => panic!("expected an error at {path}, got {:?}", l.config.state),
        Err(e) => e,
    };
    assert!(
        errors
            .errors
            .iter()
            .any(|d| d.path == path && d.line == Some(line) && d.message.contains(needle)),
        "no error at {path} line {line} mentioning {needle:?}; got:\n{errors}"
    );
    errors.to_string()
}

#[test]
fn no_state_shares_nothing() {
    assert_eq!(load(PROVIDERS).config.state.redis, None);
    assert_eq!(load(&with_state("  {}\n")).config.state.redis, None);
}

#[test]
fn a_redis_url_with_defaults() {
    let l = load(&with_state("  redis:\n    url: redis://127.0.0.1\n"));
    let r = l.config.state.redis.expect("redis");
    assert_eq!(r.key_prefix, DEFAULT_KEY_PREFIX);
    assert!(!r.endpoint.tls);
    assert_eq!(
        (r.endpoint.host.as_str(), r.endpoint.port, r.endpoint.db),
        ("127.0.0.1", 6379, 0)
    );
    assert!(r.endpoint.password.is_none() && r.endpoint.username.is_none());
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn every_url_form() {
    let e = parse_redis_url("rediss://user:p%40ss@redis.internal:6380/3").unwrap();
    assert!(e.tls);
    assert_eq!((e.host.as_str(), e.port, e.db), ("redis.internal", 6380, 3));
    assert_eq!(e.username.as_ref().map(|u| u.expose()), Some("user"));
    assert_eq!(e.password.as_ref().map(|p| p.expose()), Some("p@ss"));
    let e = parse_redis_url("redis://:secret@[::1]:7000/").unwrap();
    assert_eq!((e.host.as_str(), e.port, e.db), ("::1", 7000, 0));
    assert_eq!(e.authority(), "[::1]:7000");
    assert!(e.username.is_none());
    assert_eq!(e.password.as_ref().map(|p| p.expose()), Some("secret"));
    let e = parse_redis_url("REDIS://localhost").unwrap();
    assert!(e.is_loopback());
    for (url, why) in [
        ("http://h", RedisUrlError::Scheme),
        ("unix:///tmp/redis.sock", RedisUrlError::Scheme),
        ("redis://", RedisUrlError::Host),
        ("redis://h:0", RedisUrlError::Port),
        ("redis://h:99999", RedisUrlError::Port),
        ("redis://h/db1", RedisUrlError::Database),
        ("redis://h/1/2", RedisUrlError::Database),
        ("redis://h/1?protocol=resp3", RedisUrlError::Query),
        ("redis://h#x", RedisUrlError::Query),
        ("redis://user@h", RedisUrlError::UserWithoutPassword),
        ("redis://:%zz@h", RedisUrlError::Escape),
        ("redis://bad host", RedisUrlError::Host),
    ] {
        assert_eq!(parse_redis_url(url).map(|_| ()), Err(why), "{url}");
    }
}

#[test]
fn credentials_never_show() {
    let e = parse_redis_url("rediss://admin:hunter2-Secret@redis.internal:6380/1").unwrap();
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("admin"),
        "{shown}"
    );
    assert_eq!(e.to_string(), "rediss://***@redis.internal:6380/1");
    // A bad URL's error names the field, never the URL.
    let text = error_at(
        &with_state("  redis:\n    url: redis://:hunter2-Secret@h:70000\n"),
        "state.redis.url",
        6,
        "port",
    );
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn url_from_the_environment() {
    let yaml = with_state("  redis:\n    url: ${REDIS_URL}\n    key_prefix: prod-eu\n");
    let l = load_env(
        &yaml,
        &[("REDIS_URL", "rediss://:pw-from-env@cache:6390/2")],
    )
    .unwrap();
    let r = l.config.state.redis.unwrap();
    assert_eq!(r.endpoint.password.unwrap().expose(), "pw-from-env");
    assert_eq!(r.key_prefix, "prod-eu");
    let err = load_env(&yaml, &[]).unwrap_err().to_string();
    assert!(
        err.contains("state.redis.url (line 6") && err.contains("$REDIS_URL, which is not set"),
        "{err}"
    );
}

#[test]
fn errors_name_path_and_line() {
    error_at(
        &with_state("  redis: {}\n"),
        "state.redis",
        5,
        "`url` is required",
    );
    error_at(
        &with_state("  redis:\n    url: 6379\n"),
        "state.redis.url",
        6,
        "must be a redis:// or rediss:// URL",
    );
    error_at(
        &with_state("  redis:\n    url: https://cache:6379\n"),
        "state.redis.url",
        6,
        "must start with redis:// or rediss://",
    );
    for bad in ["\"\"", "\"has space\"", "\"glob*\"", "\"a[b]\""] {
        error_at(
            &with_state(&format!(
                "  redis:\n    url: redis://h\n    key_prefix: {bad}\n"
            )),
            "state.redis.key_prefix",
            7,
            "`key_prefix` must be 1 to 64 characters",
        );
    }
    let long = "x".repeat(65);
    error_at(
        &with_state(&format!(
            "  redis:\n    url: redis://h\n    key_prefix: {long}\n"
        )),
        "state.redis.key_prefix",
        7,
        "1 to 64",
    );
}

#[test]
fn unknown_keys_are_refused() {
    for (state, needle) in [
        (
            "  redis:\n    url: redis://h\n    pool_size: 4\n",
            "pool_size",
        ),
        ("  memcached: {}\n", "memcached"),
    ] {
        let err = load_str(&with_state(state), &|_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle) && err.contains("state"), "{err}");
    }
}

#[test]
fn a_clear_text_password_to_another_host_is_a_warning() {
    let l = load(&with_state(
        "  redis:\n    url: redis://:pw@cache.internal\n",
    ));
    let w = &l.warnings;
    assert!(
        w.iter().any(|d| d.path == "state.redis.url"
            && d.line == Some(6)
            && d.message.contains("use rediss://")),
        "{w:?}"
    );
    for quiet in [
        "rediss://:pw@cache.internal",
        "redis://:pw@127.0.0.1",
        "redis://cache",
    ] {
        let l = load(&with_state(&format!("  redis:\n    url: {quiet}\n")));
        assert!(l.warnings.is_empty(), "{quiet}: {:?}", l.warnings);
    }
}

#[test]
fn explain_names_the_shared_state_without_credentials() {
    let l = load(&with_state(
        "  redis:\n    url: rediss://:hunter2-Secret@cache:6380/1\n    key_prefix: prod\n",
    ));
    let text = switchback_core::config::explain(&l.config);
    assert!(
        text.contains("shared state: blocks shared through rediss://***@cache:6380/1 under the key prefix `prod`"),
        "{text}"
    );
    assert!(!text.contains("hunter2"));
    assert!(!switchback_core::config::explain(&load(PROVIDERS).config).contains("shared state"));
}
