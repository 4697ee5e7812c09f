//! `state:` (spec §14): where replicas share their blocks. Today one backend, Redis:
//! `state: {redis: {url: redis://host:6379/0, key_prefix: switchback}}`.
//!
//! The URL may carry credentials (`redis://:password@host`, `rediss://user:password@host`)
//! and may be written as a `$VAR` reference. No message here ever shows the URL or any part
//! of its user info: a finding names the field and what is wrong with it.

use std::fmt;
// Address values from `core::net` (plain data, no IO): nothing here opens a socket.
use core::net::{IpAddr, Ipv6Addr};

use serde::Deserialize;

use super::env::{expand, ExpandError};
use super::fields::text;
use super::raw::{Opt, Scalar, S};
use super::report::{join, Pos, Report};
use super::Secret;

/// The key prefix when `key_prefix` is not written.
pub const DEFAULT_KEY_PREFIX: &str = "switchback";
/// The longest `key_prefix` accepted.
const MAX_KEY_PREFIX: usize = 64;
/// The largest database index accepted (Redis's `databases` setting allows more than the
/// default 16; anything this large is certainly a typo).
const MAX_DB: u32 = 1 << 20;

/// `state:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawState {
    pub redis: Opt<RawRedis>,
}

/// `state.redis:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRedis {
    pub url: Opt<Scalar>,
    pub key_prefix: Opt<Scalar>,
}

/// The shared-state settings; the default shares nothing (each replica keeps its own).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateSettings {
    /// Share blocks through this Redis.
    pub redis: Option<RedisSettings>,
}

/// `state.redis`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// Where Redis is and how to log in.
    pub endpoint: RedisEndpoint,
    /// Every key and the channel the gateway uses start with this and a `:`.
    pub key_prefix: String,
}

/// A parsed `redis://` or `rediss://` URL. Its `Debug` and `Display` never show the
/// password (nor the user name).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisEndpoint {
    /// `rediss://`: TLS, verified against the bundled roots and `SWITCHBACK_CA_FILE`.
    pub tls: bool,
    /// DNS name or IP literal (IPv6 without brackets).
    pub host: String,
    /// TCP port (6379 when the URL names none).
    pub port: u16,
    /// The ACL user (`AUTH user password`); `None` logs in as the default user.
    pub username: Option<Secret>,
    /// `AUTH` with this when set.
    pub password: Option<Secret>,
    /// `SELECT` this database (the URL's path; 0 when it has none).
    pub db: u32,
}

impl RedisEndpoint {
    /// `host:port` as written in a URL (IPv6 in brackets), for log lines.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether the host is a loopback address (or `localhost`).
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for RedisEndpoint {
    /// `redis[s]://[***@]host:port/db`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let auth = if self.password.is_some() { "***@" } else { "" };
        write!(f, "{scheme}://{auth}{}/{}", self.authority(), self.db)
    }
}

impl fmt::Debug for RedisEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisEndpoint({self})")
    }
}

/// Why a Redis URL was refused. No variant holds any part of the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedisUrlError {
    #[error("must start with redis:// or rediss://")]
    Scheme,
    #[error("has no valid host name or IP address")]
    Host,
    #[error("has a port that is not a number from 1 to 65535")]
    Port,
    #[error("has a path that is not a database number, e.g. /0")]
    Database,
    #[error("must not carry a ?query or a #fragment; switchback reads only the host, port, credentials and database")]
    Query,
    #[error("has credentials with a malformed %-escape")]
    Escape,
    #[error("names a user but no password; write redis://user:password@host")]
    UserWithoutPassword,
}

/// Parses `redis://[[user]:password@]host[:port][/db]` (or `rediss://`). User and
/// password are %-decoded.
pub fn parse_redis_url(url: &str) -> Result<RedisEndpoint, RedisUrlError> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").ok_or(RedisUrlError::Scheme)?;
    let tls = if scheme.eq_ignore_ascii_case("redis") {
        false
    } else if scheme.eq_ignore_ascii_case("rediss") {
        true
    } else {
        return Err(RedisUrlError::Scheme);
    };
    if rest.contains('?') || rest.contains('#') {
        return Err(RedisUrlError::Query);
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, pass) = match info.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (info, None),
            };
            let user = percent_decode(user)?;
            let pass = pass.map(percent_decode).transpose()?;
            match (user.is_empty(), pass) {
                (true, None) => (None, None),
                (true, Some(p)) => (None, Some(Secret::new(p))),
                (false, None) => return Err(RedisUrlError::UserWithoutPassword),
                (false, Some(p)) => (Some(Secret::new(user)), Some(Secret::new(p))),
            }
        }
    };
    let (host, port) = split_host_port(hostport)?;
    let db = match path.trim_start_matches('/') {
        "" => 0,
        digits if digits.bytes().all(|b| b.is_ascii_digit()) => digits
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= MAX_DB)
            .ok_or(RedisUrlError::Database)?,
        _ => return Err(RedisUrlError::Database),
    };
    Ok(RedisEndpoint {
        tls,
        host,
        port,
        username,
        password,
        db,
    })
}

