//! Where an upstream request goes: [`Origin`] and base-URL parsing.

use core::net::Ipv6Addr;
use std::fmt;

/// The transport an [`Origin`] is reached over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// Plain TCP.
    Http,
    /// TLS over TCP.
    Https,
}

impl Scheme {
    /// The port used when a URL names none: 80 for `http`, 443 for `https`.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// The lowercase scheme name, as written in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Where an upstream request goes: scheme, host and port.
///
/// Two requests with equal origins may share a connection, so a runtime can use an `Origin` as
/// its connection-pool key. `host` is stored lowercase and, for IPv6 literals, without the
/// brackets (`::1`, not `[::1]`), which is the form name resolution and TLS expect.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// DNS name or IP literal; IPv6 without brackets.
    pub host: String,
    /// TCP port (the scheme's default when the URL named none).
    pub port: u16,
}

impl Origin {
    /// The value of the `Host` header for this origin: `host[:port]`, with the port omitted when
    /// it is the scheme's default and IPv6 literals put in brackets.
    pub fn host_header(&self) -> String {
        let host = self.bracketed_host();
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The host as written inside a URL: IPv6 literals in brackets, other hosts unchanged.
    pub fn bracketed_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

impl fmt::Display for Origin {
    /// `scheme://host:port`, always with the port.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:{}",
            self.scheme.as_str(),
            self.bracketed_host(),
            self.port
        )
    }
}

/// Why a base URL was rejected by [`parse_base_url`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The scheme is missing or is not `http`/`https`.
    #[error("unsupported URL scheme in {0:?}: only http:// and https:// are allowed")]
    UnsupportedScheme(String),
    /// The URL carries `user:password@` credentials.
    #[error("credentials in the URL are not allowed; configure them as provider keys")]
    UserInfo,
    /// The URL carries a `#fragment`.
    #[error("a fragment (#...) is not allowed in a base URL")]
    Fragment,
    /// The URL carries a `?query`, which cannot be joined with an endpoint path.
    #[error("a query (?...) is not allowed in a base URL")]
    Query,
    /// The host part is empty or not a valid DNS name / IP literal.
    #[error("invalid host {0:?} in URL")]
    InvalidHost(String),
    /// The port is empty, not a number, or outside 1..=65535.
    #[error("invalid port {0:?} in URL")]
    InvalidPort(String),
    /// The path holds characters that cannot go on the request line.
    #[error("invalid path {0:?} in URL")]
    InvalidPath(String),
}

/// Parse a provider base URL such as `http://127.0.0.1:8080/openai/v1` into its [`Origin`] and
/// base path.
///
/// The returned path has no trailing slash (`""` for `http://host/`), so an endpoint is joined
/// as `format!("{base}/chat/completions")`. The scheme is matched case-insensitively; the
/// port defaults to 80/443; IPv6 literals must be bracketed (`http://[::1]:9000`). Surrounding
/// whitespace is ignored. Rejected: other schemes, userinfo, fragments, queries, empty or
/// out-of-range ports and paths that are not valid on an HTTP request line.
///
/// Call it once when loading configuration; it is pure and cheap.
pub fn parse_base_url(url: &str) -> Result<(Origin, String), UrlError> {
    let url = url.trim();
    let (scheme, rest) = split_scheme(url)?;
    if rest.contains('#') {
        return Err(UrlError::Fragment);
    }
    if rest.contains('?') {
        return Err(UrlError::Query);
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(UrlError::UserInfo);
    }
    let (host, port) = split_host_port(authority, scheme)?;
    let path = path.trim_end_matches('/');
    if !path.is_empty() && path.parse::<http::uri::PathAndQuery>().is_err() {
        return Err(UrlError::InvalidPath(path.to_string()));
    }
    Ok((Origin { scheme, host, port }, path.to_string()))
}

fn split_scheme(url: &str) -> Result<(Scheme, &str), UrlError> {
    let unsupported = || UrlError::UnsupportedScheme(url.to_string());
    let (name, rest) = url.split_once("://").ok_or_else(unsupported)?;
    let scheme = if name.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else if name.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else {
        return Err(unsupported());
    };
    Ok((scheme, rest))
}

