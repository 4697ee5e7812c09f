//! HTTPS upstreams: a self-signed loopback server is trusted only through
//! `SWITCHBACK_CA_FILE`. One test in its own binary, since it sets a process-wide variable.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{chat, gateway, request};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use switchback_tokio::Options;

const BODY: &str = r#"{"id":"t","object":"chat.completion","choices":[{"index":0,"message":{"content":"over tls"}}]}"#;

/// A TLS upstream on loopback answering every request with `BODY`, keeping connections open.
fn tls_upstream(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> (u16, Arc<AtomicUsize>) {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            count.fetch_add(1, Ordering::SeqCst);
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = BufReader::new(rustls::StreamOwned::new(conn, tcp));
                while read_request(&mut tls) {
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{BODY}",
                        BODY.len()
                    );
                    if tls.get_mut().write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                    let _ = tls.get_mut().flush();
                }
            });
        }
    });
    (port, connections)
}

fn read_request(r: &mut impl BufRead) -> bool {
    let mut len = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            if n.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).is_ok()
}

fn config(port: u16) -> String {
    format!(
        r#"
listeners:
  - type: model
    name: test
    port: 12000
model_providers:
  - model: openai/tls
    base_url: https://localhost:{port}
    access_key: test-key
    default: true
    retry_policy:
      default_max_attempts: 0
"#
    )
}

#[test]
fn https_upstream_trusted_through_ca_file() {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_der = generated.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        generated.signing_key.serialize_der(),
    ));
    let (port, connections) = tls_upstream(cert_der, key);

    // Not trusted by the bundled roots: the attempt fails at the TLS handshake.
    std::env::remove_var("SWITCHBACK_CA_FILE");
    let (gw, addr) = gateway(&config(port), Options::default());
    let r = request(
        addr,
        "POST",
        "/v1/chat/completions",
        &chat("openai/tls", false),
    );
    assert!(r.status >= 500, "{} {}", r.status, r.text());
    gw.shutdown();

    let pem = std::env::temp_dir().join(format!("switchback-tokio-ca-{}.pem", std::process::id()));
    std::fs::write(&pem, generated.cert.pem()).unwrap();
    std::env::set_var("SWITCHBACK_CA_FILE", &pem);
    let (_gw, addr) = gateway(&config(port), Options::default());
    let before = connections.load(Ordering::SeqCst);
    for _ in 0..2 {
        let r = request(
            addr,
            "POST",
            "/v1/chat/completions",
            &chat("openai/tls", false),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("over tls"));
    }
    assert_eq!(
        connections.load(Ordering::SeqCst) - before,
        1,
        "TLS keep-alive reuse"
    );
    let _ = std::fs::remove_file(&pem);

    // A CA file that cannot be read stops the start, naming the variable.
    std::env::set_var("SWITCHBACK_CA_FILE", &pem);
    let loaded = switchback_core::config::load_str(&config(port), &|_| None).unwrap();
    let err = switchback_tokio::start(loaded.config, Options::default()).unwrap_err();
    assert!(matches!(err, switchback_tokio::StartError::Tls(_)), "{err}");
    assert!(err.to_string().contains("SWITCHBACK_CA_FILE"), "{err}");
    std::env::remove_var("SWITCHBACK_CA_FILE");
}