fn split_host_port(authority: &str) -> Result<(String, u16), RedisUrlError> {
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (literal, after) = inner.split_once(']').ok_or(RedisUrlError::Host)?;
        literal
            .parse::<Ipv6Addr>()
            .map_err(|_| RedisUrlError::Host)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(RedisUrlError::Host)?),
        };
        (literal, port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':');
    if host.is_empty() || !host.chars().all(valid) {
        return Err(RedisUrlError::Host);
    }
    let port = match port {
        None => 6379,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or(RedisUrlError::Port)?,
    };
    Ok((host.to_string(), port))
}

fn percent_decode(s: &str) -> Result<String, RedisUrlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(RedisUrlError::Escape)?;
            let hex = std::str::from_utf8(hex).map_err(|_| RedisUrlError::Escape)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| RedisUrlError::Escape)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| RedisUrlError::Escape)
}

/// Converts `state:` found at `path`. `env` expands `$VAR` references in the URL.
pub(crate) fn convert_state(
    rep: &mut Report,
    raw: &S<RawState>,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> StateSettings {
    let Some(redis) = &raw.value.redis else {
        return StateSettings::default();
    };
    StateSettings {
        redis: convert_redis(rep, redis, &join(path, "redis"), env),
    }
}

fn convert_redis(
    rep: &mut Report,
    raw: &S<RawRedis>,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<RedisSettings> {
    let url_path = join(path, "url");
    let endpoint = match &raw.value.url {
        None => {
            rep.error(
                path,
                Pos::at(raw),
                "`url` is required, e.g. `url: redis://redis.internal:6379/0` (or `url: $REDIS_URL`)",
            );
            None
        }
        Some(v) => endpoint(rep, v, &url_path, env),
    };
    let key_prefix = match &raw.value.key_prefix {
        None => Some(DEFAULT_KEY_PREFIX.to_string()),
        Some(v) => key_prefix(rep, v, &join(path, "key_prefix")),
    };
    let endpoint = endpoint?;
    if endpoint.password.is_some() && !endpoint.tls && !endpoint.is_loopback() {
        let pos = raw.value.url.as_ref().map(Pos::at).unwrap_or_default();
        rep.warn(
            &url_path,
            pos,
            "the Redis password is sent in clear text to a host that is not this machine; use rediss:// so the connection is encrypted",
        );
    }
    Some(RedisSettings {
        endpoint,
        key_prefix: key_prefix?,
    })
}

fn endpoint(
    rep: &mut Report,
    v: &S<Scalar>,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<RedisEndpoint> {
    let Scalar::Str(written) = &v.value else {
        rep.error(
            path,
            Pos::at(v),
            format!(
                "`url` must be a redis:// or rediss:// URL, but it is {}",
                v.value.kind()
            ),
        );
        return None;
    };
    let url = match expand(written, env) {
        Ok(url) => url,
        Err(ExpandError::Unset(var)) => {
            rep.error(
                path,
                Pos::at(v),
                format!("the Redis URL uses ${var}, which is not set; set {var} in the environment or in a .env file beside the config (write $$ for a literal $)"),
            );
            return None;
        }
        Err(ExpandError::Malformed(_)) => {
            rep.error(
                path,
                Pos::at(v),
                "the Redis URL has a malformed `${...}` reference; write ${NAME} with letters, digits and _ only (write $$ for a literal $)",
            );
            return None;
        }
    };
    match parse_redis_url(&url) {
        Ok(e) => Some(e),
        Err(why) => {
            rep.error(path, Pos::at(v), format!("the Redis URL {why}"));
            None
        }
    }
}

fn key_prefix(rep: &mut Report, v: &S<Scalar>, path: &str) -> Option<String> {
    let prefix = text(v);
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':');
    let valid = matches!(v.value, Scalar::Str(_) | Scalar::Int(_))
        && !prefix.is_empty()
        && prefix.len() <= MAX_KEY_PREFIX
        && prefix.chars().all(allowed);
    if valid {
        return Some(prefix);
    }
    rep.error(
        path,
        Pos::at(v),
        format!("`key_prefix` must be 1 to {MAX_KEY_PREFIX} characters of letters, digits, `_`, `-`, `.` and `:` (it starts every Redis key and channel the gateway uses), e.g. `switchback-prod`"),
    );
    None
}
