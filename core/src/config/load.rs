//! The entry points: [`load_str`] and [`load_file`].

use super::aliases::convert_aliases;
use super::env::parse_dotenv;
use super::listeners::{convert_listeners, listener_max_retries};
use super::locate::diagnose;
use super::max_retries::listener_retry_policy;
use super::plano::ignored_sections;
use super::protection::{convert_limits, convert_retry_budget};
use super::providers::convert_provider;
use super::raw::RawConfig;
use super::report::{index, Pos, Report};
use super::state::convert_state;
use super::validate::check_entries;
use super::{
    Config, ConfigError, Diagnostic, Limits, Loaded, MetricsSettings, RetryBudgetSettings,
};
use std::collections::HashMap;
use std::path::Path;

/// Parses, expands and validates a YAML config.
///
/// `env` looks up the variables that `$VAR` / `${VAR}` references name (only in
/// `access_key`, `base_url`, `headers` and `state.redis.url` values). On success every
/// default is applied and the warnings are returned beside the config; on failure the error
/// lists every problem found, each with its YAML path, line and a sentence saying what to
/// do. Secret values are never part of any message. Never panics on bad input.
pub fn load_str(yaml: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Loaded, ConfigError> {
    let raw: RawConfig = if yaml.trim().is_empty() {
        return Err(ConfigError {
            errors: vec![Diagnostic {
                path: "(document)".to_string(),
                line: None,
                column: None,
                message: "the config is empty; it needs at least `model_providers` (see examples/minimal.yaml)".to_string(),
            }],
        });
    } else {
        match serde_saphyr::from_str(yaml) {
            Ok(raw) => raw,
            Err(e) => {
                return Err(ConfigError {
                    errors: vec![diagnose(yaml, &e)],
                })
            }
        }
    };
    let mut rep = Report::default();
    let version = raw.version.as_ref().map(super::fields::text);
    let connect_override = ignored_sections(&mut rep, &raw);
    let listeners = convert_listeners(&mut rep, &raw.listeners);
    let retry_budget = raw
        .retry_budget
        .as_ref()
        .map_or_else(RetryBudgetSettings::default, |b| {
            convert_retry_budget(&mut rep, b, "retry_budget", RetryBudgetSettings::default())
        });
    let limits = raw
        .limits
        .as_ref()
        .map_or_else(Limits::default, |l| convert_limits(&mut rep, l, "limits"));
    let state = raw
        .state
        .as_ref()
        .map(|s| convert_state(&mut rep, s, "state", env))
        .unwrap_or_default();
    let metrics = raw
        .metrics
        .as_ref()
        .map_or_else(MetricsSettings::default, |m| {
            super::observe::convert_metrics(&mut rep, m)
        });
    let tracing = raw
        .tracing
        .as_ref()
        .and_then(|t| super::observe::convert_tracing(&mut rep, t, env));

    let (root, list) = match (&raw.model_providers, &raw.llm_providers) {
        (Some(m), Some(l)) => {
            rep.error(
                "llm_providers",
                Pos::at(l),
                format!("both `model_providers` (line {}) and `llm_providers` are present; move every entry into `model_providers` and delete `llm_providers`", Pos::at(m).line.unwrap_or(0)),
            );
            ("model_providers", Some(m))
        }
        (Some(m), None) => ("model_providers", Some(m)),
        (None, Some(l)) => {
            rep.warn(
                "llm_providers",
                Pos::at(l),
                "`llm_providers` is deprecated; rename it to `model_providers`",
            );
            ("llm_providers", Some(l))
        }
        (None, None) => ("model_providers", None),
    };
    let mut entries = Vec::new();
    match list {
        Some(list) if !list.value.is_empty() => {
            for (i, item) in list.value.iter().enumerate() {
                if let Some(e) =
                    convert_provider(&mut rep, item, &index(root, i), env, retry_budget)
                {
                    entries.push(e);
                }
            }
        }
        Some(list) => rep.error(
            root,
            Pos::at(list),
            format!("`{root}` is empty; add at least one provider, e.g. `- model: openai/gpt-4o`"),
        ),
        None => rep.error(
            "model_providers",
            Pos::default(),
            "no providers are configured; add a `model_providers` list (see examples/minimal.yaml)",
        ),
    }
    check_entries(&mut rep, &entries);
    let aliases = convert_aliases(&mut rep, &raw.model_aliases, &entries);
    let max_retries = listener_max_retries(&listeners);
    for e in &mut entries {
        apply_listener_defaults(&mut e.provider, max_retries);
        if let (Some(d), false) = (connect_override, e.connect_written) {
            e.provider.timeouts.connect = d;
        }
    }

    if !rep.errors.is_empty() {
        sort(&mut rep.errors);
        return Err(ConfigError { errors: rep.errors });
    }
    sort(&mut rep.warnings);
    Ok(Loaded {
        config: Config {
            version,
            listeners,
            providers: entries.into_iter().map(|e| e.provider).collect(),
            aliases,
            retry_budget,
            limits,
            state,
            metrics,
            tracing,
        },
        warnings: rep.warnings,
    })
}

/// A provider entry without a `retry_policy` gets the one the model listener's
/// `max_retries` maps to (spec §10); an entry's own policy wins.
fn apply_listener_defaults(p: &mut super::Provider, max_retries: Option<u32>) {
    if let (None, Some(n)) = (&p.retry_policy, max_retries) {
        p.retry_policy = Some(listener_retry_policy(n));
        p.policy_origin = super::PolicyOrigin::ListenerMaxRetries(n);
    }
}

/// Orders findings by line so they read top to bottom (stable for equal lines).
fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| d.line.unwrap_or(0));
}

/// Reads the config at `path` and loads it with [`load_str`].
///
/// Variables come from the process environment and, when a `.env` file exists beside the
/// config, from that file; the process environment wins. A missing or unreadable config,
/// or a malformed `.env`, is a [`ConfigError`] naming the file.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    let file_error = |message: String| ConfigError {
        errors: vec![Diagnostic {
            path: path.display().to_string(),
            line: None,
            column: None,
            message,
        }],
    };
    let yaml = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(file_error(format!(
                "the config file {} does not exist; check the path (switchback looks for ./config.yaml when none is given)",
                path.display()
            )))
        }
        Err(e) => {
            return Err(file_error(format!(
                "the config file {} cannot be read ({e}); check its permissions and that it is UTF-8 text",
                path.display()
            )))
        }
    };
    let dotenv_path = path
        .parent()
        .map(|d| d.join(".env"))
        .unwrap_or_else(|| Path::new(".env").to_path_buf());
    let dotenv: HashMap<String, String> = match std::fs::read_to_string(&dotenv_path) {
        Ok(text) => match parse_dotenv(&text) {
            Ok(vars) => vars,
            Err(errs) => {
                return Err(ConfigError {
                    errors: errs
                        .into_iter()
                        .map(|e| Diagnostic {
                            path: dotenv_path.display().to_string(),
                            line: Some(e.line),
                            column: None,
                            message: format!("{}; fix this line of the .env file", e.message),
                        })
                        .collect(),
                })
            }
        },
        Err(_) => HashMap::new(),
    };
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .or_else(|| dotenv.get(name).cloned())
    };
    load_str(&yaml, &env)
}
