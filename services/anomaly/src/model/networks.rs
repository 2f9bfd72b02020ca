//! The organisation's own networks: the /24s (IPv6: /48s) many of its members sign in from
//! without suspicion, across departments. A VPN pool hands each session a fresh address, so a
//! member working from home for the first time comes from an address new to her and to her
//! department, yet from the hospital's own network; a stolen password is used from somewhere
//! the hospital never is. Identity protection services weigh a sign-in from the tenant's
//! familiar networks the same way.
//!
//! Measured on simulated hospitals (21 days): a researcher's first evening on the VPN, one
//! mistyped password then a new laptop, alerted as a break-in and took her whole cohort list
//! into the incident (162 false alerts in one seed).

use serde::{Deserialize, Serialize};

use super::baselines::DAY;
use super::cache::{pair, Bounded};

/// Distinct members of an organisation seen without suspicion on a network that make it one
/// of the organisation's.
pub const MEMBERS: usize = 8;
/// How long a network stays the organisation's after its last unsuspicious use.
pub const REMEMBERED: i64 = 7 * DAY;
/// Networks remembered at most (each a few dozen bytes).
const CAPACITY: usize = 50_000;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct NetworkUse {
    /// Members seen on it (truncated hashes; at most [`MEMBERS`]).
    members: Vec<u32>,
    last: i64,
}

/// The networks each organisation's members use, by `(organisation, network)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrganisationNetworks {
    seen: Bounded<NetworkUse>,
}

impl Default for OrganisationNetworks {
    fn default() -> Self {
        Self {
            seen: Bounded::new(CAPACITY),
        }
    }
}

impl OrganisationNetworks {
    /// Learns that `member` (as groups know their members: [`super::baselines::EventKeys::member`])
    /// of `organisation` used `network` at `t` without suspicion.
    pub fn record(&mut self, organisation: u64, network: u64, member: u32, t: i64) {
        if network == 0 {
            return;
        }
        let entry = self
            .seen
            .get_or_insert_with(pair(organisation, network), NetworkUse::default);
        entry.last = entry.last.max(t);
        if entry.members.len() < MEMBERS && !entry.members.contains(&member) {
            entry.members.push(member);
        }
    }

    /// Whether `network` is one of `organisation`'s at `t`: [`MEMBERS`] of its members used it
    /// without suspicion, the last within [`REMEMBERED`].
    pub fn knows(&self, organisation: u64, network: u64, t: i64) -> bool {
        network != 0
            && self
                .seen
                .peek(pair(organisation, network))
                .is_some_and(|n| n.members.len() >= MEMBERS && t - n.last <= REMEMBERED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_eight_members_use_is_the_organisations_for_a_week() {
        let mut networks = OrganisationNetworks::default();
        let (hospital, other, vpn) = (1, 2, 77);
        for member in 0..7u32 {
            networks.record(hospital, vpn, 1000 + member, 100);
            // One member many times is still one member.
            networks.record(hospital, vpn, 1000, 100);
        }
        assert!(!networks.knows(hospital, vpn, 100));
        networks.record(hospital, vpn, 2000, 200);
        assert!(networks.knows(hospital, vpn, 200));
        assert!(networks.knows(hospital, vpn, 200 + REMEMBERED));
        assert!(!networks.knows(hospital, vpn, 201 + REMEMBERED));
        // Another organisation's members never made it theirs; no network is nobody's.
        assert!(!networks.knows(other, vpn, 200));
        assert!(!networks.knows(hospital, 0, 200));
    }
}
