//! Plano-compatible YAML configuration (spec §3, §4): parsing, variable expansion,
//! validation with YAML paths and lines, and the typed result.

mod aliases;
mod duration;
mod env;
mod explain;
mod fields;
mod listeners;
mod load;
mod locate;
mod max_retries;
mod observe;
mod plano;
mod protection;
mod providers;
mod raw;
mod recovery;
mod report;
mod retry;
mod schema;
mod state;
mod status_codes;
mod types;
mod validate;

pub use duration::parse_duration;
pub use explain::explain;
pub use listeners::{DEFAULT_ADDRESS, DEFAULT_PORT, DEFAULT_TIMEOUT, IMPLICIT_LISTENER};
pub use load::{load_file, load_str};
pub use max_retries::{
    listener_retry_policy, ENVOY_BACKOFF_BASE, ENVOY_BACKOFF_MAX, ENVOY_PER_TRY_TIMEOUT,
};
pub use observe::{DEFAULT_GRPC_ENDPOINT, GRPC_ENDPOINT_ENV, OTLP_HTTP_TRACES_PATH};
pub use providers::{interface_for_prefix, MOCK_KINDS};
pub use recovery::{
    continuation_order, continuation_strategy, Continuation, StreamRecovery,
    DEFAULT_MAX_CONTINUATIONS, MAX_CONTINUATIONS,
};
pub use state::{
    parse_redis_url, RedisEndpoint, RedisSettings, RedisUrlError, StateSettings, DEFAULT_KEY_PREFIX,
};
pub use types::*;

use std::fmt;

/// One finding about a config file: where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The YAML path, e.g. `model_providers[0].retry_policy.backoff.base_ms`.
    pub path: String,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// 1-based column in the file, when known.
    pub column: Option<usize>,
    /// A sentence a user can act on.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => {
                write!(f, "{} (line {l}, column {c}): {}", self.path, self.message)
            }
            (Some(l), None) => write!(f, "{} (line {l}): {}", self.path, self.message),
            _ => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// A config that cannot be used, with every error found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub errors: Vec<Diagnostic>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {d}")?;
        }
        Ok(())
    }
}

/// A config that loaded, and the warnings it produced (startup continues).
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}
