//! One account in two places at once: at its owner's own workstation, and at a computer other
//! staff use.
//!
//! A password lent, or read over a shoulder, is used where its owner is not: the nursing
//! home's kiosk while the GP still works at her practice, the ward's computer in the evening
//! while her supervisor writes his letters. A person works at one desktop at a time (her phone
//! or tablet beside it is no second place), so an account acting from a desktop client at an
//! address it never used before this hour, on a device that other accounts use (a kiosk, a
//! colleague's workstation: [`SHARED_BY`] others within [`REMEMBERED`]), while its own desktop
//! ([`OwnDesk`]: an address it has used for a day or more), in another network and with another
//! kind of client, was in use after it came there and within [`CONCURRENT`], is two people on
//! one account. Both must be in use: a move from one to the other (home in the morning, the
//! ward minutes later) is one person. The stranger's first looks, before the owner's next one,
//! join the incident when it opens. It is the new place that is judged: the owner's own
//! events at her desk go on as before.
//!
//! Measured on the fifteen hospitals of the three generators written apart from the model,
//! before building: 78 attack events of four incidents (the regional networks' shared logins,
//! three of them missed until then), 6 legitimate events (a VPN pool's address that two other
//! members had held before, beside the same member's session on site), 2 once both places had
//! to be in use (63 attack events of the three missed incidents; on the 51 hospitals of our
//! own simulator, 0 against 13 for a move). Without "a device others use", 474 legitimate events (a VPN session beside the hospital's desktop, a home
//! computer beside the on-call laptop); without "another kind of client", 769 (Citrix servers
//! of one farm, an upgrade's two versions of one client).

use serde::{Deserialize, Serialize};

use super::baselines::DAY;
use super::cache::Bounded;

/// Other accounts on a device that make it a shared one.
pub const SHARED_BY: usize = 2;
/// How long a device's use by others is remembered after its last use.
pub const REMEMBERED: i64 = 7 * DAY;
/// How recently the owner's own desk was in use for a new place to be "at the same time".
pub const CONCURRENT: i64 = 10 * 60;
/// Devices remembered at most (each a few dozen bytes).
const CAPACITY: usize = 50_000;
/// Accounts remembered per device: enough to know it is shared.
const ACCOUNTS: usize = SHARED_BY + 1;

/// The kind of desktop client a user agent names, without its version numbers (an upgrade is
/// the same kind), or `None` for a phone, a tablet or a machine's client: a person sits at one
/// desktop at a time, not at one device.
#[cfg(test)]
pub fn desktop_client(agent: &str) -> Option<u64> {
    is_desktop(agent).then(|| client_kind(agent))
}

/// Whether a user agent names a desktop (not a phone, a tablet or a machine's client).
pub fn is_desktop(agent: &str) -> bool {
    const DESKTOP: [&str; 3] = ["Windows NT", "Macintosh", "X11"];
    const HANDHELD: [&str; 4] = ["iPhone", "iPad", "Android", "Mobile"];
    DESKTOP.iter().any(|d| agent.contains(d)) && !HANDHELD.iter().any(|h| agent.contains(h))
}

/// The kind of client a user agent names, without its version numbers: a browser's upgrade
/// (Edge 123 to 124 on the same Windows) is the same kind.
pub fn client_kind(agent: &str) -> u64 {
    // FNV-1a over the agent without digits and version separators.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in agent
        .bytes()
        .filter(|b| !b.is_ascii_digit() && *b != b'.' && *b != b'_')
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct DeviceUse {
    /// Accounts seen on it (truncated hashes; at most [`ACCOUNTS`]).
    accounts: Vec<u32>,
    last: i64,
}

/// Which accounts used each device (an address with a kind of desktop client).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SharedDevices {
    seen: Bounded<DeviceUse>,
}

impl Default for SharedDevices {
    fn default() -> Self {
        Self {
            seen: Bounded::new(CAPACITY),
        }
    }
}

impl SharedDevices {
    /// Learns that `account` used `device` at `t`.
    pub fn record(&mut self, device: u64, account: u32, t: i64) {
        let entry = self.seen.get_or_insert_with(device, DeviceUse::default);
        entry.last = entry.last.max(t);
        if entry.accounts.len() < ACCOUNTS && !entry.accounts.contains(&account) {
            entry.accounts.push(account);
        }
    }

