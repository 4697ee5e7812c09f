//! The upstream HTTP/1.1 client codec shared by both runtimes.
//!
//! Sans-IO: [`Exchange`] turns an [`UpstreamHttpRequest`] into bytes to write and turns the
//! bytes read back into [`ExchangeEvent`]s. The runtimes own sockets, TLS, timers and connection
//! pools (keyed by [`Origin`]); everything about HTTP framing lives here, so upstream behaviour
//! cannot drift between runtimes. Heads are parsed with `httparse`, bodies framed by the rules
//! in `framing` (RFC 9112 §6.3), chunked bodies decoded by the same strict decoder as client
//! request bodies.

mod error;
mod exchange;
mod framing;
mod pool;
mod request;
mod target;

#[cfg(test)]
mod tests;

pub use error::ExchangeError;
pub use exchange::{Exchange, ExchangeEvent, MAX_HEAD_BYTES, MAX_HEAD_FIELDS};
pub use pool::{IdlePool, MAX_IDLE_PER_ORIGIN, MAX_IDLE_TIME};
pub use request::UpstreamHttpRequest;
pub use target::{parse_base_url, Origin, Scheme, UrlError};
