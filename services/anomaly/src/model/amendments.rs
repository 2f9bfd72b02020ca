//! Amendments: changes made to what a record already holds (updates and deletes), and a staff
//! member's own record.
//!
//! Writing is care: a note or an order explains the reads around it. Changing or deleting
//! entries after the fact is another thing. Care amends an entry now and then (a mistyped
//! value, an order changed, the pharmacy verifying an order); one person rewriting or deleting
//! several entries of one patient within half an hour, of a kind their role and department
//! hardly ever amend (a surgeon changing the administrations on a drug chart, a nurse deleting
//! the day's notes), is how documentation is falsified after an incident. An amendment run is
//! the actor's updates and deletes of one patient's data within [`RUN`]; its risk grows with
//! its length from the second amendment and is weighed by how rarely the role and department
//! amend that kind of data ([`super::baselines::Rarity::amend`], as it was when the run began:
//! the run's own amendments must not make themselves ordinary), beyond the longest run the
//! actor's department made without suspicion ([`Run::risk`]): the pharmacy verifying a new
//! patient's orders one after another is its daily work.
//!
//! A staff member's own record: the access kernel says when a user opens her own record
//! through the patient portal (decision basis `own-record`). The same user opening or changing
//! that record through her staff role, as a practitioner, bypasses the portal's view of it (and
//! every hospital's policy): reads are looked at, changes are tampering with one's own record.
//! Nothing but the kernel's own-record decisions teaches who is whose patient, so a log without
//! a portal is not affected.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::cache::Bounded;

/// How long an amendment run lasts (event time) from each amendment to the next.
pub const RUN: i64 = 30 * 60;
/// Amendments remembered per actor at most (a run longer than this is counted as this long).
const REMEMBERED: usize = 16;
/// Own records remembered per user: herself and a few (a portal account may hold a child's).
const OWN_RECORDS: usize = 4;
/// Users whose own records are remembered at most.
pub const OWN_RECORD_USERS: usize = 200_000;

/// A run so far: its length (this amendment included) and the rarest kind of data it amended,
/// as rare as it was when amended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    pub length: usize,
    pub rarity: f64,
}

impl Run {
    pub const NONE: Run = Run {
        length: 0,
        rarity: 0.0,
    };

