//! The anomaly model: pure, deterministic, no wall clock. Time comes from the events, so the
//! same sequence of events always produces the same scores, live (the stream consumer) and
//! offline (`anomaly replay`).
//!
//! # State
//!
//! Per actor (the event's `actor.id`), a sliding window of the last [`WINDOW`] (5 minutes) of
//! event time, relative to the newest event time seen for that actor. Each entry keeps the
//! event id, its time, the patient (if any) and how the event touched it ([`Touch`]). Events
//! arrive roughly in order: a late event still inside the window is inserted at its place; one
//! older than the window is scored but not remembered. An event id already in the window is not
//! counted twice (redeliveries). Besides the window, each actor has an exponentially weighted
//! moving average (EWMA, `α = 0.05`, starting at 6) of its events per *active* minute: when an
//! event opens a new minute, the count of the previous active minute is folded into the
//! baseline (idle minutes are not, so a lunch break does not reset what "normal" is).
//!
//! Bounds: at most [`MAX_ENTRIES_PER_ACTOR`] window entries per actor (the oldest are dropped);
//! every [`SWEEP_EVERY`] events, actors idle for [`IDLE_EVICTION`] (24 h of event time, relative
//! to the newest event seen at all) are forgotten, and windows of actors idle longer than the
//! window are emptied.
//!
//! # Features (each mapped to `[0, 1]`)
//!
//! | feature | value `f` | weight `w` |
//! |---|---|---|
//! | distinct patients in the last 5 min: `d = r + s/3`, `r` read (read, export, break-glass; permitted or denied), `s` only seen in search results | `clamp((d - 5) / 10)`: 5 → 0, 10 → 0.5, ≥ 15 → 1 | 0.95 |
//! | rate: events in the last 60 s `n` vs baseline `b` (EWMA per active minute, at least 6) | `clamp((n / max(b, 6) - 3) / 7)`: ≤ 3× → 0, ≥ 10× → 1 | 0.60 |
//! | denied share: `k` denied of `m` reads and writes of patients' data in the window | `(k / m) · min(1, k / 5)` | 0.70 |
//! | break-glass (this event) | 1 when flagged or action `break-glass` | 0.40 |
//! | restricted record (this event) | `V` → 1, `R` → 0.5 | 0.40 |
//! | off hours (this event, 22:00–06:00 UTC) | 1 | 0.10 |
//! | export (this event) | 1 | 0.35 |
//!
//! Logins and other events without a patient count toward the rate only. Creates, updates and
//! deletes count toward the rate and the denied share but not toward distinct patients: writing
//! is not reading, and a clerk registering twenty new patients is not snooping. Records emits
//! one search event per patient in the results (permit) and per patient withheld (deny): a
//! patient seen in search results counts a third of a read (a ward list legitimately returns
//! dozens of patients at once), and a withheld one counts toward the rate only (the actor asked
//! for a list, not for that patient). The window features are computed for every event, since
//! they describe the actor's state at that moment.
//!
//! # Combination
//!
//! A noisy-OR: `score = 1 - Π (1 - w_i · f_i)`, rounded to 4 decimals; `alert = score >=
//! threshold` (default 0.8). It stays in `[0, 1]`, rises with every feature, and one strong
//! signal is enough: ≥ 15 distinct patients read in 5 minutes alone scores ≥ 0.95. The
//! per-event flags alone cannot reach 0.8 (all four together give 0.79): break-glass on a VIP
//! record at night is for review in the ledger, not for suspending an emergency physician. A
//! practitioner reading a handful of patients at a normal pace scores 0 (0.1 at night).

mod features;
mod window;

use std::collections::HashMap;

use chrono::{DateTime, Duration, Timelike, Utc};
use custodian_events::{AccessAction, AccessEvent, AccessOutcome};
use serde::Serialize;
use uuid::Uuid;

pub use features::Features;
use window::ActorState;

