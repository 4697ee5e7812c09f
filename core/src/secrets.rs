//! Keeping credentials out of logs, error bodies and panic messages.
//!
//! The rules the core keeps:
//! - Provider keys and `headers:` values are [`Secret`]s from the moment they are loaded:
//!   their `Debug` and `Display` print `***`.
//! - Every credential header the gateway holds, its own or a client's, is a
//!   [`HeaderValue`] marked sensitive: `http`'s `Debug` then prints `Sensitive` instead of
//!   the value, so a request or header map printed with `{:?}` shows no secret.
//!   [`mark_client_credentials`] does this for a client's headers as they arrive;
//!   [`crate::provider::build_request`] for the upstream request's.
//! - Upstream error bodies shown to the client (passed through, or in the exhaustion
//!   error's `last_error`) are [`scrub`]bed of the target's own credentials, in case an
//!   upstream echoes what it was sent.
//! - Client-facing error text names a provider entry and an error class, never a URL,
//!   host or port (`machine::report`).

use std::fmt;

use bytes::Bytes;
use http::HeaderMap;

use crate::config::{Provider, Secret};

/// Request headers that carry credentials, lower-case.
pub const CREDENTIAL_HEADERS: [&str; 6] = [
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "cookie",
];

/// Values shorter than this are not scrubbed from bodies: a two-letter header value is
/// no credential, and replacing it everywhere would mangle the body.
const MIN_SCRUBBED_LEN: usize = 8;

/// What replaces a credential in a scrubbed body.
const REPLACEMENT: &[u8] = b"***";

/// Marks every credential header in `headers` sensitive, so that printing the map never
/// shows their values. Call it on a client's headers before keeping them anywhere.
pub fn mark_client_credentials(headers: &mut HeaderMap) {
    // One pass over the fields (a lookup per credential name would hash each name and may
    // grow the map).
    for (name, value) in headers.iter_mut() {
        if CREDENTIAL_HEADERS.contains(&name.as_str()) {
            value.set_sensitive(true);
        }
    }
}

/// A header map for `Debug` output: names shown, values of sensitive and credential
/// headers replaced by `<redacted>`.
pub struct Redacted<'a>(pub &'a HeaderMap);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in self.0 {
            if value.is_sensitive() || CREDENTIAL_HEADERS.contains(&name.as_str()) {
                map.entry(&name.as_str(), &format_args!("<redacted>"));
            } else {
                map.entry(&name.as_str(), value);
            }
        }
        map.finish()
    }
}

/// The credentials of a provider entry: its `access_key` and its `headers:` values.
pub fn provider_credentials(p: &Provider) -> impl Iterator<Item = &Secret> {
    p.access_key
        .iter()
        .chain(p.headers.iter().map(|(_, value)| value))
}

/// `body` with every occurrence of each secret (at least 8 bytes long) replaced by
/// `***`. Returns `body` itself, without a copy, when none occurs.
pub fn scrub<'a>(body: Bytes, secrets: impl IntoIterator<Item = &'a Secret>) -> Bytes {
    let mut out: Option<Vec<u8>> = None;
    for secret in secrets {
        let needle = secret.expose().as_bytes();
        if needle.len() < MIN_SCRUBBED_LEN {
            continue;
        }
        let current = out.as_deref().unwrap_or(&body);
        if find(current, needle).is_none() {
            continue;
        }
        out = Some(replace_all(current, needle));
    }
    out.map_or(body, Bytes::from)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn replace_all(haystack: &[u8], needle: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(i) = find(rest, needle) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(REPLACEMENT);
        rest = &rest[i + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn client_credentials_are_marked_and_redacted() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_static("Bearer sk-client-1"),
        );
        h.append("x-api-key", HeaderValue::from_static("client-key-2"));
        h.insert("content-type", HeaderValue::from_static("application/json"));
        mark_client_credentials(&mut h);
        let debug = format!("{h:?}");
        assert!(
            !debug.contains("sk-client-1") && !debug.contains("client-key-2"),
            "{debug}"
        );
        assert!(debug.contains("application/json"));
        let mut plain = HeaderMap::new();
        plain.insert("x-api-key", HeaderValue::from_static("client-key-3"));
        let redacted = format!("{:?}", Redacted(&plain));
        assert!(!redacted.contains("client-key-3") && redacted.contains("x-api-key"));
    }

    #[test]
    fn scrub_replaces_every_occurrence_and_skips_short_values() {
        let secrets = [Secret::new("sk-abcdefgh"), Secret::new("ab")];
        let body = Bytes::from_static(b"key sk-abcdefgh again sk-abcdefgh; ab stays");
        assert_eq!(
            scrub(body, &secrets),
            Bytes::from_static(b"key *** again ***; ab stays")
        );
        let clean = Bytes::from_static(b"nothing here");
        assert_eq!(scrub(clean.clone(), &secrets), clean);
    }
}
