//! A Redis in memory with a virtual clock: the commands the state-sync session sends
//! (AUTH, SELECT, PING, SUBSCRIBE, PUBLISH, EVAL of the write script, SCAN, PTTL,
//! GETRANGE, SET), keys with expiries, pub/sub, and the faults a real one has: down,
//! restarted empty, silent, or sending garbage.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use switchback_core::shared_state::resp::{decode, Value};

#[derive(Debug, Default)]
struct Conn {
    input: Vec<u8>,
    output: Vec<u8>,
    authed: bool,
    subscribed: BTreeSet<String>,
    open: bool,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct FakeRedis {
    /// Accepts connections.
    pub up: bool,
    /// Reads but never answers.
    pub silent: bool,
    /// `requirepass`.
    pub password: Option<String>,
    /// Keys returned per SCAN call.
    pub scan_page: usize,
    store: BTreeMap<String, (Vec<u8>, Instant)>,
    conns: BTreeMap<u64, Conn>,
    next_id: u64,
    /// Every command received, as text, in order.
    pub log: Vec<String>,
}

fn simple(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(format!("+{s}\r\n").as_bytes());
}
fn error(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(format!("-{s}\r\n").as_bytes());
}
fn int(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(format!(":{n}\r\n").as_bytes());
}
fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}
fn array_header(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(format!("*{n}\r\n").as_bytes());
}

impl FakeRedis {
    pub fn new() -> FakeRedis {
        FakeRedis {
            up: true,
            scan_page: 100,
            ..FakeRedis::default()
        }
    }

    /// A new connection, or `None` while down.
    pub fn accept(&mut self) -> Option<u64> {
        if !self.up {
            return None;
        }
        self.next_id += 1;
        let authed = self.password.is_none();
        self.conns.insert(
            self.next_id,
            Conn {
                authed,
                open: true,
                ..Conn::default()
            },
        );
        Some(self.next_id)
    }

    /// The client closed `id`.
    pub fn close(&mut self, id: u64) {
        self.conns.remove(&id);
    }

    /// Whether `id` is still open on the server's side.
    pub fn is_open(&self, id: u64) -> bool {
        self.conns.get(&id).is_some_and(|c| c.open)
    }

    /// Stops: every connection is closed, new ones are refused.
    pub fn go_down(&mut self) {
        self.up = false;
        for c in self.conns.values_mut() {
            c.open = false;
        }
    }

    /// Starts again with no data (no persistence).
    pub fn come_back_empty(&mut self) {
        self.store.clear();
        self.conns.retain(|_, c| c.open);
        self.up = true;
    }

