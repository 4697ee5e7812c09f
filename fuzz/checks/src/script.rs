//! Reading a fuzz input as a script of small choices (on `arbitrary`'s `Unstructured`),
//! with the canned pieces several targets share.

use arbitrary::Unstructured;

/// A script over one fuzz input. Every read is total: an exhausted input reads as zeros
/// and empty slices, so a script always ends.
pub(crate) struct Script<'a> {
    u: Unstructured<'a>,
}

impl<'a> Script<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Script {
            u: Unstructured::new(data),
        }
    }

    /// Whether the input is used up.
    pub(crate) fn is_empty(&self) -> bool {
        self.u.is_empty()
    }

    pub(crate) fn byte(&mut self) -> u8 {
        self.u.arbitrary().unwrap_or(0)
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.u.choose_index(n).unwrap_or(0)
    }

    pub(crate) fn u16(&mut self) -> u16 {
        self.u.arbitrary().unwrap_or(0)
    }

    pub(crate) fn u64(&mut self) -> u64 {
        self.u.arbitrary().unwrap_or(0)
    }

    /// Up to `max` raw bytes of the input.
    pub(crate) fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = self.below(max + 1).min(self.u.len());
        self.u.bytes(n).unwrap_or_default()
    }

    /// One of `items`.
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Well-formed and near-miss chat completion bodies, and SSE pieces, for upstream answers.
pub(crate) const UPSTREAM_BODIES: &[&str] = &[
    r#"{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#,
    r#"{"error":{"message":"slow down","type":"rate_limit","code":"rate_limit_exceeded"}}"#,
    r#"{"error":{"message":"bad","type":"invalid_request_error","code":"context_length_exceeded"}}"#,
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"error\":{\"message\":\"overloaded\"}}\n\n",
    "data: not json\n\n",
    "data: [DONE]\n\n",
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\"}}\n\n",
    r#"{"truncated": "#,
    "<html>nope</html>",
    "",
];

/// Statuses an upstream answers with.
pub(crate) const STATUSES: &[u16] = &[
    200, 200, 200, 429, 500, 502, 503, 504, 529, 400, 404, 408, 204, 301, 100,
];

/// Response header sets: content types and pushback.
pub(crate) const HEADER_SETS: &[&[(&str, &str)]] = &[
    &[("content-type", "application/json")],
    &[("content-type", "text/event-stream")],
    &[("content-type", "application/json"), ("retry-after", "2")],
    &[
        ("content-type", "application/json"),
        ("retry-after-ms", "150"),
    ],
    &[
        ("content-type", "application/json"),
        ("retry-after", "100000"),
    ],
    &[("content-type", "text/html")],
    &[],
];
