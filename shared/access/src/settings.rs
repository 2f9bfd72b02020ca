//! The kernel's deployment settings, read once from the environment.

use std::net::IpAddr;

use custodian_telemetry::{config::ConfigError, Env};
use ipnet::IpNet;

/// Who may see a patient's data without her explicit permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustodianMode {
    /// The organisation that holds the record (its custodian) treats her without a separate
    /// permit unless her consent denies it; everyone else needs her permit. (Default.)
    Custodian,
    /// Strictly opt-in, as a regional exchange runs: even the custodian needs a permit.
    OptIn,
}

/// Addresses whose `X-Forwarded-For` is believed (the gateway, an ingress).
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// How the kernel is run in this deployment.
#[derive(Debug, Clone)]
pub struct AccessSettings {
    pub mode: CustodianMode,
    /// `TRUSTED_PROXIES`: default loopback (the gateway on the same host in `make run`).
    pub trusted_proxies: TrustedProxies,
    /// `ACCESS_EXPLAIN_DENIALS`: answer a denial with 403 naming the missing permit (so a
    /// clinician knows to ask the patient) instead of the 404 an unknown id gets.
    pub explain_denials: bool,
}

impl Default for AccessSettings {
    fn default() -> Self {
        Self {
            mode: CustodianMode::Custodian,
            trusted_proxies: TrustedProxies::parse("127.0.0.1/32,::1/128")
                .unwrap_or_else(|_| TrustedProxies::none()),
            explain_denials: false,
        }
    }
}

impl AccessSettings {
    /// `ACCESS_POLICY` (`custodian` | `opt-in`), `TRUSTED_PROXIES`, `ACCESS_EXPLAIN_DENIALS`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mode = match env.string("ACCESS_POLICY", "custodian").trim() {
            "custodian" => CustodianMode::Custodian,
            "opt-in" => CustodianMode::OptIn,
            other => {
                return Err(ConfigError::Invalid {
                    name: "ACCESS_POLICY".into(),
                    reason: format!("{other:?} is not custodian or opt-in"),
                })
            }
        };
        let trusted_proxies = TrustedProxies::parse(
            &env.string("TRUSTED_PROXIES", "127.0.0.1/32,::1/128"),
        )
        .map_err(|reason| ConfigError::Invalid {
            name: "TRUSTED_PROXIES".into(),
            reason,
        })?;
        Ok(Self {
            mode,
            trusted_proxies,
            explain_denials: env.flag("ACCESS_EXPLAIN_DENIALS", false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