    /// Whether [`SHARED_BY`] accounts other than `account` used `device`, the last use within
    /// [`REMEMBERED`] of `t`.
    pub fn shared(&self, device: u64, account: u32, t: i64) -> bool {
        self.seen.peek(device).is_some_and(|d| {
            t - d.last <= REMEMBERED
                && d.accounts.iter().filter(|a| **a != account).count() >= SHARED_BY
        })
    }
}

/// Where an account last acted from its own desk: an address it has used for a day or more,
/// with a desktop client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnDesk {
    /// The address's /16 (a site), the kind of client, and when.
    prefix: u64,
    client: u64,
    at: Option<i64>,
}

impl OwnDesk {
    pub fn seen(&mut self, prefix: u64, client: u64, t: i64) {
        *self = Self {
            prefix,
            client,
            at: Some(t),
        };
    }

    /// Whether the desk, in another network than `prefix` and with another kind of client
    /// than `client`, was in use within [`CONCURRENT`] before `t` and after `since` (when the
    /// account first came to the other place): both in use, not a move from one to the other
    /// (home in the morning, then the ward).
    pub fn busy_elsewhere(&self, prefix: u64, client: u64, since: i64, t: i64) -> bool {
        self.at.is_some_and(|at| t - at <= CONCURRENT && at > since)
            && self.prefix != prefix
            && self.client != client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desktop_clients_are_kinds_without_versions_and_handhelds_are_none() {
        let edge_old = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Edg/122.0.2365.92";
        let edge_new = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Edg/124.0.2478.51";
        let kiosk = "Mozilla/5.0 (X11; Linux x86_64) Firefox/115.0";
        assert_eq!(desktop_client(edge_old), desktop_client(edge_new));
        assert!(desktop_client(edge_old).is_some());
        assert_ne!(desktop_client(edge_old), desktop_client(kiosk));
        for handheld in [
            "Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15",
            "CarePortal/5.9.0 (Android 14; SM-S911B)",
            "Mozilla/5.0 (Linux; Android 14; Pixel 7) Mobile Safari/537.36",
            "Mirth Connect/4.4.1",
        ] {
            assert_eq!(desktop_client(handheld), None, "{handheld}");
        }
    }

    #[test]
    fn a_device_two_other_accounts_used_this_week_is_shared() {
        let mut devices = SharedDevices::default();
        let (kiosk, gp, nurse, carer) = (7, 1, 2, 3);
        devices.record(kiosk, nurse, 100);
        devices.record(kiosk, nurse, 200);
        assert!(!devices.shared(kiosk, gp, 300), "one other account");
        devices.record(kiosk, carer, 300);
        assert!(devices.shared(kiosk, gp, 300));
        // Its users' own use of it is not someone else's.
        assert!(!devices.shared(kiosk, nurse, 300));
        assert!(devices.shared(kiosk, gp, 300 + REMEMBERED));
        assert!(!devices.shared(kiosk, gp, 301 + REMEMBERED));
        assert!(!devices.shared(8, gp, 300), "a device nobody used");
    }

    #[test]
    fn the_own_desk_is_busy_elsewhere_only_in_another_network_with_another_client() {
        let mut desk = OwnDesk::default();
        let (practice, care_home, edge, kiosk) = (10, 86, 1, 2);
        assert!(!desk.busy_elsewhere(care_home, kiosk, 0, 10), "no desk yet");
        // The account came to the kiosk at 900; its desk was in use again at 1,000.
        desk.seen(practice, edge, 1_000);
        assert!(desk.busy_elsewhere(care_home, kiosk, 900, 1_000 + CONCURRENT));
        assert!(!desk.busy_elsewhere(care_home, kiosk, 900, 1_001 + CONCURRENT));
        assert!(
            !desk.busy_elsewhere(practice, kiosk, 900, 1_100),
            "the same site"
        );
        assert!(
            !desk.busy_elsewhere(care_home, edge, 900, 1_100),
            "the same client"
        );
        // Left the desk at 1,000, at the kiosk from 1,050: a move, not two places.
        assert!(!desk.busy_elsewhere(care_home, kiosk, 1_050, 1_100));
    }
}
