//! Classifying a failed attempt against the primary's retry policy (spec §4.1, §4.9).
//!
//! Pure functions: the same failure and policy always give the same verdict.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;

use crate::config::{RetryPolicy, RetryRule};

/// Statuses that are retriable by default when no `on_status_codes` entry lists them.
pub const DEFAULT_RETRIABLE_STATUSES: [u16; 7] = [408, 429, 500, 502, 503, 504, 529];

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The upstream answered with a non-success status (body read, bounded).
    Http {
        status: u16,
        headers: HeaderMap,
        body: Bytes,
    },
    /// No usable answer: the transport or the response itself failed before commit.
    Transport(TransportFailure),
}

/// A failure below HTTP, or a response that cannot be used.
///
/// A `detail` is for the log: it may name the upstream's address (runtimes put the
/// origin into connect errors), so it never reaches a client. What a client is told comes
/// from the provider entry's name and the variant, plus a `reason` the core wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportFailure {
    /// No commit within the attempt's time (`first_token`, `idle` or the request deadline).
    Timeout { after: Duration },
    /// Connection refused, reset, TLS failure, DNS failure.
    Connect { detail: String },
    /// A truncated, unframed or malformed response. `reason` is fixed text that may be
    /// shown to the client ("the response body is not well-formed JSON").
    InvalidResponse {
        reason: &'static str,
        detail: String,
    },
    /// An in-band `error` event in a stream before it committed (its JSON data).
    StreamError { data: String },
}

impl TransportFailure {
    /// An unusable response whose client-facing `reason` is also all there is to log.
    pub fn invalid(reason: &'static str) -> TransportFailure {
        TransportFailure::InvalidResponse {
            reason,
            detail: reason.to_owned(),
        }
    }
}

impl Failure {
    /// What the log says about the failure beyond its `error_type`, if anything. Never
    /// put it in a client-facing body.
    pub fn log_detail(&self) -> Option<&str> {
        match self {
            Failure::Transport(
                TransportFailure::Connect { detail }
                | TransportFailure::InvalidResponse { detail, .. },
            ) => Some(detail),
            _ => None,
        }
    }

    /// The `error_type` of the exhaustion body (spec §4.8).
    pub fn error_type(&self) -> String {
        match self {
            Failure::Http { status, .. } => format!("http_{status}"),
            Failure::Transport(TransportFailure::Timeout { after }) => {
                format!("timeout_{}ms", after.as_millis())
            }
            Failure::Transport(TransportFailure::Connect { .. }) => "connect_error".into(),
            Failure::Transport(TransportFailure::InvalidResponse { .. }) => {
                "invalid_response".into()
            }
            Failure::Transport(TransportFailure::StreamError { .. }) => "stream_error".into(),
        }
    }

    /// The HTTP status, when the upstream sent one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Failure::Http { status, .. } => Some(*status),
            Failure::Transport(_) => None,
        }
    }

    /// The status a gateway-made error for this failure carries (spec §4.8: the last
    /// attempt's status, 504 when it timed out, 502 for other transport failures).
    pub fn gateway_status(&self) -> u16 {
        match self {
            Failure::Http { status, .. } => *status,
            Failure::Transport(TransportFailure::Timeout { .. }) => 504,
            Failure::Transport(_) => 502,
        }
    }
}

/// Which rule of the policy a failure fell under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleRef {
    /// `on_status_codes[i]`.
    Status(usize),
    /// `on_timeout`.
    Timeout,
    /// The defaults (`default_strategy`, `default_max_attempts`, `default_then`).
    Default,
}

impl RuleRef {
    /// The rule this reference names in `policy`.
    pub fn rule<'p>(&self, policy: &'p RetryPolicy) -> &'p RetryRule {
        match self {
            RuleRef::Status(i) => policy
                .on_status_codes
                .get(*i)
                .map(|s| &s.rule)
                .unwrap_or(&policy.default_rule),
            RuleRef::Timeout => policy.on_timeout.as_ref().unwrap_or(&policy.default_rule),
            RuleRef::Default => &policy.default_rule,
        }
    }
}

/// Whether a failure may be retried, and under which rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Retriable(RuleRef),
    /// The client's problem (other 4xx) or anything else no rule covers: pass it through.
    NotRetriable,
}

/// Classifies `failure` under `policy` (spec §4.1): `on_status_codes` entries with
/// `error_codes` first, then the others, first match wins; then the default retriable
/// statuses; transport failures go to `on_timeout`, else the defaults.
pub fn classify(policy: &RetryPolicy, failure: &Failure) -> Verdict {
    match failure {
        Failure::Http { status, body, .. } => {
            let codes = error_codes_of(body);
            let listed = |i: &usize| {
                policy.on_status_codes[*i]
                    .codes
                    .iter()
                    .any(|r| r.contains(*status))
            };
            let all = 0..policy.on_status_codes.len();
            let with_codes = all
                .clone()
                .filter(|i| !policy.on_status_codes[*i].error_codes.is_empty());
            for i in with_codes.filter(listed) {
                let wanted = &policy.on_status_codes[i].error_codes;
                if codes.iter().any(|c| wanted.iter().any(|w| w == c)) {
                    return Verdict::Retriable(RuleRef::Status(i));
                }
            }
            let mut without_codes =
                all.filter(|i| policy.on_status_codes[*i].error_codes.is_empty());
            if let Some(i) = without_codes.find(listed) {
                return Verdict::Retriable(RuleRef::Status(i));
            }
            if DEFAULT_RETRIABLE_STATUSES.contains(status) {
                Verdict::Retriable(RuleRef::Default)
            } else {
                Verdict::NotRetriable
            }
        }
        Failure::Transport(_) => Verdict::Retriable(if policy.on_timeout.is_some() {
            RuleRef::Timeout
        } else {
            RuleRef::Default
        }),
    }
}

