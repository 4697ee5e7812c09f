//! Blocks shared across replicas (spec §14), sans-IO.
//!
//! The shared [`BlockTable`](crate::block_table::BlockTable) emits what is worth sharing as
//! [`BlockRecord`] values (Retry-After blocks with `apply_to: global`, latency blocks and
//! latency events, open failure circuits) into a bounded [`Outbox`], and accepts records
//! from other replicas with [`apply_remote`](crate::block_table::BlockTable::apply_remote),
//! merging by "never shorten a block". [`StateSync`] is the Redis session that carries them:
//! a RESP2 codec ([`resp`]), one small state machine per connection, the wire format
//! ([`wire`]), driven by one task of the pump like any other sans-IO codec.
//!
//! What stays local: the retry budget, the failure runs that have not opened a circuit,
//! the half-open probe, and `apply_to: request` blocks. See `docs/scaling.md`.

mod commands;
mod link;
mod load;
mod outbox;
mod record;
pub mod resp;
mod session;
pub mod wire;

pub use link::{
    LinkId, CONNECT_TIMEOUT, HEALTH_INTERVAL, MAX_INPUT, RECONNECT_BASE, RECONNECT_MAX,
    REPLY_TIMEOUT,
};
pub use load::{MAX_LOADED_KEYS, STORED_BYTES};
pub use outbox::{Outbox, OUTBOX_CAPACITY};
pub use record::{BlockRecord, RecordKind};
pub use session::{StateSync, SyncAction, SyncStatus};
pub use wire::{Decoded, RemoteRules, WireRecord, WIRE_VERSION};
