//! Small OTLP receivers for the trace scenarios, decoding with the official generated
//! types (`opentelemetry-proto`): one for OTLP/HTTP (`POST /v1/traces`, protobuf body)
//! and one for OTLP/gRPC (the `h2` crate's server on a tokio thread).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

type Received = Arc<Mutex<Vec<(String, ExportTraceServiceRequest)>>>;

/// A receiver on a loopback port; what it decoded, with the path each came on.
pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    received: Received,
}

impl Receiver {
    /// Every span received so far.
    pub(crate) fn spans(&self) -> Vec<Span> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, r)| r.resource_spans.iter())
            .flat_map(|rs| rs.scope_spans.iter())
            .flat_map(|ss| ss.spans.iter().cloned())
            .collect()
    }

    /// The paths the exports came on.
    pub(crate) fn paths(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// The resource attributes of the first export, as `key=value` strings.
    pub(crate) fn resource(&self) -> Vec<String> {
        let got = self.received.lock().unwrap();
        got.first()
            .and_then(|(_, r)| r.resource_spans.first())
            .and_then(|rs| rs.resource.as_ref())
            .map(|r| {
                r.attributes
                    .iter()
                    .map(|kv| format!("{}={:?}", kv.key, kv.value))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until `n` spans arrived (or 10 s passed); the spans.
    pub(crate) fn wait_spans(&self, n: usize) -> Vec<Span> {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let spans = self.spans();
            if spans.len() >= n || Instant::now() > until {
                return spans;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// OTLP/HTTP: answers every request 200 with an empty `ExportTraceServiceResponse`.
pub(crate) fn http_receiver() -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    let received: Received = Arc::default();
    let store = Arc::clone(&received);
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let store = Arc::clone(&store);
            thread::spawn(move || http_conn(conn, &store));
        }
    });
    Receiver { addr, received }
}

fn http_conn(mut conn: TcpStream, store: &Received) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let Ok(n) = conn.read(&mut buf) else { return };
        if n == 0 {
            return;
        }
        got.extend_from_slice(&buf[..n]);
        let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&got[..end]).to_string();
        let len = head
            .lines()
            .find_map(|l| {
                let l = l.to_ascii_lowercase();
                l.strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
            })
            .unwrap_or(0);
        if got.len() < end + 4 + len {
            continue;
        }
        let path = head.split(' ').nth(1).unwrap_or("").to_owned();
        let ok_type = head
            .to_ascii_lowercase()
            .contains("content-type: application/x-protobuf");
        let body = &got[end + 4..end + 4 + len];
        let answer = match (ok_type, ExportTraceServiceRequest::decode(body)) {
            (true, Ok(r)) => {
                store.lock().unwrap().push((path, r));
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            }
            _ => "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        };
        let _ = conn.write_all(answer.as_bytes());
        return;
    }
}

/// OTLP/gRPC over h2c: `TraceService/Export` answered with an empty response message and
/// `grpc-status: 0`.
pub(crate) fn grpc_receiver() -> Receiver {
    let std_listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let received: Received = Arc::default();
    let store = Arc::clone(&received);
    thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let store = Arc::clone(&store);
                tokio::task::spawn(async move {
                    let _ = grpc_conn(socket, store).await;
                });
            }
        });
    });
    Receiver { addr, received }
}

async fn grpc_conn(socket: tokio::net::TcpStream, store: Received) -> Result<(), h2::Error> {
    let mut conn = h2::server::handshake(socket).await?;
    // The connection makes progress only while it is polled: each call is served by its
    // own task, so this loop keeps reading and writing frames for it.
    while let Some(accepted) = conn.accept().await {
        let (request, respond) = accepted?;
        let store = Arc::clone(&store);
        tokio::task::spawn(async move {
            let _ = grpc_call(request, respond, store).await;
        });
    }
    Ok(())
}

async fn grpc_call(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<bytes::Bytes>,
    store: Received,
) -> Result<(), h2::Error> {
    let path = request.uri().path().to_owned();
    let mut body = request.into_body();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let decoded = (data.len() >= 5 && data[0] == 0)
        .then(|| ExportTraceServiceRequest::decode(&data[5..]).ok())
        .flatten();
    let status = if decoded.is_some() { "0" } else { "3" };
    if let Some(r) = decoded {
        store.lock().unwrap().push((path, r));
    }
    let response = http::Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .body(())
        .unwrap();
    let mut send = respond.send_response(response, false)?;
    send.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), false)?;
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static(status));
    send.send_trailers(trailers)
}
