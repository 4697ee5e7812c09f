//! [`StateSync`]: the sans-IO session that keeps one replica's shared block table in step
//! with Redis (spec §14). A runtime drives it like the upstream codec: it carries out
//! [`SyncAction`]s (connect, close), writes [`poll_transmit`](StateSync::poll_transmit),
//! feeds back what it reads, and arms [`poll_timeout`](StateSync::poll_timeout). It never
//! blocks a request: requests only touch the block table, whose outbox this session drains.
//!
//! Two connections:
//! - **commands**: `AUTH`/`SELECT` from the URL, then a load of the current blocks
//!   (`SCAN` + `PTTL` + `GETRANGE`), then for each local record one `EVAL` that stores the
//!   block with a `PX` expiry unless Redis already has it for longer, and publishes it when
//!   it stored it; latency events are only published.
//! - **subscriber**: `AUTH`, then `SUBSCRIBE` to the deployment's channel; every message
//!   from another replica is applied to the table.
//!
//! A load runs each time the subscriber is (re)subscribed and each time the commands
//! connection is (re)established, so nothing published while a replica was away is missed
//! for longer than the outage. On each reconnect of the commands connection the replica
//! also writes every block it still holds, so a Redis that restarted empty is filled again.
//! A failure of either connection closes it and reconnects it after a capped, jittered,
//! doubling backoff ([`RECONNECT_MAX`](super::link::RECONNECT_MAX)); the first failure of an
//! outage is logged once at `warn`, its end once at `info`.

use std::collections::VecDeque;
use std::task::Waker;
use std::time::Instant;

use super::commands;
use super::link::{Expect, Link, LinkId, Phase, CONNECT_TIMEOUT};
use super::load::Load;
use super::record::BlockRecord;
use super::resp::Value;
use super::wire::{self, RemoteRules};
use crate::block_table::SharedBlockTable;
use crate::config::{RedisEndpoint, RedisSettings};
use crate::gateway::Gateway;
use crate::upstream::Origin;

/// The most requests awaiting replies on the commands connection.
const MAX_IN_FLIGHT: usize = 128;

/// What the runtime must do for the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncAction {
    /// Open a TCP connection to `origin` (TLS when its scheme is `https`, i.e. the URL was
    /// `rediss://`, with SNI = host); report with
    /// [`handle_connected`](StateSync::handle_connected) or
    /// [`handle_connect_failed`](StateSync::handle_connect_failed). The session bounds the
    /// time itself ([`CONNECT_TIMEOUT`]) and sends `Close` when it gives up.
    Connect { link: LinkId, origin: Origin },
    /// Drop this link's connection (or the connect in progress).
    Close { link: LinkId },
}

/// Counters for tests and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// The commands connection is ready.
    pub commands_ready: bool,
    /// The subscriber is subscribed.
    pub subscribed: bool,
    /// Outages begun (each logged once).
    pub outages: u64,
    /// Local records sent to Redis.
    pub records_sent: u64,
    /// Records from other replicas applied (messages and loaded keys).
    pub records_applied: u64,
    /// Loads completed.
    pub loads: u64,
}

/// The session. See the module docs.
#[derive(Debug)]
pub struct StateSync {
    endpoint: RedisEndpoint,
    prefix: String,
    channel: String,
    blocks: SharedBlockTable,
    rules: RemoteRules,
    replica: u64,
    rng: fastrand::Rng,
    commands: Link,
    subscriber: Link,
    actions: VecDeque<SyncAction>,
    load: Option<Load>,
    /// Another load is due once the current one ends (or when the link is ready).
    load_wanted: bool,
    /// In an outage that has been logged: since when.
    outage_since: Option<Instant>,
    ever_up: bool,
    /// A Redis error reply has been logged since the commands link was last ready.
    error_logged: bool,
    status: SyncStatus,
}

impl StateSync {
    /// A session for `settings` that keeps `blocks` in step, accepting remote records by
    /// `rules`. Turns sharing on in `blocks` and asks for both connections at once.
    /// `seed` drives the reconnect jitter and this replica's id.
    pub fn new(
        settings: &RedisSettings,
        blocks: SharedBlockTable,
        rules: RemoteRules,
        now: Instant,
        seed: u64,
    ) -> StateSync {
        blocks.lock().enable_sharing();
        let mut rng = fastrand::Rng::with_seed(seed);
        let replica = rng.u64(1..);
        let origin = commands::origin_of(&settings.endpoint);
        let actions = [LinkId::Commands, LinkId::Subscriber]
            .into_iter()
            .map(|link| SyncAction::Connect {
                link,
                origin: origin.clone(),
            })
            .collect();
        StateSync {
            endpoint: settings.endpoint.clone(),
            prefix: settings.key_prefix.clone(),
            channel: wire::channel(&settings.key_prefix, settings.endpoint.db),
            blocks,
            rules,
            replica,
            rng,
            commands: Link::connecting(now),
            subscriber: Link::connecting(now),
            actions,
            load: None,
            load_wanted: false,
            outage_since: None,
            ever_up: false,
            error_logged: false,
            status: SyncStatus::default(),
        }
    }

