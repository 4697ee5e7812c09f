//! The upstream HTTP/1.1 client codec shared by both runtimes.

mod target;

pub use target::{parse_base_url, Origin, Scheme, UrlError};
