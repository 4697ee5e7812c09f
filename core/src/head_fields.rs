//! Header fields parsed by `httparse` turned into an `http::HeaderMap` whose values share
//! the head's buffer instead of being copied one by one (both HTTP/1.1 codecs use it).

use std::ops::Range;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

/// Where each field's name and value lie in the head buffer, recorded while `httparse`
/// borrows the buffer, so the map can be built from the frozen bytes afterwards.
#[derive(Debug)]
pub(crate) struct FieldSpans {
    spans: Vec<(Range<usize>, Range<usize>)>,
}

impl FieldSpans {
    /// Records `fields`, slices of `buf`.
    pub(crate) fn record(buf: &[u8], fields: &[httparse::Header<'_>]) -> FieldSpans {
        let base = buf.as_ptr() as usize;
        let span = |s: &[u8]| {
            let start = (s.as_ptr() as usize).saturating_sub(base);
            start..start + s.len()
        };
        FieldSpans {
            spans: fields
                .iter()
                .map(|h| (span(h.name.as_bytes()), span(h.value)))
                .collect(),
        }
    }

    /// The header map over `head`, the same bytes the spans were recorded on. `Err` names
    /// the first field that is not a valid header name or value.
    pub(crate) fn into_map(self, head: &Bytes) -> Result<HeaderMap, String> {
        let mut map = HeaderMap::with_capacity(self.spans.len() + 4);
        for (name, value) in self.spans {
            let name_bytes = head.get(name).unwrap_or_default();
            let name = HeaderName::from_bytes(name_bytes).map_err(|_| {
                format!(
                    "invalid header name {:?}",
                    String::from_utf8_lossy(name_bytes)
                )
            })?;
            let value = head
                .get(value.clone())
                .map(|_| head.slice(value))
                .ok_or_else(|| format!("invalid value of {name}"))?;
            let value = HeaderValue::from_maybe_shared(value)
                .map_err(|_| format!("invalid value of {name}"))?;
            map.append(name, value);
        }
        Ok(map)
    }
}
