//! The README's demo (`examples/demo.yaml`) does what the README says, in simulation.

mod common;

use std::time::Duration;

#[test]
fn demo_fails_over_from_the_rate_limited_mock_and_then_skips_it() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demo.yaml");
    let yaml = std::fs::read_to_string(path).expect("examples/demo.yaml");
    let mut s = common::sim(&yaml);
    let body = r#"{"model":"mock/rate-limited","messages":[{"role":"user","content":"Hello"}]}"#;
    let r = s.chat(body).unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.headers["x-switchback-model"], "mock/ok");
    assert_eq!(r.headers["x-switchback-attempts"], "2");
    let text = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("mock"), "{text}");

    s.advance(Duration::from_secs(1));
    let again = s.chat(body).unwrap();
    assert_eq!(
        again.headers["x-switchback-attempts"], "1",
        "still blocked by Retry-After"
    );

    s.advance(Duration::from_secs(5));
    let later = s.chat(body).unwrap();
    assert_eq!(
        later.headers["x-switchback-attempts"], "2",
        "the block has ended"
    );
}

#[test]
fn demo_streams_from_the_mock() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demo.yaml");
    let yaml = std::fs::read_to_string(path).expect("examples/demo.yaml");
    let mut s = common::sim(&yaml);
    let r = s
        .chat(r#"{"model":"mock/ok","messages":[{"role":"user","content":"Hi"}],"stream":true}"#)
        .unwrap();
    assert!(r.streamed);
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(text.matches("data: ").count() >= 5);
    assert!(
        r.elapsed() >= Duration::from_millis(100),
        "chunks are spaced in time"
    );

    let cut = s
        .chat(r#"{"model":"mock/stream-cut","messages":[{"role":"user","content":"Hi"}],"stream":true}"#)
        .unwrap();
    let text = String::from_utf8_lossy(&cut.body);
    assert!(
        !text.contains("[DONE]") && text.contains("\"error\""),
        "{text}"
    );
}

#[test]
fn the_readmes_other_doors_answer_on_the_demo() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demo.yaml");
    let yaml = std::fs::read_to_string(path).expect("examples/demo.yaml");
    let mut s = common::sim(&yaml);
    let headers = [("content-type", "application/json")];
    let r = s
        .post(
            "/v1/messages",
            &headers,
            r#"{"model":"mock/rate-limited","max_tokens":100,"messages":[{"role":"user","content":"Hello"}]}"#,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["type"], "message");
    assert_eq!(r.headers["x-switchback-model"], "mock/ok");
    let r = s
        .post(
            "/v1/responses",
            &headers,
            r#"{"model":"mock/rate-limited","input":"Hello"}"#,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["object"], "response");
    assert_eq!(r.json()["status"], "completed");
}