/// The `error.code` and `error.type` strings of an OpenAI- or Anthropic-shaped error
/// body (numbers are turned into their decimal text). Empty when the body is not such JSON.
pub fn error_codes_of(body: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let Some(error) = value.get("error") else {
        return Vec::new();
    };
    ["code", "type"]
        .iter()
        .filter_map(|k| match error.get(*k) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;
    use crate::config::{StatusRange, StatusRule, Strategy};

    fn http(status: u16, body: &str) -> Failure {
        Failure::Http {
            status,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
        }
    }

    fn rule(strategy: Strategy) -> RetryRule {
        RetryRule {
            strategy,
            max_attempts: 1,
            then: None,
            max_wait: Duration::from_secs(5),
        }
    }

    #[test]
    fn default_statuses_are_retriable_other_4xx_are_not() {
        let p = RetryPolicy::default();
        for s in DEFAULT_RETRIABLE_STATUSES {
            assert_eq!(
                classify(&p, &http(s, "")),
                Verdict::Retriable(RuleRef::Default)
            );
        }
        for s in [400, 401, 403, 404, 413, 422, 301] {
            assert_eq!(classify(&p, &http(s, "")), Verdict::NotRetriable);
        }
    }

    #[test]
    fn listed_codes_win_first_match() {
        let mut p = RetryPolicy::default();
        p.on_status_codes = vec![
            StatusRule {
                codes: vec![StatusRange {
                    start: 502,
                    end: 504,
                }],
                error_codes: vec![],
                rule: rule(Strategy::SameModel),
            },
            StatusRule {
                codes: vec![
                    StatusRange {
                        start: 503,
                        end: 503,
                    },
                    StatusRange {
                        start: 400,
                        end: 400,
                    },
                ],
                error_codes: vec![],
                rule: rule(Strategy::SameProvider),
            },
        ];
        assert_eq!(
            classify(&p, &http(503, "")),
            Verdict::Retriable(RuleRef::Status(0))
        );
        assert_eq!(
            classify(&p, &http(400, "")),
            Verdict::Retriable(RuleRef::Status(1))
        );
    }

    #[test]
    fn error_codes_entries_are_checked_first_and_only_match_their_codes() {
        let mut p = RetryPolicy::default();
        p.on_status_codes = vec![
            StatusRule {
                codes: vec![StatusRange {
                    start: 400,
                    end: 400,
                }],
                error_codes: vec![],
                rule: rule(Strategy::SameModel),
            },
            StatusRule {
                codes: vec![StatusRange {
                    start: 400,
                    end: 400,
                }],
                error_codes: vec!["context_length_exceeded".into()],
                rule: rule(Strategy::DifferentProvider),
            },
        ];
        let ctx = r#"{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}}"#;
        assert_eq!(
            classify(&p, &http(400, ctx)),
            Verdict::Retriable(RuleRef::Status(1))
        );
        let other = r#"{"error":{"message":"bad","type":"invalid_request_error"}}"#;
        assert_eq!(
            classify(&p, &http(400, other)),
            Verdict::Retriable(RuleRef::Status(0))
        );
    }

    #[test]
    fn transport_failures_use_on_timeout_else_defaults() {
        let mut p = RetryPolicy::default();
        let f = Failure::Transport(TransportFailure::Connect {
            detail: "refused".into(),
        });
        assert_eq!(classify(&p, &f), Verdict::Retriable(RuleRef::Default));
        p.on_timeout = Some(rule(Strategy::SameModel));
        assert_eq!(classify(&p, &f), Verdict::Retriable(RuleRef::Timeout));
        assert_eq!(f.error_type(), "connect_error");
        assert_eq!(f.gateway_status(), 502);
        let t = Failure::Transport(TransportFailure::Timeout {
            after: Duration::from_millis(30000),
        });
        assert_eq!(t.error_type(), "timeout_30000ms");
        assert_eq!(t.gateway_status(), 504);
    }

    #[test]
    fn error_codes_read_numbers_and_anthropic_shape() {
        assert_eq!(error_codes_of(br#"{"error":{"code":429}}"#), vec!["429"]);
        assert_eq!(
            error_codes_of(br#"{"type":"error","error":{"type":"overloaded_error"}}"#),
            vec!["overloaded_error"]
        );
        assert!(error_codes_of(b"not json").is_empty());
    }
}
