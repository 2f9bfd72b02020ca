//! One actor's sliding window and rate baseline.

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    cache::{hash_str, KeyMap},
    patterns::{WindowFeatures, BASELINE_FLOOR},
    Observation, Touch, MAX_ENTRIES_PER_ACTOR, RATE_WINDOW, WINDOW,
};

/// Smoothing of the per-active-minute baseline.
const BASELINE_ALPHA: f64 = 0.05;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Entry {
    id: Uuid,
    time: DateTime<Utc>,
    patient: Option<u64>,
    touch: Touch,
}

/// How one patient appears in the window: read (or attempted), or only seen in search results.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
struct PatientCounts {
    reads: u32,
    searches: u32,
    /// Reads (or searches naming her) refused.
    #[serde(default)]
    refused: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Class {
    Absent,
    Read,
    SearchedOnly,
}

impl PatientCounts {
    fn class(self) -> Class {
        match (self.reads, self.searches) {
            (0, 0) => Class::Absent,
            (0, _) => Class::SearchedOnly,
            _ => Class::Read,
        }
    }
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct ActorState {
    /// Sorted by time (ties in arrival order).
    entries: VecDeque<Entry>,
    ids: HashSet<Uuid>,
    patients: KeyMap<PatientCounts>,
    /// Patients read (or whose reading was attempted) in the window.
    read_patients: usize,
    /// Patients only seen in search results in the window.
    searched_patients: usize,
    /// Reads and writes of patients' data in the window, and how many were denied.
    share_events: u32,
    denied: u32,
    /// Patients whose reading was refused in the window.
    #[serde(default)]
    refused_patients: usize,
    /// Failed (denied) logins in the window.
    failed_logins: u32,
    /// Accesses that failed (outcome `error`: a record that does not exist) in the window.
    errors: u32,
    /// The newest event time seen for this actor.
    newest: Option<DateTime<Utc>>,
    /// The minute (Unix seconds / 60) being counted, and its count so far.
    minute: Option<(i64, u32)>,
    /// EWMA of events per active minute (starting from the floor); `None` until a first
    /// minute closed.
    baseline: Option<f64>,
}

impl ActorState {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Remembers one event; false for a duplicate id or an event older than the window.
    pub(super) fn insert(&mut self, o: &Observation) -> bool {
        if self.ids.contains(&o.id) {
            return false;
        }
        let newest = match self.newest {
            Some(n) if n >= o.time => n,
            _ => o.time,
        };
        if o.time <= newest - WINDOW {
            return false;
        }
        self.newest = Some(newest);
        self.count_minute(o.time);
        let at = self.entries.partition_point(|e| e.time <= o.time);
        let patient = o.patient.as_deref().map(hash_str);
        self.entries.insert(
            at,
            Entry {
                id: o.id,
                time: o.time,
                patient,
                touch: o.touch,
            },
        );
        self.ids.insert(o.id);
        self.account(patient, o.touch, 1);
        self.prune_before(newest - WINDOW);
        while self.entries.len() > MAX_ENTRIES_PER_ACTOR {
            self.pop_front();
        }
        true
    }

    /// Adds (`sign` 1) or removes (`sign` -1) one entry's contribution to the counters.
    fn account(&mut self, patient: Option<u64>, touch: Touch, sign: i32) {
        if let Touch::Login { denied: true } = touch {
            self.failed_logins = if sign > 0 {
                self.failed_logins.saturating_add(1)
            } else {
                self.failed_logins.saturating_sub(1)
            };
        }
        if touch == Touch::Failed {
            self.errors = if sign > 0 {
                self.errors.saturating_add(1)
            } else {
                self.errors.saturating_sub(1)
            };
        }
        let Some(patient) = patient else { return };
        let step = |n: &mut u32| {
            *n = if sign > 0 {
                n.saturating_add(1)
            } else {
                n.saturating_sub(1)
            };
        };
        match touch {
            Touch::Read { denied } | Touch::Wrote { denied } => {
                step(&mut self.share_events);
                if denied {
                    step(&mut self.denied);
                }
            }
            Touch::Searched | Touch::None | Touch::Login { .. } | Touch::Failed => {}
        }
        if !matches!(touch, Touch::Read { .. } | Touch::Searched) {
            return;
        }
        let counts = self.patients.entry(patient).or_default();
        let before = counts.class();
        match touch {
            Touch::Read { denied } => {
                step(&mut counts.reads);
                if denied {
                    let was_refused = counts.refused > 0;
                    step(&mut counts.refused);
                    let refused = counts.refused > 0;
                    if refused != was_refused {
                        self.refused_patients = if refused {
                            self.refused_patients.saturating_add(1)
                        } else {
                            self.refused_patients.saturating_sub(1)
                        };
                    }
                }
            }
            _ => step(&mut counts.searches),
        }
        let after = counts.class();
        if after == Class::Absent {
            self.patients.remove(&patient);
        }
        if before != after {
            for (class, delta) in [(before, -1i64), (after, 1)] {
                let counter = match class {
                    Class::Read => &mut self.read_patients,
                    Class::SearchedOnly => &mut self.searched_patients,
                    Class::Absent => continue,
                };
                *counter = counter.saturating_add_signed(delta as isize);
            }
        }
    }

    /// Folds finished minutes into the baseline. Events of an earlier minute than the one
    /// being counted (late arrivals) do not change it.
    fn count_minute(&mut self, time: DateTime<Utc>) {
        let minute = time.timestamp().div_euclid(60);
        match self.minute {
            Some((current, ref mut count)) if current == minute => *count += 1,
            Some((current, count)) if current < minute => {
                // A new actor starts from the floor, so a first minute that is already a burst
                // does not become its idea of normal.
                let prior = self.baseline.unwrap_or(BASELINE_FLOOR);
                self.baseline =
                    Some((1.0 - BASELINE_ALPHA) * prior + BASELINE_ALPHA * f64::from(count));
                self.minute = Some((minute, 1));
            }
            Some(_) => {}
            None => self.minute = Some((minute, 1)),
        }
    }

    /// Drops entries at or before `cutoff`.
    pub(super) fn prune_before(&mut self, cutoff: DateTime<Utc>) {
        while self.entries.front().is_some_and(|e| e.time <= cutoff) {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        let Some(entry) = self.entries.pop_front() else {
            return;
        };
        self.ids.remove(&entry.id);
        self.account(entry.patient, entry.touch, -1);
    }

    /// Whether the event id is in the window (a redelivery).
    pub(super) fn contains(&self, id: &Uuid) -> bool {
        self.ids.contains(id)
    }

    /// The actor's window features now.
    pub(super) fn features(&self) -> WindowFeatures {
        let recent = match self.newest {
            Some(newest) => {
                let from = newest - RATE_WINDOW;
                self.entries.len() - self.entries.partition_point(|e| e.time <= from)
            }
            None => 0,
        };
        WindowFeatures {
            distinct_patients: self.read_patients,
            searched_patients: self.searched_patients,
            recent_events: recent,
            baseline: self.baseline,
            patient_events: self.share_events,
            denied: self.denied,
            refused_patients: self.refused_patients,
            failed_logins: self.failed_logins,
            errors: self.errors,
        }
    }
}