    /// The session for `gateway`'s `state.redis`, if it has one.
    pub fn for_gateway(gateway: &Gateway, now: Instant, seed: u64) -> Option<StateSync> {
        let settings = gateway.config().state.redis.as_ref()?;
        let rules = RemoteRules::for_gateway(gateway);
        Some(StateSync::new(
            settings,
            gateway.blocks().clone(),
            rules,
            now,
            seed,
        ))
    }

    /// Where Redis is (credentials hidden), for logs.
    pub fn endpoint(&self) -> &RedisEndpoint {
        &self.endpoint
    }

    /// This replica's id on the wire.
    pub fn replica_id(&self) -> u64 {
        self.replica
    }

    /// The counters.
    pub fn status(&self) -> SyncStatus {
        SyncStatus {
            commands_ready: self.commands.ready,
            subscribed: self.subscriber.ready,
            ..self.status
        }
    }

    /// Accepts remote records by `rules` from now on. Call it when the gateway is
    /// reloaded (spec §13), with [`RemoteRules::for_gateway`] of the new gateway, so a
    /// model the new config adds is accepted and a longer block it allows is not cut.
    /// Blocks already applied stay as they are.
    pub fn set_rules(&mut self, rules: RemoteRules) {
        self.rules = rules;
    }

    /// The rules remote records are accepted by now.
    pub fn rules(&self) -> &RemoteRules {
        &self.rules
    }

