//! The built-in mock provider (spec §3.4): `mock/...` models answered in-process, so a
//! config can be tried with no network and no keys. A mock answer is a timed script of
//! the same events a real upstream produces; the machine plays it on its own timer, so
//! both runtimes behave identically and nothing here touches a socket.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use serde_json::json;

use crate::config::MockSettings;
use crate::machine::TransportError;

/// The mock kinds a `mock/<kind>` model may name.
pub const MOCK_KINDS: &[&str] = &["ok", "rate-limited", "unavailable", "slow", "stream-cut"];

/// One scripted upstream happening.
#[derive(Debug, Clone, PartialEq)]
pub enum MockStep {
    Head { status: u16, headers: HeaderMap },
    Data(Bytes),
    End,
    Fail(TransportError),
}

/// A mock answer: each step happens `after` the previous one.
pub type MockPlan = Vec<(Duration, MockStep)>;

const WORDS: [&str; 6] = [
    "Hello",
    " from",
    " the",
    " switchback",
    " mock",
    " provider.",
];
const CHUNK_GAP: Duration = Duration::from_millis(20);

/// The script a `mock/<kind>` model answers with. `model` is the full model name,
/// `stream` whether the client asked for SSE. Unknown kinds answer like `ok`
/// (the config loader rejects them before this is reached).
pub fn plan(model: &str, settings: &MockSettings, stream: bool) -> MockPlan {
    let kind = model.strip_prefix("mock/").unwrap_or(model);
    match kind {
        "rate-limited" => {
            let mut headers = json_headers();
            headers.insert(
                http::header::RETRY_AFTER,
                HeaderValue::from(settings.retry_after_seconds),
            );
            error_plan(
                429,
                headers,
                "Rate limit reached (mock).",
                "rate_limit_exceeded",
            )
        }
        "unavailable" => error_plan(
            503,
            json_headers(),
            "The service is temporarily unavailable (mock).",
            "service_unavailable",
        ),
        "slow" => answer(model, stream, settings.delay, false),
        "stream-cut" => answer(model, stream, Duration::ZERO, true),
        _ => answer(model, stream, Duration::ZERO, false),
    }
}

fn json_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h
}

fn error_plan(status: u16, headers: HeaderMap, message: &str, code: &str) -> MockPlan {
    let body = json!({"error": {"message": message, "type": "server_error", "code": code}});
    vec![
        (Duration::ZERO, MockStep::Head { status, headers }),
        (
            Duration::ZERO,
            MockStep::Data(Bytes::from(body.to_string())),
        ),
        (Duration::ZERO, MockStep::End),
    ]
}

fn answer(model: &str, stream: bool, delay: Duration, cut: bool) -> MockPlan {
    if stream {
        stream_answer(model, delay, cut)
    } else {
        whole_answer(model, delay, cut)
    }
}

fn whole_answer(model: &str, delay: Duration, cut: bool) -> MockPlan {
    let body = json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": WORDS.concat()},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 8, "completion_tokens": WORDS.len(), "total_tokens": 8 + WORDS.len()}
    })
    .to_string();
    let mut plan = vec![(
        delay,
        MockStep::Head {
            status: 200,
            headers: json_headers(),
        },
    )];
    if cut {
        let half = Bytes::from(body).slice(..20);
        plan.push((Duration::ZERO, MockStep::Data(half)));
        plan.push((
            CHUNK_GAP,
            MockStep::Fail(TransportError::Io("connection reset (mock)".into())),
        ));
    } else {
        plan.push((Duration::ZERO, MockStep::Data(Bytes::from(body))));
        plan.push((Duration::ZERO, MockStep::End));
    }
    plan
}

fn chunk(model: &str, delta: serde_json::Value, finish: Option<&str>) -> Bytes {
    let v = json!({
        "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
    });
    Bytes::from(format!("data: {v}\n\n"))
}

fn stream_answer(model: &str, delay: Duration, cut: bool) -> MockPlan {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    let mut plan = vec![
        (
            delay,
            MockStep::Head {
                status: 200,
                headers,
            },
        ),
        (
            Duration::ZERO,
            MockStep::Data(chunk(
                model,
                json!({"role": "assistant", "content": ""}),
                None,
            )),
        ),
    ];
    let words = if cut { &WORDS[..2] } else { &WORDS[..] };
    for w in words {
        plan.push((
            CHUNK_GAP,
            MockStep::Data(chunk(model, json!({ "content": w }), None)),
        ));
    }
    if cut {
        plan.push((
            CHUNK_GAP,
            MockStep::Fail(TransportError::Io("connection reset (mock)".into())),
        ));
        return plan;
    }
    plan.push((
        CHUNK_GAP,
        MockStep::Data(chunk(model, json!({}), Some("stop"))),
    ));
    plan.push((
        Duration::ZERO,
        MockStep::Data(Bytes::from_static(b"data: [DONE]\n\n")),
    ));
    plan.push((Duration::ZERO, MockStep::End));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_sends_retry_after() {
        let s = MockSettings {
            delay: Duration::from_secs(1),
            retry_after_seconds: 7,
        };
        let p = plan("mock/rate-limited", &s, false);
        match &p[0].1 {
            MockStep::Head { status, headers } => {
                assert_eq!(*status, 429);
                assert_eq!(headers["retry-after"], "7");
            }
            other => panic!("unexpected first step {other:?}"),
        }
    }

    #[test]
    fn slow_waits_then_answers() {
        let s = MockSettings {
            delay: Duration::from_millis(1500),
            retry_after_seconds: 1,
        };
        let p = plan("mock/slow", &s, true);
        assert_eq!(p[0].0, Duration::from_millis(1500));
        assert!(matches!(p.last(), Some((_, MockStep::End))));
    }

    #[test]
    fn stream_cut_fails_after_content() {
        let p = plan("mock/stream-cut", &MockSettings::default(), true);
        assert!(matches!(p.last(), Some((_, MockStep::Fail(_)))));
        assert!(p
            .iter()
            .any(|(_, s)| matches!(s, MockStep::Data(d) if d.windows(7).any(|w| w == b"content"))));
    }
}
