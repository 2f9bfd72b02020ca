//! Where a request came from: the peer address, with `X-Forwarded-For` believed only from
//! trusted proxies (`TRUSTED_PROXIES`), and the user agent. One implementation for the gateway
//! (which decides what to forward) and for every service (which records it in access events).

use std::net::IpAddr;

use actix_web::HttpRequest;
use custodian_events::Source;
use ipnet::IpNet;

/// Addresses whose `X-Forwarded-For` is believed (the gateway, an ingress).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses or CIDR ranges; empty trusts nobody.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for piece in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = match piece.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => piece
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| format!("{piece:?} is not an address or CIDR range"))?,
            };
            nets.push(net);
        }
        Ok(Self(nets))
    }

    pub fn none() -> Self {
        Self(Vec::new())
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        let ip = canonical(*ip);
        self.0.iter().any(|n| n.contains(&ip))
    }
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Where a request came from (before anyone is authenticated, e.g. a login).
pub fn source_of(req: &HttpRequest, trusted: &TrustedProxies) -> Source {
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    let ip = client_ip(req.peer_addr().map(|a| a.ip()), &forwarded, trusted);
    let user_agent = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().chars().take(300).collect());
    Source {
        ip: ip.map(|ip| ip.to_string()),
        user_agent,
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy. Entries a client
/// wrote in front of the proxies' are never believed.
pub fn client_ip(
    peer: Option<IpAddr>,
    forwarded: &[&str],
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = forwarded
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // An unparseable entry: nothing to its left can be trusted either.
            return Some(client);
        };
        client = ip;
        if !trusted.contains(&ip) {
            return Some(ip);
        }
    }
    Some(client)
}

/// `1.2.3.4`, `1.2.3.4:5678`, `::1` or `[::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sock) = hop.parse::<std::net::SocketAddr>() {
        return Some(sock.ip());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.split_once(']'))
        .and_then(|(ip, _)| ip.parse().ok())
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
        assert!(p.contains(&"10.2.3.4".parse().unwrap()));
        assert!(p.contains(&"::1".parse().unwrap()));
        assert!(p.contains(&"192.168.1.7".parse().unwrap()));
        assert!(p.contains(&"::ffff:10.0.0.1".parse().unwrap()));
        assert!(!p.contains(&"192.168.1.8".parse().unwrap()));
        assert!(TrustedProxies::parse("nonsense").is_err());
        assert!(!TrustedProxies::parse("")
            .unwrap()
            .contains(&"127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = TrustedProxies::parse("127.0.0.1,10.0.0.0/8").unwrap();
        // A direct client: its own header is ignored.
        assert_eq!(
            client_ip(Some(ip("203.0.113.9")), &["6.6.6.6"], &trusted),
            Some(ip("203.0.113.9"))
        );
        // Through the gateway, which appended the real peer: a forged entry in front is skipped.
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), &["6.6.6.6, 203.0.113.9"], &trusted),
            Some(ip("203.0.113.9"))
        );
        // Ingress then gateway.
        assert_eq!(
            client_ip(
                Some(ip("127.0.0.1")),
                &["6.6.6.6", "203.0.113.9, 10.1.2.3"],
                &trusted
            ),
            Some(ip("203.0.113.9"))
        );
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), &["6.6.6.6, nonsense"], &trusted),
            Some(ip("127.0.0.1"))
        );
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), &["[2001:db8::1]:443"], &trusted),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), &[], &trusted),
            Some(ip("127.0.0.1"))
        );
    }
}
