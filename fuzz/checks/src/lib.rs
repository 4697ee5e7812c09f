//! The logic of every fuzz target, as plain functions over arbitrary bytes.
//!
//! Each `check_*` function takes one fuzz input, drives one part of the core with it and
//! panics when an invariant breaks. The cargo-fuzz targets in `fuzz/fuzz_targets/` are one
//! line each (`check_x(data)`), and the stable test `tests/corpus.rs` feeds every file under
//! `fuzz/corpus/<target>/` through the same function, so `cargo test --workspace` exercises
//! the committed corpus without nightly or libFuzzer.
//!
//! [`TARGETS`] lists every target by its cargo-fuzz name. To add one (the translators of
//! `core/src/apis/` are `translators`), write a module with a `check` function, add
//! it to [`TARGETS`], add a one-line target in `fuzz/fuzz_targets/` and its `[[bin]]` in
//! `fuzz/Cargo.toml`, and commit a corpus under `fuzz/corpus/<name>/`.

mod anthropic;
mod client_stream;
mod config;
mod connection;
mod pushback;
mod response_stream;
mod retry_machine;
mod retry_policies;
mod script;
mod server_codec;
mod sse;
mod translators;
mod upstream;

pub use anthropic::check as check_anthropic;
pub use config::check as check_config_parser;
pub use connection::check as check_connection;
pub use pushback::check as check_pushback;
pub use retry_machine::check as check_retry_machine;
pub use server_codec::check as check_server_codec;
pub use sse::check as check_sse_framer;
pub use translators::check as check_translators;
pub use upstream::check as check_upstream_exchange;

/// One fuzz target: its cargo-fuzz name (also its corpus directory) and its check.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub check: fn(&[u8]),
}

/// Every fuzz target, by the name `cargo fuzz run NAME` knows it under.
pub const TARGETS: &[Target] = &[
    Target {
        name: "config_parser",
        check: check_config_parser,
    },
    Target {
        name: "pushback",
        check: check_pushback,
    },
    Target {
        name: "sse_framer",
        check: check_sse_framer,
    },
    Target {
        name: "upstream_exchange",
        check: check_upstream_exchange,
    },
    Target {
        name: "server_codec",
        check: check_server_codec,
    },
    Target {
        name: "connection",
        check: check_connection,
    },
    Target {
        name: "retry_machine",
        check: check_retry_machine,
    },
    Target {
        name: "anthropic",
        check: check_anthropic,
    },
    // `translators` (the inbound API translators of core/src/apis/) goes here.
    Target {
        name: "translators",
        check: check_translators,
    },
];
