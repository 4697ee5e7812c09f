//! The commands the session sends, built from records and the URL: the write script, a
//! publish, the login, and where to connect.

use std::time::Instant;

use super::link::{Expect, Link};
use super::record::BlockRecord;
use super::wire;
use crate::config::RedisEndpoint;
use crate::upstream::{Origin, Scheme};

/// Stores the block unless Redis holds it for longer, and publishes it when it stored
/// it. `KEYS[1]` the block's key; `ARGV`: milliseconds left, stored JSON, message JSON,
/// channel.
pub(crate) const WRITE_SCRIPT: &[u8] = b"local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
  redis.call('PUBLISH', ARGV[4], ARGV[3])
  return 1
end
return 0";

/// Queues on `link` what shares `record` from replica `replica` at `now`: the write
/// script for a block, a `PUBLISH` on `channel` for a latency event. False when there is
/// nothing to send (the block has already ended).
pub(crate) fn write_record(
    link: &mut Link,
    now: Instant,
    prefix: &str,
    channel: &str,
    replica: u64,
    record: &BlockRecord,
) -> bool {
    let Some(message) = wire::encode_message(record, replica, now) else {
        return false;
    };
    match wire::encode_stored(record, now) {
        Some((stored, px)) => {
            let key = wire::redis_key(prefix, record.kind(), record.key());
            let px = px.to_string();
            let args: [&[u8]; 8] = [
                b"EVAL",
                WRITE_SCRIPT,
                b"1",
                key.as_bytes(),
                px.as_bytes(),
                stored.as_bytes(),
                message.as_bytes(),
                channel.as_bytes(),
            ];
            link.send(now, &args, Expect::Write);
        }
        None => {
            let args: [&[u8]; 3] = [b"PUBLISH", channel.as_bytes(), message.as_bytes()];
            link.send(now, &args, Expect::Publish);
        }
    }
    true
}

/// Where to connect for `endpoint` (`https` stands for TLS).
pub(crate) fn origin_of(endpoint: &RedisEndpoint) -> Origin {
    Origin {
        scheme: if endpoint.tls {
            Scheme::Https
        } else {
            Scheme::Http
        },
        host: endpoint.host.clone(),
        port: endpoint.port,
    }
}

/// The `AUTH` command of `endpoint`, if it has a password.
pub(crate) fn auth_args(endpoint: &RedisEndpoint) -> Option<Vec<Vec<u8>>> {
    let password = endpoint.password.as_ref()?;
    let mut args = vec![b"AUTH".to_vec()];
    if let Some(user) = &endpoint.username {
        args.push(user.expose().as_bytes().to_vec());
    }
    args.push(password.expose().as_bytes().to_vec());
    Some(args)
}