fn split_host_port(authority: &str, scheme: Scheme) -> Result<(String, u16), UrlError> {
    let invalid_host = || UrlError::InvalidHost(authority.to_string());
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (literal, after) = inner.split_once(']').ok_or_else(invalid_host)?;
        literal.parse::<Ipv6Addr>().map_err(|_| invalid_host())?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(invalid_host)?),
        };
        (literal, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let valid_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':');
    if host.is_empty() || !host.chars().all(valid_name) {
        return Err(invalid_host());
    }
    let port = match port {
        None => scheme.default_port(),
        Some(p) => parse_port(p)?,
    };
    Ok((host.to_ascii_lowercase(), port))
}

fn parse_port(text: &str) -> Result<u16, UrlError> {
    let invalid = || UrlError::InvalidPort(text.to_string());
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(invalid()),
        Ok(port) => Ok(port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(scheme: Scheme, host: &str, port: u16) -> Origin {
        Origin {
            scheme,
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn parses_host_port_and_path() {
        let (o, p) = parse_base_url("http://127.0.0.1:8080/openai/v1").unwrap();
        assert_eq!(o, origin(Scheme::Http, "127.0.0.1", 8080));
        assert_eq!(p, "/openai/v1");
    }

    #[test]
    fn default_ports_and_trailing_slashes() {
        let (o, p) = parse_base_url("https://API.OpenAI.com/v1/").unwrap();
        assert_eq!(o, origin(Scheme::Https, "api.openai.com", 443));
        assert_eq!(p, "/v1");
        let (o, p) = parse_base_url("HTTP://example.test").unwrap();
        assert_eq!(o, origin(Scheme::Http, "example.test", 80));
        assert_eq!(p, "");
        let (_, p) = parse_base_url("http://example.test/").unwrap();
        assert_eq!(p, "");
    }

    #[test]
    fn ipv6_literals() {
        let (o, p) = parse_base_url("http://[::1]:9000/v1").unwrap();
        assert_eq!(o, origin(Scheme::Http, "::1", 9000));
        assert_eq!(p, "/v1");
        assert_eq!(o.host_header(), "[::1]:9000");
        assert_eq!(o.to_string(), "http://[::1]:9000");
        let (o, _) = parse_base_url("https://[2001:DB8::1]").unwrap();
        assert_eq!(o, origin(Scheme::Https, "2001:db8::1", 443));
        assert_eq!(o.host_header(), "[2001:db8::1]");
    }

    #[test]
    fn host_header_omits_default_port() {
        assert_eq!(origin(Scheme::Http, "a.test", 80).host_header(), "a.test");
        assert_eq!(origin(Scheme::Https, "a.test", 443).host_header(), "a.test");
        assert_eq!(
            origin(Scheme::Https, "a.test", 80).host_header(),
            "a.test:80"
        );
        assert_eq!(
            origin(Scheme::Http, "a.test", 8080).host_header(),
            "a.test:8080"
        );
    }

    type Check = fn(&UrlError) -> bool;

    #[test]
    fn rejects_bad_urls() {
        use UrlError::*;
        let cases: &[(&str, Check)] = &[
            ("ftp://x/", |e| matches!(e, UnsupportedScheme(_))),
            ("example.test/v1", |e| matches!(e, UnsupportedScheme(_))),
            ("http://user:pw@x.test/", |e| *e == UserInfo),
            ("http://x.test/v1#frag", |e| *e == Fragment),
            ("http://x.test/v1?api-version=1", |e| *e == Query),
            ("http:///v1", |e| matches!(e, InvalidHost(_))),
            ("http://::1/v1", |e| matches!(e, InvalidHost(_))),
            ("http://[::1/v1", |e| matches!(e, InvalidHost(_))),
            ("http://[nothex]/v1", |e| matches!(e, InvalidHost(_))),
            ("http://[::1]x/v1", |e| matches!(e, InvalidHost(_))),
            ("http://x y.test/", |e| matches!(e, InvalidHost(_))),
            ("http://x.test:/", |e| matches!(e, InvalidPort(_))),
            ("http://x.test:0/", |e| matches!(e, InvalidPort(_))),
            ("http://x.test:65536/", |e| matches!(e, InvalidPort(_))),
            ("http://x.test:+80/", |e| matches!(e, InvalidPort(_))),
            ("http://x.test/a b", |e| matches!(e, InvalidPath(_))),
        ];
        for (url, check) in cases {
            match parse_base_url(url) {
                Err(e) => assert!(check(&e), "{url}: unexpected error {e:?}"),
                Ok(v) => panic!("{url}: accepted as {v:?}"),
            }
        }
    }
}