    /// The run's risk against `usual`, the longest run the department made without suspicion
    /// (at least one): half a step past it counts half, two steps fully; weighed from half for
    /// kinds of data the groups amend every day to fully for what they never amend. Steps
    /// further count again as far as the kind is rare: a cardiologist rewriting a letter four
    /// times and deleting it (what cardiology seldom amends, 0.7) is more than one step past
    /// a pair, while the pharmacy's first long run of verifications (what it amends every
    /// day) stays under an alert, to be learned as its usual.
    pub fn risk(self, usual: usize) -> f64 {
        let beyond = (self.length as f64 - usual.max(1) as f64) / 2.0;
        let rarity = self.rarity.clamp(0.0, 1.0);
        let weight = 0.5 + 0.5 * rarity;
        (beyond.clamp(0.0, 1.0) * weight + (beyond - 1.0).max(0.0) * weight * rarity).min(1.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Amendment {
    id: Uuid,
    patient: u64,
    time: i64,
    /// How rarely its role and department amended its kind of data, then.
    rarity: f32,
    /// It alerted, or an alert of the same run took it in.
    alerted: bool,
    /// Its run ended and was counted in [`Amendments::record`]'s finished runs.
    #[serde(default)]
    counted: bool,
}

/// One actor's recent amendments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Amendments {
    recent: VecDeque<Amendment>,
}

impl Amendments {
    /// Remembers an amendment of `patient`'s data at `t` (of a kind its groups amend with
    /// `rarity`) and returns the run it belongs to (the actor's amendments of her, each within
    /// [`RUN`] of the next) and the longest of the actor's runs that ended since the last
    /// amendment without an alert, if any: what the department may learn as usual. A run is
    /// learned once over, so that it cannot make its own length usual as it grows.
    pub fn record(&mut self, id: Uuid, patient: u64, t: i64, rarity: f64) -> (Run, Option<usize>) {
        let finished = self.finished(t);
        while self.recent.front().is_some_and(|a| t - a.time > RUN * 4) {
            self.recent.pop_front();
        }
        if self.recent.len() >= REMEMBERED {
            self.recent.pop_front();
        }
        self.recent.push_back(Amendment {
            id,
            patient,
            time: t,
            rarity: rarity as f32,
            alerted: false,
            counted: false,
        });
        let run = self.run(patient, t).fold(Run::NONE, |run, a| Run {
            length: run.length + 1,
            rarity: run.rarity.max(f64::from(a.rarity)),
        });
        (run, finished)
    }

    /// The longest run without an alert among those over at `t` (no amendment of the patient
    /// within [`RUN`] since its last) and not counted yet; marks them counted.
    fn finished(&mut self, t: i64) -> Option<usize> {
        let mut longest = None;
        let mut i = 0;
        while i < self.recent.len() {
            let first = self.recent[i];
            if first.counted {
                i += 1;
                continue;
            }
            // The run starting here: the patient's later amendments, each within RUN.
            let mut last = first.time;
            let mut members = vec![i];
            for (j, a) in self.recent.iter().enumerate().skip(i + 1) {
                if a.patient == first.patient && !a.counted {
                    if a.time - last > RUN {
                        break;
                    }
                    last = a.time;
                    members.push(j);
                }
            }
            if t - last > RUN {
                let clean = members.iter().all(|&j| !self.recent[j].alerted);
                for &j in &members {
                    self.recent[j].counted = true;
                }
                if clean {
                    longest = longest.max(Some(members.len()));
                }
            }
            i += 1;
        }
        longest
    }

    /// The run of `patient` ending at `t`, newest first.
    fn run(&self, patient: u64, t: i64) -> impl Iterator<Item = &Amendment> {
        let mut next = t;
        self.recent
            .iter()
            .rev()
            .filter(move |a| a.patient == patient)
            .take_while(move |a| {
                let within = next - a.time <= RUN;
                next = a.time;
                within
            })
    }

    /// An alert on the amendment `id` of `patient` at `t`: the run's earlier amendments that
    /// have not alerted alert with it (returned, oldest first). Marks them and `id` alerted.
    pub fn alerted(&mut self, id: Uuid, patient: u64, t: i64) -> Vec<Uuid> {
        let run: Vec<Uuid> = self.run(patient, t).map(|a| a.id).collect();
        let mut joined = Vec::new();
        for a in self.recent.iter_mut().filter(|a| run.contains(&a.id)) {
            if !a.alerted && a.id != id {
                joined.push(a.id);
            }
            a.alerted = true;
        }
        joined
    }
}

/// Whose own record each user opened through the portal ([`OWN_RECORD_USERS`] users at most).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OwnRecords {
    users: Bounded<[u64; OWN_RECORDS]>,
}

impl Default for OwnRecords {
    fn default() -> Self {
        Self {
            users: Bounded::new(OWN_RECORD_USERS),
        }
    }
}

impl OwnRecords {
    /// The access kernel permitted `user` to `patient`'s data as her own record.
    pub fn learn(&mut self, user: u64, patient: u64) {
        let own = self.users.get_or_insert_with(user, || [0; OWN_RECORDS]);
        if own.contains(&patient) {
            return;
        }
        // The newest replaces the oldest when a portal account holds more.
        own.rotate_right(1);
        own[0] = patient;
    }