/// The sliding window the window features look at.
pub const WINDOW: Duration = Duration::minutes(5);
/// The rate feature looks at this much of the window.
pub const RATE_WINDOW: Duration = Duration::seconds(60);
/// Actors with no event for this long (of event time) are forgotten.
pub const IDLE_EVICTION: Duration = Duration::hours(24);
/// How many events between two sweeps for idle actors.
pub const SWEEP_EVERY: u64 = 4096;
/// Window entries kept per actor at most.
pub const MAX_ENTRIES_PER_ACTOR: usize = 20_000;
/// The default alert threshold (`ANOMALY_ALERT_THRESHOLD`).
pub const DEFAULT_THRESHOLD: f64 = 0.8;

/// One event's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    pub id: Uuid,
    /// In `[0, 1]`, rounded to 4 decimals.
    pub score: f64,
    /// `score >= threshold`.
    pub alert: bool,
    /// Human-readable contributions, strongest first (only those that added to the score).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// What the windows remember of one event; also what a restart rebuilds them from.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub id: Uuid,
    pub actor: String,
    pub time: DateTime<Utc>,
    pub patient: Option<String>,
    pub touch: Touch,
}

/// How an event touches its patient, as far as the window features care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    /// No patient (logins), or a search result withheld from the actor: rate only.
    None,
    /// A read, export or break-glass access of the patient's data, permitted or denied.
    Read { denied: bool },
    /// The patient's data returned by a search (records emits one event per patient).
    Searched,
    /// A create, update or delete in the patient's compartment.
    Wrote { denied: bool },
}

impl Touch {
    pub fn of(action: AccessAction, outcome: AccessOutcome, has_patient: bool) -> Self {
        let denied = outcome == AccessOutcome::Deny;
        if !has_patient {
            return Touch::None;
        }
        match action {
            AccessAction::Read | AccessAction::Export | AccessAction::BreakGlass => {
                Touch::Read { denied }
            }
            AccessAction::Search if denied => Touch::None,
            AccessAction::Search => Touch::Searched,
            AccessAction::Create | AccessAction::Update | AccessAction::Delete => {
                Touch::Wrote { denied }
            }
            AccessAction::Login => Touch::None,
        }
    }
}

impl Observation {
    pub fn of(event: &AccessEvent) -> Self {
        let patient = event.patient.clone().filter(|p| !p.is_empty());
        Self {
            id: event.id,
            actor: event.actor.id.clone(),
            time: event.time,
            touch: Touch::of(event.action, event.outcome, patient.is_some()),
            patient,
        }
    }
}

/// The detector: per-actor state plus the alert threshold. One instance scores one stream of
/// events in order; it is not `Sync` by itself (the service wraps it in a mutex).
#[derive(Debug, Clone)]
pub struct Detector {
    threshold: f64,
    actors: HashMap<String, ActorState>,
    /// The newest event time seen at all (drives idle eviction).
    newest: Option<DateTime<Utc>>,
    observed: u64,
}

impl Default for Detector {
    fn default() -> Self {
        Self::new(DEFAULT_THRESHOLD)
    }
}

impl Detector {
    pub fn new(threshold: f64) -> Self {
        Self {
            threshold,
            actors: HashMap::new(),
            newest: None,
            observed: 0,
        }
    }

    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Actors currently remembered.
    pub fn actors(&self) -> usize {
        self.actors.len()
    }

    /// Window entries currently remembered, over all actors.
    pub fn entries(&self) -> usize {
        self.actors.values().map(ActorState::len).sum()
    }

    /// Adds an event to the windows without scoring it (restart rebuild). Returns whether it was
    /// remembered (false for a duplicate id or an event older than the window).
    pub fn observe(&mut self, observation: &Observation) -> bool {
        self.observed += 1;
        if self.newest.is_none_or(|n| observation.time > n) {
            self.newest = Some(observation.time);
        }
        let state = self.actors.entry(observation.actor.clone()).or_default();
        let remembered = state.insert(observation);
        if self.observed.is_multiple_of(SWEEP_EVERY) {
            self.sweep();
        }
        remembered
    }

    /// Scores one event and remembers it.
    pub fn score(&mut self, event: &AccessEvent) -> Scored {
        let observation = Observation::of(event);
        self.observe(&observation);
        let features = match self.actors.get(&observation.actor) {
            Some(state) => state.features(event_flags(event)),
            // Only reachable if the sweep just evicted this actor, which it never does for the
            // newest event; score the event on its own flags.
            None => Features {
                flags: event_flags(event),
                ..Features::default()
            },
        };
        let score = features.score();
        Scored {
            id: event.id,
            score,
            alert: score >= self.threshold,
            reasons: features.reasons(),
        }
    }

