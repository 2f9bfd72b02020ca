//! In-memory, bounded failure buckets: one token bucket per key (a client address, an unknown
//! username), so memory stays bounded however many keys a flood uses.
//!
//! Each key has `capacity` tokens and regains them at `capacity` per `period`; a failure takes
//! one. With no token left the key is throttled until one is back (the `Retry-After`). A key
//! whose bucket is full again carries no information and is forgotten first when the map is full;
//! if that is not enough, the half least recently touched is forgotten (amortised O(log n) per
//! insertion). Forgetting only ever makes a key look fresh: memory is what is bounded, not the
//! attacker's rate across more addresses than the map holds, which the per-account lockout (in
//! PostgreSQL) still limits.

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// How many keys a map holds at most (about 64 bytes each).
pub const MAX_KEYS: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Failure buckets keyed by `K`.
pub struct Buckets<K> {
    capacity: f64,
    /// Tokens regained per second.
    rate: f64,
    max_keys: usize,
    map: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    /// `capacity` failures, regained over `period`.
    pub fn new(capacity: u32, period: Duration, max_keys: usize) -> Self {
        let capacity = f64::from(capacity.max(1));
        Self {
            capacity,
            rate: capacity / period.as_secs_f64().max(0.001),
            max_keys: max_keys.max(2),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        (bucket.tokens + elapsed * self.rate).min(self.capacity)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Bucket>> {
        // A panic while holding the lock leaves consistent data (plain numbers): keep going.
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `Some(retry_after)` when `key` has no failure left.
    pub fn throttled(&self, key: &K) -> Option<Duration> {
        self.throttled_at(key, Instant::now())
    }

    fn throttled_at(&self, key: &K, now: Instant) -> Option<Duration> {
        let map = self.lock();
        let bucket = *map.get(key)?;
        let tokens = self.refilled(bucket, now);
        (tokens < 1.0).then(|| Duration::from_secs_f64((1.0 - tokens) / self.rate))
    }

    /// Takes a token for a failure of `key`.
    pub fn fail(&self, key: &K) {
        self.fail_at(key, Instant::now())
    }

    fn fail_at(&self, key: &K, now: Instant) {
        let mut map = self.lock();
        if !map.contains_key(key) && map.len() >= self.max_keys {
            self.evict(&mut map, now);
        }
        let tokens = match map.get(key) {
            Some(bucket) => self.refilled(*bucket, now),
            None => self.capacity,
        };
        map.insert(
            key.clone(),
            Bucket {
                tokens: (tokens - 1.0).max(0.0),
                updated: now,
            },
        );
    }

    /// Forgets full buckets, then, if still too many, the least recently touched half.
    fn evict(&self, map: &mut HashMap<K, Bucket>, now: Instant) {
        map.retain(|_, b| self.refilled(*b, now) < self.capacity);
        if map.len() < self.max_keys {
            return;
        }
        let mut times: Vec<Instant> = map.values().map(|b| b.updated).collect();
        let middle = times.len() / 2;
        let (_, median, _) = times.select_nth_unstable(middle);
        let median = *median;
        map.retain(|_, b| b.updated > median);
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Lockouts of keys that are no account (unknown usernames and client ids), with the same rule
/// as accounts' lockouts in PostgreSQL: `max_failures` within `window` lock the key for
/// `lockout`. An unknown username then answers exactly as a locked-out account does, so
/// guessing cannot tell which usernames exist. Bounded like [`Buckets`].
pub struct Strikes<K> {
    max_failures: u32,
    window: Duration,
    lockout: Duration,
    max_keys: usize,
    map: Mutex<HashMap<K, Strike>>,
}

#[derive(Debug, Clone, Copy)]
struct Strike {
    failures: u32,
    window_started: Instant,
    locked_until: Option<Instant>,
}

impl Strike {
    fn locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|until| until > now)
    }
}

impl<K: Hash + Eq + Clone> Strikes<K> {
    pub fn new(max_failures: u32, window: Duration, lockout: Duration, max_keys: usize) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window,
            lockout,
            max_keys: max_keys.max(2),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Strike>> {
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn locked(&self, key: &K) -> bool {
        self.locked_at(key, Instant::now())
    }

    fn locked_at(&self, key: &K, now: Instant) -> bool {
        self.lock().get(key).is_some_and(|s| s.locked(now))
    }

    pub fn fail(&self, key: &K) {
        self.fail_at(key, Instant::now())
    }

    fn fail_at(&self, key: &K, now: Instant) {
        let mut map = self.lock();
        if !map.contains_key(key) && map.len() >= self.max_keys {
            self.evict(&mut map, now);
        }
        let mut strike = map.get(key).copied().unwrap_or(Strike {
            failures: 0,
            window_started: now,
            locked_until: None,
        });
        if strike.locked(now) {
            return;
        }
        if now.saturating_duration_since(strike.window_started) >= self.window {
            strike.failures = 0;
            strike.window_started = now;
        }
        strike.failures += 1;
        if strike.failures >= self.max_failures {
            strike = Strike {
                failures: 0,
                window_started: now,
                locked_until: Some(now + self.lockout),
            };
        }
        map.insert(key.clone(), strike);
    }

    /// Forgets keys neither locked nor within their window, then the oldest half.
    fn evict(&self, map: &mut HashMap<K, Strike>, now: Instant) {
        map.retain(|_, s| {
            s.locked(now) || now.saturating_duration_since(s.window_started) < self.window
        });
        if map.len() < self.max_keys {
            return;
        }
        let mut times: Vec<Instant> = map.values().map(|s| s.window_started).collect();
        let middle = times.len() / 2;
        let (_, median, _) = times.select_nth_unstable(middle);
        let median = *median;
        map.retain(|_, s| s.window_started > median);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The key an address is throttled under: the IPv4 address, or the /64 of an IPv6 address (one
/// host usually holds a whole /64). IPv4-mapped IPv6 addresses count as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKey {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
}

impl AddressKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddressKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey::V4(v4.octets()),
                None => {
                    let o = v6.octets();
                    AddressKey::V6Prefix([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
                }
            },
        }
    }

    /// Parses the source address recorded in an access event.
    pub fn parse(raw: &str) -> Option<Self> {
        raw.parse::<IpAddr>().ok().map(Self::of)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_throttled_after_capacity_failures_and_recovers() {
        let b = Buckets::new(3, Duration::from_secs(60), 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(b.throttled_at(&"a", t0).is_none());
            b.fail_at(&"a", t0);
        }
        let retry = b.throttled_at(&"a", t0).unwrap();
        assert!(retry <= Duration::from_secs(20) && retry >= Duration::from_secs(19));
        assert!(
            b.throttled_at(&"b", t0).is_none(),
            "other keys are not affected"
        );
        // One token back after period / capacity.
        assert!(b.throttled_at(&"a", t0 + Duration::from_secs(21)).is_none());
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_keys() {
        let b = Buckets::new(30, Duration::from_secs(60), 1000);
        let t0 = Instant::now();
        for i in 0..100_000u32 {
            b.fail_at(&i, t0 + Duration::from_micros(u64::from(i)));
            assert!(b.len() <= 1000);
        }
        // The most recent keys are remembered.
        for _ in 0..29 {
            b.fail_at(&99_999, t0 + Duration::from_millis(100));
        }
        assert!(b
            .throttled_at(&99_999, t0 + Duration::from_millis(100))
            .is_some());
    }

    #[test]
    fn full_buckets_are_forgotten_first() {
        let b = Buckets::new(2, Duration::from_secs(1), 2);
        let t0 = Instant::now();
        b.fail_at(&1, t0);
        b.fail_at(&2, t0 + Duration::from_secs(5));
        b.fail_at(&2, t0 + Duration::from_secs(5));
        // Key 1 has refilled by now; adding 3 forgets it, not 2.
        b.fail_at(&3, t0 + Duration::from_secs(5));
        assert!(b.throttled_at(&2, t0 + Duration::from_secs(5)).is_some());
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn unknown_keys_lock_like_accounts() {
        let s = Strikes::new(3, Duration::from_secs(60), Duration::from_secs(300), 100);
        let t0 = Instant::now();
        s.fail_at(&"x", t0);
        s.fail_at(&"x", t0);
        assert!(!s.locked_at(&"x", t0));
        s.fail_at(&"x", t0);
        assert!(s.locked_at(&"x", t0));
        assert!(s.locked_at(&"x", t0 + Duration::from_secs(299)));
        assert!(!s.locked_at(&"x", t0 + Duration::from_secs(301)));
        // Failures outside the window do not add up.
        s.fail_at(&"y", t0);
        s.fail_at(&"y", t0);
        s.fail_at(&"y", t0 + Duration::from_secs(61));
        assert!(!s.locked_at(&"y", t0 + Duration::from_secs(61)));
        for _ in 0..10_000 {
            s.fail_at(&"z", t0);
        }
        assert!(s.locked_at(&"z", t0));
        let bounded = Strikes::new(3, Duration::from_secs(60), Duration::from_secs(300), 50);
        for i in 0..10_000u32 {
            bounded.fail_at(&i, t0 + Duration::from_micros(u64::from(i)));
            assert!(bounded.len() <= 50);
        }
    }

    #[test]
    fn ipv6_hosts_are_keyed_by_their_64() {
        let a = AddressKey::parse("2001:db8:1:2::1").unwrap();
        let b = AddressKey::parse("2001:db8:1:2:ffff::9").unwrap();
        let c = AddressKey::parse("2001:db8:1:3::1").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            AddressKey::parse("::ffff:10.0.0.1"),
            AddressKey::parse("10.0.0.1")
        );
        assert!(AddressKey::parse("nonsense").is_none());
    }
}