    /// Sends `bytes` to connection `id` as if the server wrote them.
    pub fn inject(&mut self, id: u64, bytes: &[u8]) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.output.extend_from_slice(bytes);
        }
    }

    /// The key's remaining time at `now`, if it exists.
    pub fn pttl(&self, now: Instant, key: &str) -> Option<Duration> {
        let (_, exp) = self.store.get(key)?;
        (*exp > now).then(|| *exp - now)
    }

    /// Every live key at `now`.
    pub fn keys(&self, now: Instant) -> Vec<String> {
        self.store
            .iter()
            .filter(|(_, (_, exp))| *exp > now)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Stores `key` = `value` for `ttl` (as another writer would).
    pub fn set(&mut self, now: Instant, key: &str, value: &str, ttl: Duration) {
        self.store
            .insert(key.to_string(), (value.as_bytes().to_vec(), now + ttl));
    }

    /// Publishes `message` on `channel` (as another writer would).
    pub fn publish(&mut self, channel: &str, message: &[u8]) -> i64 {
        let mut n = 0;
        for c in self.conns.values_mut().filter(|c| c.open) {
            if c.subscribed.contains(channel) {
                array_header(&mut c.output, 3);
                bulk(&mut c.output, b"message");
                bulk(&mut c.output, channel.as_bytes());
                bulk(&mut c.output, message);
                n += 1;
            }
        }
        n
    }

    /// What the server wrote to `id` since the last call.
    pub fn take_output(&mut self, id: u64) -> Vec<u8> {
        self.conns
            .get_mut(&id)
            .map(|c| std::mem::take(&mut c.output))
            .unwrap_or_default()
    }

    /// Bytes the client wrote on `id`.
    pub fn receive(&mut self, now: Instant, id: u64, bytes: &[u8]) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if !c.open {
            return;
        }
        c.input.extend_from_slice(bytes);
        if self.silent {
            return;
        }
        loop {
            let c = self.conns.get_mut(&id).expect("connection");
            let Some((value, used)) = decode(&c.input).expect("the client sends RESP2") else {
                break;
            };
            c.input.drain(..used);
            let Value::Array(Some(items)) = value else {
                panic!("a command is an array: {value:?}");
            };
            let args: Vec<Vec<u8>> = items
                .into_iter()
                .map(|v| v.as_bytes().expect("bulk string").to_vec())
                .collect();
            self.command(now, id, &args);
        }
    }

    fn command(&mut self, now: Instant, id: u64, args: &[Vec<u8>]) {
        let text = |i: usize| String::from_utf8_lossy(&args[i]).into_owned();
        let name = text(0).to_ascii_uppercase();
        self.log.push(
            args.iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" "),
        );
        let mut out = Vec::new();
        let authed = self.conns[&id].authed;
        match name.as_str() {
            "AUTH" => {
                let given = text(args.len() - 1);
                if self.password.as_deref() == Some(given.as_str()) {
                    self.conns.get_mut(&id).expect("conn").authed = true;
                    simple(&mut out, "OK");
                } else {
                    error(
                        &mut out,
                        "WRONGPASS invalid username-password pair or user is disabled.",
                    );
                }
            }
            _ if !authed => error(&mut out, "NOAUTH Authentication required."),
            "SELECT" => simple(&mut out, "OK"),
            "PING" => {
                if self.conns[&id].subscribed.is_empty() {
                    simple(&mut out, "PONG");
                } else {
                    array_header(&mut out, 2);
                    bulk(&mut out, b"pong");
                    bulk(&mut out, b"");
                }
            }
            "SUBSCRIBE" => {
                let ch = text(1);
                let c = self.conns.get_mut(&id).expect("conn");
                c.subscribed.insert(ch.clone());
                array_header(&mut out, 3);
                bulk(&mut out, b"subscribe");
                bulk(&mut out, ch.as_bytes());
                int(&mut out, c.subscribed.len() as i64);
            }
            "PUBLISH" => {
                let n = self.publish(&text(1), &args[2]);
                int(&mut out, n);
            }
            "EVAL" => {
                // The write script: KEYS[1]; ARGV = px, stored, message, channel.
                let key = text(3);
                let px: u64 = text(4).parse().expect("px");
                let left = self.pttl(now, &key).map_or(-2, |d| d.as_millis() as i64);
                if left < px as i64 {
                    self.store
                        .insert(key, (args[5].clone(), now + Duration::from_millis(px)));
                    self.publish(&text(7), &args[6].clone());
                    int(&mut out, 1);
                } else {
                    int(&mut out, 0);
                }
            }
            "SCAN" => {
                let cursor: usize = text(1).parse().expect("cursor");
                let pattern = text(3);
                let prefix = pattern.trim_end_matches('*');
                self.store.retain(|_, (_, exp)| *exp > now);
                let keys: Vec<String> = self
                    .store
                    .keys()
                    .filter(|k| k.starts_with(prefix))
                    .cloned()
                    .collect();
                let page: Vec<&String> = keys.iter().skip(cursor).take(self.scan_page).collect();
                let next = cursor + page.len();
                let next = if next >= keys.len() { 0 } else { next };
                array_header(&mut out, 2);
                bulk(&mut out, next.to_string().as_bytes());
                array_header(&mut out, page.len());
                for k in page {
                    bulk(&mut out, k.as_bytes());
                }
            }
            "PTTL" => {
                let left = self
                    .pttl(now, &text(1))
                    .map_or(-2, |d| d.as_millis() as i64);
                int(&mut out, left);
            }
            "GETRANGE" => {
                let end: usize = text(3).parse().expect("end");
                let value = match self.store.get(&text(1)) {
                    Some((v, exp)) if *exp > now => v.clone(),
                    _ => Vec::new(),
                };
                bulk(&mut out, &value[..value.len().min(end + 1)]);
            }
            _ => error(&mut out, &format!("ERR unknown command '{name}'")),
        }
        if let Some(c) = self.conns.get_mut(&id) {
            c.output.extend_from_slice(&out);
        }
    }
}