    /// Forgets idle actors and empties windows that have slid past.
    fn sweep(&mut self) {
        let Some(newest) = self.newest else { return };
        self.actors.retain(|_, state| {
            state
                .last_seen()
                .is_some_and(|t| t > newest - IDLE_EVICTION)
        });
        for state in self.actors.values_mut() {
            state.prune_before(newest - WINDOW);
        }
    }
}

/// The features that belong to the event itself, not to the actor's window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EventFlags {
    pub break_glass: bool,
    /// 1 for `V`, 0.5 for `R`, 0 otherwise.
    pub restricted: f64,
    pub off_hours: bool,
    pub export: bool,
}

/// 22:00–06:00 UTC.
pub fn is_off_hours(time: DateTime<Utc>) -> bool {
    let hour = time.hour();
    !(6..22).contains(&hour)
}

fn event_flags(event: &AccessEvent) -> EventFlags {
    let restricted = match event.confidentiality.as_deref().map(str::trim) {
        Some(c) if c.eq_ignore_ascii_case("V") => 1.0,
        Some(c) if c.eq_ignore_ascii_case("R") => 0.5,
        _ => 0.0,
    };
    EventFlags {
        break_glass: event.break_glass || event.action == AccessAction::BreakGlass,
        restricted,
        off_hours: is_off_hours(event.time),
        export: event.action == AccessAction::Export,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;
    use custodian_events::{Actor, Source};

    pub(crate) fn base() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0)
            .single()
            .expect("valid time")
    }

    pub(crate) fn event(
        actor: &str,
        seconds: i64,
        patient: Option<&str>,
        outcome: AccessOutcome,
    ) -> AccessEvent {
        AccessEvent {
            id: Uuid::new_v4(),
            time: base() + Duration::seconds(seconds),
            actor: Actor {
                id: actor.into(),
                role: "practitioner".into(),
                organization: Some("Organization/h1".into()),
                department: None,
            },
            patient: patient.map(str::to_string),
            action: AccessAction::Read,
            resource_type: Some("Observation".into()),
            count: 1,
            purpose: "TREAT".into(),
            outcome,
            break_glass: false,
            confidentiality: None,
            source: Source::default(),
            decision: None,
            request_id: None,
        }
    }

    /// 20 reads across 20 patients in 40 seconds, 15 of them denied.
    fn burst(actor: &str, start: i64) -> Vec<AccessEvent> {
        (0..20)
            .map(|i| {
                let outcome = if i % 4 == 0 {
                    AccessOutcome::Permit
                } else {
                    AccessOutcome::Deny
                };
                event(
                    actor,
                    start + i * 2,
                    Some(&format!("Patient/p{i}")),
                    outcome,
                )
            })
            .collect()
    }

    /// A practitioner's morning: 4 consenting patients, a few resources each, over 40 minutes.
    fn normal(actor: &str) -> Vec<AccessEvent> {
        let mut events = vec![event(actor, 0, None, AccessOutcome::Permit)];
        events[0].action = AccessAction::Login;
        for p in 0..4 {
            for r in 0..5 {
                events.push(event(
                    actor,
                    60 + p * 600 + r * 20,
                    Some(&format!("Patient/n{p}")),
                    AccessOutcome::Permit,
                ));
            }
        }
        events
    }

    fn run(detector: &mut Detector, events: &[AccessEvent]) -> Vec<Scored> {
        events.iter().map(|e| detector.score(e)).collect()
    }

    #[test]
    fn burst_alerts() {
        let mut detector = Detector::default();
        run(&mut detector, &normal("dr-a"));
        let scored = run(&mut detector, &burst("dr-b", 0));
        let last = scored.last().expect("scored");
        assert!(last.alert, "{last:?}");
        assert!(last.score >= 0.9, "{last:?}");
        assert!(last.reasons[0].contains("distinct patients"), "{last:?}");
        // The first events of the burst are unremarkable; the alert comes as it builds up.
        assert!(!scored[0].alert);
    }

    #[test]
    fn fifteen_patients_alone_score_at_least_0_9() {
        let mut detector = Detector::default();
        // Permitted, unhurried (one every 19 s), daytime: only the distinct-patient signal.
        let scored: Vec<_> = (0..15)
            .map(|i| {
                detector.score(&event(
                    "dr-c",
                    i * 19,
                    Some(&format!("Patient/q{i}")),
                    AccessOutcome::Permit,
                ))
            })
            .collect();
        assert!(scored[14].score >= 0.9, "{:?}", scored[14]);
        assert!(scored[9].score < 0.8, "{:?}", scored[9]);
    }

    #[test]
    fn normal_traffic_stays_low() {
        let mut detector = Detector::default();
        for s in run(&mut detector, &normal("dr-a")) {
            assert!(s.score < 0.5, "{s:?}");
            assert!(!s.alert);
        }
        // One denial (a patient without consent) and a restricted record stay low too.
        let mut denied = event("dr-a", 3000, Some("Patient/other"), AccessOutcome::Deny);
        denied.confidentiality = Some("R".into());
        let s = detector.score(&denied);
        assert!(s.score < 0.5, "{s:?}");
    }

    #[test]
    fn deterministic() {
        let mut events = normal("dr-a");
        events.extend(burst("dr-b", 100));
        events.extend(normal("dr-c"));
        events.sort_by_key(|e| e.time);
        let first = run(&mut Detector::default(), &events);
        let second = run(&mut Detector::default(), &events);
        assert_eq!(first, second);
    }

    #[test]
    fn tolerates_small_disorder() {
        let events = burst("dr-b", 0);
        let mut shuffled = events.clone();
        // Swap neighbours: every event arrives up to 2 s late.
        for i in (0..shuffled.len() - 1).step_by(2) {
            shuffled.swap(i, i + 1);
        }
        let in_order = run(&mut Detector::default(), &events);
        let out_of_order = run(&mut Detector::default(), &shuffled);
        assert!(out_of_order.last().is_some_and(|s| s.alert));
        // Once all have arrived, the window holds the same events either way.
        assert_eq!(
            in_order.last().map(|s| s.score),
            out_of_order.last().map(|s| s.score)
        );

        let mut normal_shuffled = normal("dr-a");
        normal_shuffled.swap(3, 4);
        normal_shuffled.swap(10, 11);
        assert!(run(&mut Detector::default(), &normal_shuffled)
            .iter()
            .all(|s| !s.alert));
    }

    #[test]
    fn late_events_beyond_the_window_are_scored_not_remembered() {
        let mut detector = Detector::default();
        detector.score(&event(
            "dr-a",
            1000,
            Some("Patient/a"),
            AccessOutcome::Permit,
        ));
        let late = event("dr-a", 0, Some("Patient/b"), AccessOutcome::Permit);
        let scored = detector.score(&late);
        assert!(!scored.alert);
        assert_eq!(detector.entries(), 1);
    }

    #[test]
    fn redelivered_events_count_once() {
        let mut detector = Detector::default();
        let events = burst("dr-b", 0);
        for e in &events[..10] {
            detector.score(e);
            detector.score(e);
        }
        assert_eq!(detector.entries(), 10);
        let once = run(&mut Detector::default(), &events[..10]);
        let again = detector.score(&events[9]);
        assert_eq!(once.last().map(|s| s.score), Some(again.score));
    }

    #[test]
    fn state_is_bounded() {
        let mut detector = Detector::default();
        // One event per actor per minute for many actors over two days.
        for i in 0..(SWEEP_EVERY as i64 * 3) {
            let actor = format!("u{}", i % 500);
            detector.score(&event(
                &actor,
                i * 60,
                Some("Patient/x"),
                AccessOutcome::Permit,
            ));
        }
        assert!(detector.entries() <= 500 * 5 + 1, "{}", detector.entries());
        // Everyone goes quiet for two days; one actor comes back and a sweep runs.
        let later = SWEEP_EVERY as i64 * 3 * 60 + 2 * 86_400;
        for i in 0..SWEEP_EVERY as i64 {
            detector.score(&event("night-owl", later + i, None, AccessOutcome::Permit));
        }
        assert_eq!(detector.actors(), 1);
        assert!(detector.entries() <= 301);
    }

    #[test]
    fn logins_count_toward_rate_only() {
        let mut detector = Detector::default();
        let mut last = None;
        for i in 0..200 {
            let mut login = event("bot", i / 4, None, AccessOutcome::Deny);
            login.action = AccessAction::Login;
            last = Some(detector.score(&login));
        }
        let last = last.expect("scored");
        // 200 events in under a minute: the rate feature saturates (0.6), nothing else adds.
        assert!((last.score - 0.6).abs() < 1e-9, "{last:?}");
        assert!(!last.alert);
    }

    #[test]
    fn rate_is_judged_against_the_actors_own_baseline() {
        let mut detector = Detector::default();
        // A scripted client: 40 reads a minute of one patient, for an hour.
        let scored: Vec<_> = (0..2400)
            .map(|i| {
                detector.score(&event(
                    "integration",
                    i * 3 / 2,
                    Some("Patient/a"),
                    AccessOutcome::Permit,
                ))
            })
            .collect();
        // At first 40 a minute is well above the floor of 6...
        assert!(scored[100].score > 0.05, "{:?}", scored[100]);
        // ...an hour later it is this actor's normal.
        assert_eq!(scored[2399].score, 0.0, "{:?}", scored[2399]);
        // A sudden 10x still stands out.
        let fast: Vec<_> = (0..400)
            .map(|i| {
                detector.score(&event(
                    "integration",
                    3600 + i / 7,
                    Some("Patient/a"),
                    AccessOutcome::Permit,
                ))
            })
            .collect();
        assert!(fast[399].score >= 0.5, "{:?}", fast[399]);
    }

    #[test]
    fn writing_many_patients_is_not_reading_them() {
        let mut detector = Detector::default();
        let scored: Vec<_> = (0..20)
            .map(|i| {
                let mut e = event(
                    "registrar",
                    i * 3,
                    Some(&format!("Patient/new{i}")),
                    AccessOutcome::Permit,
                );
                e.action = AccessAction::Create;
                detector.score(&e)
            })
            .collect();
        assert!(scored.iter().all(|s| s.score < 0.5), "{scored:?}");
    }

    #[test]
    fn a_ward_list_search_is_not_a_burst_but_reading_its_patients_is() {
        let mut detector = Detector::default();
        // One search returns 30 patients' data and withholds 10 more.
        let mut last = None;
        for i in 0..40 {
            let outcome = if i < 30 {
                AccessOutcome::Permit
            } else {
                AccessOutcome::Deny
            };
            let mut e = event("dr-ward", 0, Some(&format!("Patient/w{i}")), outcome);
            e.action = AccessAction::Search;
            last = Some(detector.score(&e));
        }
        let last = last.expect("scored");
        assert!(!last.alert && last.score < 0.8, "{last:?}");
        assert!(
            last.reasons
                .iter()
                .any(|r| r.contains("30 more in search results")),
            "{last:?}"
        );
        // Then opening 15 of them one by one, quickly: that is the burst signal.
        let mut scored = None;
        for i in 0..15 {
            scored = Some(detector.score(&event(
                "dr-ward",
                30 + i * 3,
                Some(&format!("Patient/w{i}")),
                AccessOutcome::Permit,
            )));
        }
        assert!(scored.is_some_and(|s| s.score >= 0.9));
    }

    #[test]
    fn off_hours_is_a_small_bump() {
        assert!(is_off_hours(base() + Duration::hours(13)));
        assert!(is_off_hours(base() - Duration::hours(5)));
        assert!(!is_off_hours(base()));
        let mut detector = Detector::default();
        let night = event("dr-a", 14 * 3600, Some("Patient/a"), AccessOutcome::Permit);
        let s = detector.score(&night);
        assert!((s.score - 0.1).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn event_flags_alone_stay_below_the_default_threshold() {
        let mut detector = Detector::default();
        let mut e = event(
            "dr-e",
            14 * 3600,
            Some("Patient/vip"),
            AccessOutcome::Permit,
        );
        e.break_glass = true;
        e.action = AccessAction::Export;
        e.confidentiality = Some("V".into());
        let s = detector.score(&e);
        assert!(s.score > 0.7 && !s.alert, "{s:?}");
        assert_eq!(s.reasons.len(), 4);
    }
}
