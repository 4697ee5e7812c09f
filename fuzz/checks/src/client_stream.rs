//! Reading back the bytes a streamed response sent its client: they must be a well-formed
//! event stream of the client's API, one answer (one start), with nothing after its end.
//! Stream recovery splices continuations into a committed stream, so this is what must
//! still hold however many attempts made the bytes.

use serde_json::Value;
use switchback_core::apis::ClientApi;
use switchback_core::sse::SseFramer;

/// How a client stream ended, as its bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// The API's own end: `[DONE]`, `message_stop`, `response.completed` (or
    /// `response.incomplete`).
    Complete,
    /// An in-band error event (or `response.failed`).
    Error,
    /// No end yet: the bytes stop after a whole event (or before the first).
    Open,
}

/// Checks `bytes`, everything the client got after the stream's head, as a stream of
/// `api`, and says how it ended. Panics on anything a client's SDK would choke on: a
/// partial event, data that is not JSON, or an event after the end. An upstream that
/// speaks the client's API is relayed event by event as it sent them, so within the events
/// only what the gateway makes itself is checked: a Responses stream (always translated
/// here) has one `response.created` first and sequence numbers rising by one.
pub(crate) fn check_client_stream(api: ClientApi, bytes: &[u8]) -> StreamEnd {
    let mut framer = SseFramer::new(usize::MAX);
    framer.push(bytes);
    let mut reader = Reader {
        api,
        end: StreamEnd::Open,
        created: 0,
        sequence: None,
    };
    while let Some(event) = framer.next_event() {
        let event = event.expect("no limit on the framer");
        assert!(
            reader.end == StreamEnd::Open,
            "an event after the end of the client stream: {event:?}; the stream:\n{}",
            String::from_utf8_lossy(bytes)
        );
        reader.read(event.event.as_deref(), &event.data);
    }
    assert_eq!(
        framer.buffered_bytes(),
        0,
        "the client stream stops inside an event: {:?}",
        tail(bytes)
    );
    reader.end
}

fn tail(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(200)..]).into_owned()
}

struct Reader {
    api: ClientApi,
    end: StreamEnd,
    /// Responses `response.created` events: one answer has one.
    created: u32,
    /// The last Responses `sequence_number`.
    sequence: Option<u64>,
}

impl Reader {
    /// Reads one event as the client's SDK does: its type is the `event:` name (unless it
    /// is absent or `message`), else the data's `type`; an `error` event ends the stream
    /// whatever its data (an upstream's own error event is relayed as it came).
    fn read(&mut self, name: Option<&str>, data: &str) {
        let name = name.filter(|n| *n != "message");
        if self.api == ClientApi::ChatCompletions && data.trim() == "[DONE]" {
            self.end = StreamEnd::Complete;
            return;
        }
        if name == Some("error") && self.api != ClientApi::Responses {
            self.end = StreamEnd::Error;
            return;
        }
        let value: Value = serde_json::from_str(data)
            .unwrap_or_else(|e| panic!("a client event that is not JSON ({e}): {data:?}"));
        match self.api {
            ClientApi::ChatCompletions => {
                if value.get("error").is_some() {
                    self.end = StreamEnd::Error;
                }
            }
            ClientApi::Messages => match name.or(value["type"].as_str()) {
                Some("message_stop") => self.end = StreamEnd::Complete,
                Some("error") => self.end = StreamEnd::Error,
                _ => {}
            },
            ClientApi::Responses => self.responses(&value),
            other => panic!("{other:?} does not stream"),
        }
    }

    fn responses(&mut self, value: &Value) {
        let n = value["sequence_number"]
            .as_u64()
            .unwrap_or_else(|| panic!("a Responses event without a sequence number: {value}"));
        if let Some(prev) = self.sequence {
            assert_eq!(n, prev + 1, "sequence numbers do not rise by one: {value}");
        }
        self.sequence = Some(n);
        match value["type"].as_str().unwrap_or_default() {
            "response.created" => {
                self.created += 1;
                assert!(self.created == 1, "two response.created: {value}");
            }
            "response.completed" | "response.incomplete" => self.end = StreamEnd::Complete,
            "response.failed" | "error" => self.end = StreamEnd::Error,
            kind => assert!(self.created == 1, "{kind} before response.created"),
        }
    }
}
