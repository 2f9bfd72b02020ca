//! What the services behind are told about the client: `X-Forwarded-For`, `-Proto` and `-Host`.
//!
//! The gateway faces clients, so by default it believes none of these headers: the chain it
//! forwards is the real peer's address alone, the scheme its own, the host the `Host` the client
//! connected with. Only when the peer is one of `TRUSTED_PROXIES` (an ingress or load balancer
//! in front of it) does it keep the incoming chain and append the peer, and take the proxy's
//! `X-Forwarded-Proto`/`-Host`. The services behind believe `X-Forwarded-For` only from their own
//! `TRUSTED_PROXIES` (the gateway), and take the right-most address that is not a trusted proxy.

use std::net::IpAddr;

pub use custodian_auth::source::TrustedProxies;

/// The forwarding headers to send upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// `X-Forwarded-For`; `None` when there is no peer address (never on TCP).
    pub forwarded_for: Option<String>,
    pub proto: String,
    /// `None` when the client sent no usable `Host`.
    pub host: Option<String>,
}

/// What the client connected with, and what it claims.
#[derive(Debug, Clone, Copy, Default)]
pub struct Incoming<'a> {
    pub peer: Option<IpAddr>,
    /// Every `X-Forwarded-For` header value, in order.
    pub forwarded_for: &'a [&'a str],
    pub forwarded_proto: Option<&'a str>,
    pub forwarded_host: Option<&'a str>,
    /// The `Host` header (or HTTP/2 authority).
    pub host: Option<&'a str>,
    /// Whether the connection itself was TLS.
    pub secure: bool,
}

/// A host header value: `name[:port]` or `[v6]:port`, nothing else.
fn plausible_host(raw: &str) -> Option<&str> {
    let raw = raw.trim();
    let ok = (1..=255).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    ok.then_some(raw)
}

/// The first of a comma-separated list.
fn first(raw: &str) -> &str {
    raw.split(',').next().unwrap_or_default().trim()
}

/// Decides the forwarding headers.
pub fn forwarded(incoming: &Incoming<'_>, trusted: &TrustedProxies) -> Forwarded {
    let from_proxy = incoming.peer.is_some_and(|peer| trusted.contains(&peer));
    let mut chain: Vec<String> = Vec::new();
    if from_proxy {
        chain.extend(
            incoming
                .forwarded_for
                .iter()
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|hop| !hop.is_empty())
                .map(str::to_string),
        );
    }
    chain.extend(incoming.peer.map(|peer| peer.to_string()));

    let own_proto = if incoming.secure { "https" } else { "http" };
    let proto = incoming
        .forwarded_proto
        .filter(|_| from_proxy)
        .map(first)
        .map(str::to_ascii_lowercase)
        .filter(|p| p == "http" || p == "https")
        .unwrap_or_else(|| own_proto.to_string());
    let host = incoming
        .forwarded_host
        .filter(|_| from_proxy)
        .map(first)
        .and_then(plausible_host)
        .or_else(|| incoming.host.and_then(plausible_host))
        .map(str::to_string);
    Forwarded {
        forwarded_for: (!chain.is_empty()).then(|| chain.join(", ")),
        proto,
        host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn proxies_parse_addresses_and_ranges() {
        let p = TrustedProxies::parse("10.0.0.0/8, ::1, 192.168.1.7").unwrap();
        assert!(p.contains(&ip("10.2.3.4")));
        assert!(p.contains(&ip("::1")));
        assert!(p.contains(&ip("::ffff:10.0.0.1")));
        assert!(!p.contains(&ip("192.168.1.8")));
        assert!(TrustedProxies::parse("nonsense").is_err());
        assert!(!TrustedProxies::parse("")
            .unwrap()
            .contains(&ip("127.0.0.1")));
    }

    #[test]
    fn a_client_cannot_choose_its_address_scheme_or_host() {
        let incoming = Incoming {
            peer: Some(ip("203.0.113.9")),
            forwarded_for: &["6.6.6.6", "7.7.7.7, 8.8.8.8"],
            forwarded_proto: Some("https"),
            forwarded_host: Some("evil.example"),
            host: Some("gateway.example:8080"),
            secure: false,
        };
        let out = forwarded(&incoming, &TrustedProxies::none());
        assert_eq!(out.forwarded_for.as_deref(), Some("203.0.113.9"));
        assert_eq!(out.proto, "http");
        assert_eq!(out.host.as_deref(), Some("gateway.example:8080"));
    }

    #[test]
    fn a_trusted_proxy_keeps_its_chain_and_the_peer_is_appended() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let incoming = Incoming {
            peer: Some(ip("10.1.2.3")),
            forwarded_for: &["6.6.6.6, 203.0.113.9"],
            forwarded_proto: Some("HTTPS, http"),
            forwarded_host: Some("custodian.example"),
            host: Some("gateway:8080"),
            secure: false,
        };
        let out = forwarded(&incoming, &trusted);
        assert_eq!(
            out.forwarded_for.as_deref(),
            Some("6.6.6.6, 203.0.113.9, 10.1.2.3")
        );
        assert_eq!(out.proto, "https");
        assert_eq!(out.host.as_deref(), Some("custodian.example"));

        // Even a trusted proxy cannot inject header syntax or other schemes.
        let odd = Incoming {
            forwarded_proto: Some("gopher"),
            forwarded_host: Some("a b\r\nx: y"),
            ..incoming
        };
        let out = forwarded(&odd, &trusted);
        assert_eq!(out.proto, "http");
        assert_eq!(out.host.as_deref(), Some("gateway:8080"));
    }
}