    /// Whether `patient` is `user`'s own record (or one her portal account holds).
    pub fn is_own(&self, user: u64, patient: u64) -> bool {
        patient != 0
            && self
                .users
                .peek(user)
                .is_some_and(|own| own.contains(&patient))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn a_run_is_one_patients_amendments_each_within_half_an_hour_of_the_next() {
        let mut a = Amendments::default();
        let mut length = |n, patient, t| a.record(id(n), patient, t, 0.5).0.length;
        assert_eq!(length(1, 7, 0), 1);
        assert_eq!(length(2, 8, 60), 1, "another patient's is another run");
        assert_eq!(length(3, 7, 20 * 60), 2);
        assert_eq!(length(4, 7, 45 * 60), 3, "within RUN of the previous one");
        assert_eq!(length(5, 7, 45 * 60 + RUN + 1), 1, "a pause ends the run");
    }

    #[test]
    fn a_run_is_as_rare_as_its_rarest_amendment_was_when_made() {
        let mut a = Amendments::default();
        a.record(id(1), 7, 0, 0.9);
        let (run, _) = a.record(id(2), 7, 60, 0.4);
        assert_eq!(run.length, 2);
        assert!((run.rarity - 0.9).abs() < 1e-6, "{run:?}");
    }

    #[test]
    fn a_run_is_learned_once_over_and_only_without_an_alert() {
        let mut a = Amendments::default();
        let finished = |a: &mut Amendments, n, patient, t| a.record(id(n), patient, t, 0.5).1;
        assert_eq!(finished(&mut a, 1, 7, 0), None);
        assert_eq!(finished(&mut a, 2, 7, 60), None);
        assert_eq!(
            finished(&mut a, 3, 7, 120),
            None,
            "still going: not learned as it grows"
        );
        assert_eq!(finished(&mut a, 4, 8, 120 + RUN + 1), Some(3));
        assert_eq!(finished(&mut a, 5, 8, 120 + RUN + 2), None, "counted once");
        a.alerted(id(5), 8, 120 + RUN + 2);
        assert_eq!(
            finished(&mut a, 6, 9, 120 + 3 * RUN),
            None,
            "an alerted run is not usual"
        );
    }

    #[test]
    fn an_alert_takes_in_the_runs_earlier_amendments_once() {
        let mut a = Amendments::default();
        a.record(id(1), 7, 0, 1.0);
        a.record(id(2), 8, 10, 1.0);
        a.record(id(3), 7, 20, 1.0);
        a.record(id(4), 7, 30, 1.0);
        assert_eq!(a.alerted(id(4), 7, 30), vec![id(1), id(3)]);
        a.record(id(5), 7, 40, 1.0);
        assert!(a.alerted(id(5), 7, 40).is_empty(), "taken in already");
    }

    #[test]
    fn a_run_weighs_by_its_length_past_the_usual_and_how_rarely_the_kind_is_amended() {
        let run = |length, rarity| Run { length, rarity };
        assert_eq!(run(1, 1.0).risk(0), 0.0);
        assert_eq!(run(2, 1.0).risk(0), 0.5);
        assert_eq!(run(3, 1.0).risk(1), 1.0);
        assert_eq!(
            run(3, 1.0).risk(2),
            0.5,
            "one past a department's usual pair"
        );
        assert_eq!(run(4, 0.0).risk(2), 0.5, "what the groups amend every day");
        assert_eq!(
            run(8, 0.0).risk(2),
            0.5,
            "however long, of what is amended every day"
        );
        assert_eq!(
            run(4, 0.6).risk(1),
            1.0,
            "three past it, of what is seldom amended"
        );
        assert_eq!(run(3, 0.6).risk(1), 0.8, "two past it");
        assert_eq!(
            run(6, 1.0).risk(6),
            0.0,
            "the pharmacy verifying a new patient's orders"
        );
    }

    #[test]
    fn own_records_are_the_portals_and_a_few_per_user() {
        let mut own = OwnRecords::default();
        own.learn(1, 100);
        own.learn(1, 101);
        assert!(own.is_own(1, 100) && own.is_own(1, 101));
        assert!(!own.is_own(2, 100), "another user's");
        for p in 102..106 {
            own.learn(1, p);
        }
        assert!(!own.is_own(1, 100), "the oldest forgotten past four");
        assert!(!own.is_own(1, 0));
    }
}
