//! HTTPS upstreams

use std::sync::Arc;

use switchback_tests::client::post_chat;
use switchback_tests::fixtures::{success_body, SUCCESS_CONTENT};
use switchback_tests::gateway::{GatewayOptions, Runtime};
use switchback_tests::mock_upstream::{MockUpstream, Reply};
use switchback_tests::table::{assert_header, assert_status, error_of, start_ports, HEAD};

use crate::anthropic::{CLAUDE, MESSAGE_TEXT, MESSAGE_TEXT_CONTENT, OPENAI};
use crate::harness::{assert_anthropic_request, entry, gateway, pki};

/// HTTPS upstreams with certificates of the CA in `SWITCHBACK_CA_FILE` work, by name
/// (`localhost`) and by IP address, for OpenAI and Anthropic, and TLS connections are
/// kept alive (one worker thread: idle connections are pooled per thread).
pub(crate) fn https_upstreams_trusted_through_ca_file<R: Runtime>() {
    let pki = pki();
    let openai = MockUpstream::start_tls(
        vec![Reply::json(200, success_body())],
        Arc::clone(&pki.trusted),
    );
    let claude = MockUpstream::start_tls(
        vec![Reply::json(200, MESSAGE_TEXT)],
        Arc::clone(&pki.trusted),
    );
    let yaml = format!(
        "{HEAD}{}{}",
        entry(OPENAI, "https://localhost:${PRIMARY}", true, None),
        entry(CLAUDE, "https://127.0.0.1:${SECONDARY}", false, None)
    );
    let one_thread = GatewayOptions {
        threads: Some(1),
        ..GatewayOptions::default()
    };
    let gw = start_ports::<R>(&yaml, &[openai.port(), claude.port()], &one_thread);
    for _ in 0..2 {
        let r = post_chat(
            gw.addr,
            r#"{"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}"#,
        );
        assert_status(&r, 200);
        assert_eq!(
            r.json()["choices"][0]["message"]["content"],
            SUCCESS_CONTENT
        );
    }
    assert_eq!(openai.calls(), 2);
    assert_eq!(
        openai.connections().len(),
        1,
        "the TLS connection was not reused: {:?}",
        openai.connections()
    );
    assert_eq!(
        openai.requests()[0].header("authorization"),
        Some("Bearer key-openai")
    );

    let r = post_chat(
        gw.addr,
        r#"{"model": "anthropic/claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]}"#,
    );
    assert_status(&r, 200);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        MESSAGE_TEXT_CONTENT,
        "{}",
        r.text()
    );
    assert_anthropic_request(&claude.requests()[0]);
}

/// A certificate from a CA the gateway does not trust, or for another name, fails the
/// handshake: no request reaches the upstream and the client gets a gateway error.
pub(crate) fn https_untrusted_certificates_are_refused<R: Runtime>() {
    let pki = pki();
    let stranger = MockUpstream::start_tls(
        vec![Reply::json(200, success_body())],
        Arc::clone(&pki.unknown_ca),
    );
    let misnamed = MockUpstream::start_tls(
        vec![Reply::json(200, MESSAGE_TEXT)],
        Arc::clone(&pki.wrong_name),
    );
    let yaml = format!(
        "{HEAD}{}{}",
        entry(OPENAI, "https://localhost:${PRIMARY}", true, None),
        entry(CLAUDE, "https://localhost:${SECONDARY}", false, None)
    );
    let gw = gateway::<R>(&yaml, &[&stranger, &misnamed]);
    for model in [OPENAI, CLAUDE] {
        let r = post_chat(
            gw.addr,
            &format!(
                r#"{{"model": "{model}", "messages": [{{"role": "user", "content": "Hi"}}]}}"#
            ),
        );
        assert_status(&r, 502);
        let e = error_of(&r);
        assert_eq!(e["error_type"], "connect_error", "{model}: {e}");
        assert_header(&r, "x-should-retry", "false");
    }
    assert_eq!(
        stranger.calls(),
        0,
        "a request went to an untrusted upstream"
    );
    assert_eq!(misnamed.calls(), 0, "a request went to a misnamed upstream");
    assert!(
        !stranger.connections().is_empty() && !misnamed.connections().is_empty(),
        "the gateway never tried"
    );
}
