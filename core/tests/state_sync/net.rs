//! Replicas and one fake Redis on a virtual clock: each replica's `StateSync` driven as a
//! runtime drives it, bytes delivered at once, time jumping to the next timer.

use std::task::Waker;
use std::time::{Duration, Instant};

use switchback_core::block_table::SharedBlockTable;
use switchback_core::config::{parse_redis_url, RedisSettings};
use switchback_core::shared_state::{LinkId, RemoteRules, StateSync, SyncAction};

use super::fake_redis::FakeRedis;

pub const MODELS: [&str; 3] = ["openai/gpt-4o", "anthropic/claude-3-5-sonnet", "mistral/*"];

/// One gateway process, as far as sharing goes.
#[derive(Debug)]
pub struct Replica {
    pub sync: StateSync,
    pub blocks: SharedBlockTable,
    conns: [Option<u64>; 2],
    /// Connects asked for, per link.
    pub connects: usize,
}

fn slot(link: LinkId) -> usize {
    match link {
        LinkId::Commands => 0,
        LinkId::Subscriber => 1,
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct Net {
    pub redis: FakeRedis,
    pub replicas: Vec<Replica>,
    pub now: Instant,
    url: String,
}

impl Net {
    pub fn new(url: &str) -> Net {
        Net {
            redis: FakeRedis::new(),
            replicas: Vec::new(),
            now: crate::common::epoch(),
            url: url.to_string(),
        }
    }

    /// Starts one more replica (seeded by its index) and lets everything settle.
    pub fn add_replica(&mut self) -> usize {
        let settings = RedisSettings {
            endpoint: parse_redis_url(&self.url).expect("url"),
            key_prefix: "sb".to_string(),
        };
        let blocks = SharedBlockTable::new();
        let rules = RemoteRules::new(MODELS, Duration::from_secs(300));
        let seed = self.replicas.len() as u64 + 1;
        let sync = StateSync::new(&settings, blocks.clone(), rules, self.now, seed);
        self.replicas.push(Replica {
            sync,
            blocks,
            conns: [None, None],
            connects: 0,
        });
        self.settle();
        self.replicas.len() - 1
    }

    fn step(&mut self) -> bool {
        let now = self.now;
        let mut progress = false;
        for r in &mut self.replicas {
            r.sync.handle_records(now, Waker::noop());
            while let Some(action) = r.sync.poll_action() {
                progress = true;
                match action {
                    SyncAction::Connect { link, .. } => {
                        r.connects += 1;
                        match self.redis.accept() {
                            Some(id) => {
                                r.conns[slot(link)] = Some(id);
                                r.sync.handle_connected(now, link);
                            }
                            None => r.sync.handle_connect_failed(
                                now,
                                link,
                                "Connection refused (os error 111)",
                            ),
                        }
                    }
                    SyncAction::Close { link } => {
                        if let Some(id) = r.conns[slot(link)].take() {
                            self.redis.close(id);
                        }
                    }
                }
            }
            for link in [LinkId::Commands, LinkId::Subscriber] {
                let Some(id) = r.conns[slot(link)] else {
                    continue;
                };
                while let Some(buf) = r.sync.poll_transmit(link) {
                    let buf = buf.to_vec();
                    self.redis.receive(now, id, &buf);
                    r.sync.handle_written(now, link, buf.len());
                    progress = true;
                }
            }
        }
        for r in &mut self.replicas {
            for link in [LinkId::Commands, LinkId::Subscriber] {
                let Some(id) = r.conns[slot(link)] else {
                    continue;
                };
                let out = self.redis.take_output(id);
                if !out.is_empty() {
                    progress = true;
                    r.sync.handle_input(now, link, &out);
                } else if !self.redis.is_open(id) {
                    progress = true;
                    r.conns[slot(link)] = None;
                    self.redis.close(id);
                    r.sync.handle_eof(now, link);
                }
            }
        }
        progress
    }

    /// Runs until nothing more happens without time passing.
    pub fn settle(&mut self) {
        for _ in 0..10_000 {
            if !self.step() {
                return;
            }
        }
        panic!("the replicas never settle");
    }

    /// Lets `d` pass, firing every timer on the way.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..100_000 {
            self.settle();
            let next = self
                .replicas
                .iter()
                .filter_map(|r| r.sync.poll_timeout())
                .min();
            match next {
                Some(at) if at <= end => {
                    self.now = self.now.max(at);
                    for r in &mut self.replicas {
                        r.sync.handle_timeout(self.now);
                    }
                }
                _ => {
                    self.now = end;
                    self.settle();
                    return;
                }
            }
        }
        panic!("timers keep firing without time passing");
    }

    /// The server-side connection of replica `i`'s `link`.
    pub fn conn_of(&self, i: usize, link: LinkId) -> Option<u64> {
        self.replicas[i].conns[slot(link)]
    }
}