    /// The next thing the runtime must do; drain after every `handle_*`.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<SyncAction> {
        self.actions.pop_front()
    }

    /// Bytes to write on `link`'s connection now.
    #[must_use]
    pub fn poll_transmit(&self, link: LinkId) -> Option<&[u8]> {
        self.link(link).transmit()
    }

    /// `n` bytes of [`poll_transmit`](Self::poll_transmit) were written.
    pub fn handle_written(&mut self, now: Instant, link: LinkId, n: usize) {
        self.link_mut(link).written(now, n);
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.commands.next_timeout(), self.subscriber.next_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Takes the records waiting in the block table's outbox and sends them, as far as
    /// the commands connection is ready and has room; registers `waker` to be woken when
    /// the next record arrives. Call it every time the driving task runs.
    pub fn handle_records(&mut self, now: Instant, waker: &Waker) {
        let records = {
            let mut table = self.blocks.lock();
            table.set_share_waker(waker);
            let room = MAX_IN_FLIGHT.saturating_sub(self.commands.in_flight());
            if !self.commands.ready || room == 0 {
                return;
            }
            table.take_shared(room)
        };
        for record in records {
            self.send_record(now, &record);
        }
    }

    /// `link`'s connection is up.
    pub fn handle_connected(&mut self, now: Instant, link: LinkId) {
        let auth = commands::auth_args(&self.endpoint);
        let db = self.endpoint.db;
        let channel = self.channel.clone();
        let l = self.link_mut(link);
        if !matches!(l.phase, Phase::Connecting(_)) {
            return;
        }
        l.opened(now);
        if let Some(args) = &auth {
            let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            l.send(now, &args, Expect::Auth);
            l.handshake_left += 1;
        }
        match link {
            LinkId::Commands => {
                if db != 0 {
                    let db = db.to_string();
                    l.send(now, &[b"SELECT", db.as_bytes()], Expect::Select);
                    l.handshake_left += 1;
                }
                if l.handshake_left == 0 {
                    self.commands_ready(now);
                }
            }
            LinkId::Subscriber => {
                l.send(now, &[b"SUBSCRIBE", channel.as_bytes()], Expect::Subscribe);
            }
        }
    }

    /// Connecting `link` failed (`detail` from the OS or TLS; it never holds the URL).
    pub fn handle_connect_failed(&mut self, now: Instant, link: LinkId, detail: &str) {
        self.fail(now, link, &format!("cannot connect: {detail}"));
    }

    /// Bytes read from `link`'s connection.
    pub fn handle_input(&mut self, now: Instant, link: LinkId, data: &[u8]) {
        if self.link(link).phase != Phase::Open {
            return;
        }
        if let Err(why) = self.link_mut(link).receive(now, data) {
            self.fail(now, link, &why);
            return;
        }
        loop {
            let value = match self.link_mut(link).next_value() {
                Ok(Some(v)) => v,
                Ok(None) => break,
                Err(e) => {
                    self.fail(now, link, &format!("not a Redis reply: {e}"));
                    return;
                }
            };
            let handled = match link {
                LinkId::Commands => self.on_command_reply(now, value),
                LinkId::Subscriber => self.on_subscriber_value(now, value),
            };
            if let Err(why) = handled {
                self.fail(now, link, &why);
                return;
            }
        }
        self.pump_load(now);
    }

    /// The peer closed `link`'s connection.
    pub fn handle_eof(&mut self, now: Instant, link: LinkId) {
        self.fail(now, link, "Redis closed the connection");
    }

    /// Reading or writing `link`'s connection failed.
    pub fn handle_io_error(&mut self, now: Instant, link: LinkId, detail: &str) {
        self.fail(now, link, &format!("connection failed: {detail}"));
    }

    /// Time passed: reconnects that are due, connects and replies that took too long,
    /// health checks. Early or repeated calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        for link in [LinkId::Commands, LinkId::Subscriber] {
            match self.link(link).phase {
                Phase::Waiting(at) if now >= at => {
                    let origin = commands::origin_of(&self.endpoint);
                    self.link_mut(link).phase = Phase::Connecting(now + CONNECT_TIMEOUT);
                    self.actions.push_back(SyncAction::Connect { link, origin });
                }
                Phase::Connecting(deadline) if now >= deadline => {
                    self.fail(now, link, "connecting timed out");
                }
                Phase::Open if self.link(link).reply_overdue(now) => {
                    self.fail(now, link, "Redis did not answer in time");
                }
                Phase::Open if self.link(link).due_ping(now) => {
                    self.link_mut(link).send(now, &[b"PING"], Expect::Ping);
                }
                _ => {}
            }
        }
    }

    fn link(&self, link: LinkId) -> &Link {
        match link {
            LinkId::Commands => &self.commands,
            LinkId::Subscriber => &self.subscriber,
        }
    }

    fn link_mut(&mut self, link: LinkId) -> &mut Link {
        match link {
            LinkId::Commands => &mut self.commands,
            LinkId::Subscriber => &mut self.subscriber,
        }
    }

    /// Closes `link`, schedules its reconnect, and logs the outage once.
    fn fail(&mut self, now: Instant, link: LinkId, why: &str) {
        let why = self.scrubbed(why);
        let was = self.link(link).phase;
        if was != Phase::Open && !matches!(was, Phase::Connecting(_)) {
            return;
        }
        let u = 0.5 + self.rng.f64() / 2.0;
        let wait = self.link_mut(link).reset(now, u);
        self.actions.push_back(SyncAction::Close { link });
        if link == LinkId::Commands {
            if self.load.take().is_some() {
                self.load_wanted = true;
            }
            self.error_logged = false;
        }
        if self.outage_since.is_none() {
            self.outage_since = Some(now);
            self.status.outages += 1;
            tracing::warn!(
                redis = %self.endpoint,
                reason = %why,
                "shared state: Redis is unavailable; serving on this replica's own blocks and reconnecting with backoff"
            );
        } else {
            tracing::debug!(redis = %self.endpoint, ?link, reason = %why, retry_ms = wait.as_millis() as u64, "shared state: Redis still unavailable");
        }
    }

    /// `why` with the URL's credentials replaced, in case an error echoes them.
    fn scrubbed(&self, why: &str) -> String {
        let mut out = why.to_string();
        for secret in [&self.endpoint.password, &self.endpoint.username]
            .into_iter()
            .flatten()
        {
            if !secret.expose().is_empty() {
                out = out.replace(secret.expose(), "***");
            }
        }
        out
    }

    fn commands_ready(&mut self, now: Instant) {
        self.commands.became_ready();
        self.blocks.lock().share_live_blocks(now);
        self.start_load(now);
        self.check_up(now);
    }

    fn subscribed(&mut self, now: Instant) {
        self.subscriber.became_ready();
        self.start_load(now);
        self.check_up(now);
    }

    /// Logs the end of an outage (or the first connection) once both links are ready.
    fn check_up(&mut self, now: Instant) {
        if !(self.commands.ready && self.subscriber.ready) {
            return;
        }
        if let Some(since) = self.outage_since.take() {
            let down_ms = now.saturating_duration_since(since).as_millis() as u64;
            tracing::info!(redis = %self.endpoint, down_ms, "shared state: Redis is reachable again; loading its blocks");
        }
        if !self.ever_up {
            tracing::info!(redis = %self.endpoint, key_prefix = %self.prefix, "shared state: sharing blocks through Redis");
        }
        self.ever_up = true;
    }

    fn start_load(&mut self, now: Instant) {
        if self.load.is_some() || !self.commands.ready {
            self.load_wanted = true;
            return;
        }
        self.load_wanted = false;
        self.load = Some(Load::new());
        self.pump_load(now);
    }

    /// Sends the load's next requests as far as the window allows; ends it when done.
    fn pump_load(&mut self, now: Instant) {
        let Some(load) = &mut self.load else {
            if self.load_wanted && self.commands.ready {
                self.start_load(now);
            }
            return;
        };
        if load.pump(now, &mut self.commands, &self.prefix, MAX_IN_FLIGHT) {
            self.load = None;
            self.status.loads += 1;
            tracing::debug!(
                redis = %self.endpoint,
                records_applied = self.status.records_applied,
                "shared state: loaded the blocks stored in Redis"
            );
            if self.load_wanted {
                self.start_load(now);
            }
        }
    }

    fn send_record(&mut self, now: Instant, record: &BlockRecord) {
        let sent = commands::write_record(
            &mut self.commands,
            now,
            &self.prefix,
            &self.channel,
            self.replica,
            record,
        );
        if sent {
            self.status.records_sent += 1;
        }
    }

    fn on_command_reply(&mut self, now: Instant, value: Value) -> Result<(), String> {
        let Some(expect) = self.commands.answered(now) else {
            return Err("a reply nothing asked for".to_string());
        };
        match (expect, value) {
            (Expect::Auth | Expect::Select, Value::Error(e)) => {
                Err(format!("Redis refused the login or database: {e}"))
            }
            (Expect::Auth | Expect::Select, _) => {
                self.commands.handshake_left = self.commands.handshake_left.saturating_sub(1);
                if self.commands.handshake_left == 0 && !self.commands.ready {
                    self.commands_ready(now);
                }
                Ok(())
            }
            (Expect::Scan, value) => {
                let Some(load) = &mut self.load else {
                    return Ok(());
                };
                if let Some(error) = load.on_scan(value, &self.prefix)? {
                    self.log_error_reply(&error);
                }
                Ok(())
            }
            (Expect::Pttl, value) => {
                if let Some(load) = &mut self.load {
                    load.on_pttl(&value);
                }
                Ok(())
            }
            (Expect::Get(key), value) => {
                let ttl = self.load.as_mut().and_then(Load::take_pttl);
                if let (Some(ttl), Some(bytes)) = (ttl.filter(|t| *t > 0), value.as_bytes()) {
                    self.apply_stored(now, &key, bytes, ttl as u64);
                }
                Ok(())
            }
            (Expect::Write | Expect::Publish | Expect::Ping, Value::Error(e)) => {
                self.log_error_reply(&e);
                Ok(())
            }
            (Expect::Write | Expect::Publish | Expect::Ping | Expect::Subscribe, _) => Ok(()),
        }
    }

    fn log_error_reply(&mut self, error: &str) {
        let error = self.scrubbed(error);
        if self.error_logged {
            tracing::debug!(redis = %self.endpoint, %error, "shared state: Redis refused a write");
        } else {
            self.error_logged = true;
            tracing::warn!(redis = %self.endpoint, %error, "shared state: Redis refused a write; blocks stay on this replica (is it a read-only replica, or are scripts disabled?)");
        }
    }

    fn apply_stored(&mut self, now: Instant, key: &str, json: &[u8], ttl_ms: u64) {
        let Some(decoded) = self.rules.decode(json, now, Some(ttl_ms)) else {
            return;
        };
        let record = decoded.record;
        if wire::redis_key(&self.prefix, record.kind(), record.key()) != key {
            return;
        }
        self.blocks.lock().apply_remote(now, &record);
        self.status.records_applied += 1;
    }

    fn on_subscriber_value(&mut self, now: Instant, value: Value) -> Result<(), String> {
        let items = match value {
            Value::Array(Some(items)) => items,
            Value::Error(e) => {
                return Err(format!("Redis refused the login or the subscription: {e}"))
            }
            _ => {
                // `+OK` to AUTH.
                if self
                    .subscriber
                    .answered_where(now, |e| *e == Expect::Auth)
                    .is_none()
                {
                    return Err("a reply nothing asked for".to_string());
                }
                return Ok(());
            }
        };
        match items.first().and_then(Value::as_str) {
            Some("message") => {
                if let Some(payload) = items.get(2).and_then(Value::as_bytes) {
                    self.apply_message(now, payload);
                }
            }
            Some("subscribe") => {
                self.subscriber
                    .answered_where(now, |e| *e == Expect::Subscribe);
                self.subscribed(now);
            }
            Some("pong") => {
                self.subscriber.answered_where(now, |e| *e == Expect::Ping);
            }
            _ => {}
        }
        Ok(())
    }

    fn apply_message(&mut self, now: Instant, payload: &[u8]) {
        let Some(decoded) = self.rules.decode(payload, now, None) else {
            return;
        };
        if decoded.from == Some(self.replica) {
            return;
        }
        self.blocks.lock().apply_remote(now, &decoded.record);
        self.status.records_applied += 1;
    }
}
