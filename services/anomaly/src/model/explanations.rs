//! Explanations of legitimate access, learned from the stream itself (and from care facts when
//! they are fed in). Most legitimate accesses to a patient's record are explained by a care
//! relationship; an access that nothing explains is the core signal of snooping.
//!
//! What explains an access by actor `a` of department `d` to patient `p` at time `t`, the
//! strongest wins:
//!
//! | explanation | strength |
//! |---|---|
//! | a care fact (`learn_relationship`) names `a`, or `d`, for `p` and covers `t` | 1.0 / 0.9 |
//! | `a` touched `p` before, and that relationship is confirmed (it was explained itself, or a write) | 1.0 (within 180 days) |
//! | `a` touched `p` before on another day, unconfirmed | `0.7 · (1 − dormancy)` |
//! | someone of `d` wrote data for `p` (created an encounter, an observation) in `d`'s last 3 working days / 30 days | 1.0 / `1 − dormancy` |
//! | someone of `d` (the ward proxy) touched `p` in the last 3 days / 14 days | 0.9 / `0.6 · (1 − dormancy)` |
//! | consult: a department `y` touched `p` in the last 3 days, and `d` habitually reads patients `y` has just touched (co-access share `s`) | `0.85 · min(1, 4s)` |
//! | covering: `a` read 3+ patients of the same department `y` in the last 2 hours, and `p` is one of `y`'s | 0.75 |
//! | research: purpose `HRESCH` by an actor or role that does research | 0.8 |
//! | the patient's own record (decision basis `own-record`; or a record her portal account was let into as her own before, whatever it withheld from her now) | 1.0 |
//! | review: a clinician's declared review of her organisation's records (purpose `HOPERAT` or `HQUALIMP`, basis `custodian` or none given; not a V record, not a colleague's), fading at an hour she and her department rarely work ([`super::REVIEW_STRENGTH`]) | 0.7 |
//! | a consent of the patient's names the actor's organisation (basis `consent`) | 0.6 |
//! | preparation: `a` documents as a rule for the patients whose dormant records she opened, hours later ([`super::preparations`]); a dormant first look at an ordinary record, provisionally | `0.75 ·` the habit |
//!
//! Dormancy (nobody else touched the patient for 1 → 7 days) is what turns an old explanation
//! into none: the department's patient of last week, nobody caring for her since, is a past
//! episode, not today's care (a neighbour snooped on in the emergency department).
//!
//! Dormancy and the department's note count days on the actor's department's clock
//! ([`OpenDays`]): a day it did not work at all (a practice's weekend, a bank holiday) ages
//! nothing for it. The family practice that ordered a test on Thursday reads its result on the
//! Tuesday after Easter as the next working day's care, not as a record left alone for five
//! days; what others touched just before it closed (the hospital's letter, the laboratory's
//! result) is its backlog, as fresh as yesterday's, while a record untouched for weeks is as
//! dormant as ever. An emergency department works every day: its clock is the calendar. Its
//! members' reads keep their three calendar days: a desk idle for a day (a registration desk's
//! quiet Saturday) must not make its patient of four days ago today's (measured on the
//! independent hospitals: that lost an incident and found nothing).
//!
//! A relationship created by an access nothing explained is *provisional*: it explains nothing
//! within the same day (so a snooper's second and third read of the VIP stay unexplained), and
//! it is confirmed when the actor comes back on another day to a record others are caring for
//! (then it explains), or the access is explained another way. Department facts, patient
//! activity and co-access are learned only from accesses that did not alert, so an insider does
//! not teach the model that his snooping is normal.

use chrono::{DateTime, Utc};

use super::cache::{pair, Bounded};

const DAY: i64 = 86_400;
/// The care memory's key for "anyone": a patient's care facts over all who hold them (no actor,
/// person or department has key 0).
const ANY_CARE: u64 = 0;
const HOUR: i64 = 3_600;

/// Where a care fact comes from in the clinical data (records publishes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CareVia {
    EncounterParticipant,
    EncounterServiceProvider,
    CareTeam,
    GeneralPractitioner,
    EpisodeOfCare,
    /// Not the clinical data's: the security team dismissed an alert on the user's access to the
    /// patient as legitimate (`$dismiss`).
    Dismissal,
}

/// Who the fact is about: a user (the id events carry as `actor.id`), or a whole department
/// (a service provider, a care team's managing organisation), named as events name it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CareActor {
    User(String),
    Department {
        organization: Option<String>,
        department: String,
    },
}

/// A care relationship from the clinical data: `actor` cares for `patient` during `[start,
/// end)` (`end` open while it lasts). Offline (`anomaly replay --care-facts`) one JSON object
/// per line: `{"patient": "Patient/1", "actor": {"user": "<user id>"} | {"department":
/// {"organization": "Organization/h", "department": "Cardiology"}}, "via":
/// "encounter-participant", "start": "...", "end": "..." | null}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CareFact {
    pub patient: String,
    pub actor: CareActor,
    pub via: CareVia,
    pub start: DateTime<Utc>,
    #[serde(default)]
    pub end: Option<DateTime<Utc>>,
}

/// The days a department worked (any member's event), over the last [`OPEN_DAYS_KEPT`]: what
/// ages a record for it ([`Relations::explain_on`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpenDays {
    /// The first day seen (day number); none: nothing known, every day counts.
    first: Option<i64>,
    /// The latest day seen, and bit `i` set when day `last − i` was worked.
    last: i64,
    open: u64,
}

/// Days a department's calendar remembers; older days count as worked.
pub const OPEN_DAYS_KEPT: i64 = 64;

impl OpenDays {
    /// A calendar that counts every day (no department, or none known).
    pub const EVERY_DAY: OpenDays = OpenDays {
        first: None,
        last: 0,
        open: 0,
    };

    /// A member worked at `t`.
    pub fn see(&mut self, t: i64) {
        let day = t.div_euclid(DAY);
        match self.first {
            None => {
                *self = OpenDays {
                    first: Some(day),
                    last: day,
                    open: 1,
                }
            }
            Some(_) if day > self.last => {
                let shift = day - self.last;
                self.open = if shift >= OPEN_DAYS_KEPT {
                    0
                } else {
                    self.open << shift
                };
                self.open |= 1;
                self.last = day;
            }
            Some(_) if self.last - day < OPEN_DAYS_KEPT => self.open |= 1 << (self.last - day),
            Some(_) => {}
        }
    }

    /// Whole days strictly between the days of `from` and `to` on which the department did not
    /// work: the days since its latest event, and the days it had none, within the last
    /// [`OPEN_DAYS_KEPT`] (days before it was first seen count as worked).
    pub fn closed_between(&self, from: i64, to: i64) -> i64 {
        let Some(first) = self.first else {
            return 0;
        };
        let end = to.div_euclid(DAY);
        let start = (from.div_euclid(DAY) + 1)
            .max(first)
            .max(self.last - (OPEN_DAYS_KEPT - 1));
        if start >= end {
            return 0;
        }
        // Days after the latest one seen: nobody worked (the event at `to` is a member's).
        let after = end - start.max(self.last + 1);
        let known_end = end.min(self.last + 1);
        let known = if start < known_end {
            // Bits of days start..known_end: positions last − (known_end − 1) ..= last − start.
            let (low, high) = (self.last - (known_end - 1), self.last - start);
            let width = high - low + 1;
            let mask = if width >= 64 {
                u64::MAX
            } else {
                ((1u64 << width) - 1) << low
            };
            width - i64::from((self.open & mask).count_ones())
        } else {
            0
        };
        after.max(0) + known
    }

    /// Time from `from` to `to` on the department's clock: less its closed days.
    pub fn elapsed(&self, from: i64, to: i64) -> i64 {
        to - from - DAY * self.closed_between(from, to)
    }
}

/// Why an access is legitimate, as far as the model can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    Nothing,
    Care,
    OwnHistory,
    DepartmentWrote,
    Department,
    Consult,
    Covering,
    Research,
    /// The patient reading her own record (decision basis `own-record`).
    OwnRecord,
    /// A consent of the patient's names the actor's organisation (decision basis `consent`).
    Consent,
    /// The actor's habit of opening records hours before she sees the patient
    /// ([`super::preparations`]).
    Preparation,
    /// A clinician's declared review of her organisation's records (purpose `HOPERAT` or
    /// `HQUALIMP`, decision basis `custodian`).
    Review,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Explanation {
    /// In `[0, 1]`: 1 fully explained, 0 nothing explains the access.
    pub strength: f64,
    pub why: Why,
    /// In `[0, 1]`: how long nobody else touched the patient (0 within a day, 1 after a week, or
    /// never seen once the model is mature).
    pub dormant: f64,
    /// The actor never touched this patient before.
    pub first_time: bool,
    /// The patient first appeared in the stream within the last 2 hours (a new admission).
    pub patient_new: bool,
    /// When someone other than the actor last touched the patient, if anyone did.
    pub others_last: Option<i64>,
    /// The department that touched the patient most recently (other than the actor's own),
    /// for the covering pattern.
    pub other_department: Option<u64>,
    /// The clinical data names a care team for the patient (a care fact began by now)...
    pub care_on_record: bool,
    /// ... and the actor, or her department, is on it now.
    pub in_care: bool,
}

impl Explanation {
    pub const NONE: Explanation = Explanation {
        strength: 0.0,
        why: Why::Nothing,
        dormant: 0.0,
        first_time: false,
        patient_new: false,
        others_last: None,
        other_department: None,
        care_on_record: false,
        in_care: false,
    };

    fn offer(&mut self, strength: f64, why: Why) {
        if strength > self.strength {
            self.strength = strength;
            self.why = why;
        }
    }
}

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct PairFact {
    last: i64,
    /// Day number of the last access, and on how many distinct days.
    last_day: i64,
    days: u16,
    confirmed: bool,
}

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct DeptFact {
    last: i64,
    last_actor: u64,
    /// The newest touch by a member other than `last_actor`: an actor's own unexplained
    /// access must not explain his next one through his department.
    other: Option<i64>,
    last_write: Option<i64>,
}

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct PatientFact {
    first: i64,
    last: i64,
    last_actor: u64,
    /// The newest touch by anyone but `last_actor`.
    other: Option<i64>,
    /// The departments that touched the patient most recently, with when.
    recent: [(u64, i64); 4],
}

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct CarePeriod {
    start: i64,
    end: i64,
}

/// Sizes of the relationship memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RelationLimits {
    pub pairs: usize,
    pub departments: usize,
    pub patients: usize,
    pub care: usize,
}

impl Default for RelationLimits {
    fn default() -> Self {
        Self {
            pairs: 4_000_000,
            departments: 2_000_000,
            patients: 2_000_000,
            care: 1_000_000,
        }
    }
}

/// The relationship memory.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Relations {
    pairs: Bounded<PairFact>,
    depts: Bounded<DeptFact>,
    patients: Bounded<PatientFact>,
    care: Bounded<CarePeriod>,
    /// Key `pair(d, y)`: how many of `d`'s reads were of a patient `y` had just touched.
    coaccess: Bounded<f32>,
    /// Key `d`: `d`'s reads counted for co-access.
    dept_reads: Bounded<f32>,
}

/// What an access taught, for [`Relations::learn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learn {
    Read,
    Write,
}

/// One access, as the relationship memory sees it.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    pub actor: u64,
    /// The actor's `Practitioner/<id>` key, 0 when unknown: care facts name people by it.
    pub person: u64,
    pub dept: u64,
    pub patient: u64,
    pub time: i64,
}

impl Relations {
    pub fn new(limits: RelationLimits) -> Self {
        Self {
            pairs: Bounded::new(limits.pairs),
            depts: Bounded::new(limits.departments),
            patients: Bounded::new(limits.patients),
            care: Bounded::new(limits.care),
            coaccess: Bounded::new(100_000),
            dept_reads: Bounded::new(20_000),
        }
    }

    /// Entries held over all maps (for the memory bound).
    pub fn len(&self) -> usize {
        self.pairs.len()
            + self.depts.len()
            + self.patients.len()
            + self.care.len()
            + self.coaccess.len()
            + self.dept_reads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a care fact (user or department).
    pub fn learn_care(&mut self, who: u64, patient: u64, start: i64, end: Option<i64>) {
        if who != ANY_CARE {
            self.learn_care(ANY_CARE, patient, start, end);
        }
        let period = self
            .care
            .get_or_insert_with(pair(who, patient), || CarePeriod {
                start,
                end: end.unwrap_or(i64::MAX),
            });
        period.start = period.start.min(start);
        period.end = period.end.max(end.unwrap_or(i64::MAX));
    }

    /// [`Relations::explain_on`] on the calendar's days: the tests' shorthand.
    #[cfg(test)]
    pub fn explain(&self, access: Access, research: bool, mature: bool) -> Explanation {
        self.explain_on(access, research, mature, &OpenDays::EVERY_DAY)
    }

    /// What explains `access`, with days counted on the department's clock (`calendar`);
    /// `mature` says whether the stream has run long enough for a patient never seen to mean a
    /// dormant record rather than a model that just started.
    pub fn explain_on(
        &self,
        access: Access,
        research: bool,
        mature: bool,
        calendar: &OpenDays,
    ) -> Explanation {
        let Access {
            actor,
            person,
            dept,
            patient,
            time: t,
        } = access;
        let mut e = Explanation::NONE;
        for (who, strength) in [(actor, 1.0), (person, 1.0), (dept, 0.9)] {
            if who == 0 {
                continue;
            }
            if let Some(c) = self.care.peek(pair(who, patient)) {
                if c.start <= t && t < c.end {
                    e.offer(strength, Why::Care);
                    e.in_care = true;
                }
            }
        }
        e.care_on_record = self
            .care
            .peek(pair(ANY_CARE, patient))
            .is_some_and(|c| c.start <= t);
        match self.patients.peek(patient) {
            Some(p) => {
                let by_others = if p.last_actor == actor {
                    p.other
                } else {
                    Some(p.last)
                };
                e.dormant = match by_others {
                    Some(last) => dormancy(calendar.elapsed(last, t)),
                    None if mature => 1.0,
                    None => 0.0,
                };
                // A new admission is someone else's start (the clerk's registration, the
                // triage nurse's look), not the actor's own first look minutes ago.
                e.patient_new = t - p.first <= 2 * HOUR && by_others.is_some();
                e.others_last = by_others;
                let reads = self.dept_reads.peek(dept).copied().unwrap_or(0.0).max(20.0);
                for (other, when) in p.recent {
                    if other == 0 || other == dept || t - when > 3 * DAY {
                        continue;
                    }
                    if e.other_department.is_none() {
                        e.other_department = Some(other);
                    }
                    let share = f64::from(
                        self.coaccess
                            .peek(pair(dept, other))
                            .copied()
                            .unwrap_or(0.0),
                    ) / f64::from(reads);
                    e.offer(0.85 * (4.0 * share).min(1.0), Why::Consult);
                }
            }
            None => e.dormant = if mature { 1.0 } else { 0.0 },
        }
        // The department's notes explain its reads for 30 days and its touches for 14, but after
        // the first three days a record nobody else has touched since is a past episode, not
        // today's care (the emergency department's patient of last week).
        if let Some(d) = self.depts.peek(pair(dept, patient)) {
            let past = 1.0 - e.dormant;
            if let Some(w) = d.last_write {
                if calendar.elapsed(w, t) <= 3 * DAY {
                    e.offer(1.0, Why::DepartmentWrote);
                } else if t - w <= 30 * DAY {
                    e.offer(past, Why::DepartmentWrote);
                }
            }
            let by_others = if d.last_actor == actor {
                d.other
            } else {
                Some(d.last)
            };
            if let Some(last) = by_others {
                if t - last <= 3 * DAY {
                    e.offer(0.9, Why::Department);
                } else if t - last <= 14 * DAY {
                    e.offer(0.6 * past, Why::Department);
                }
            }
        }
        // Likewise a return on another day after a lone look nothing explained: to a record
        // nobody else is caring for, it is the neighbour's second visit, not follow-up care.
        match self.pairs.peek(pair(actor, patient)) {
            Some(p) if t - p.last <= 180 * DAY => {
                if p.confirmed {
                    e.offer(1.0, Why::OwnHistory);
                } else if p.days >= 2 || t.div_euclid(DAY) > p.last_day {
                    e.offer(0.7 * (1.0 - e.dormant), Why::OwnHistory);
                }
            }
            Some(_) => {}
            None => e.first_time = true,
        }
        if research {
            e.offer(0.8, Why::Research);
        }
        e
    }

    /// Remembers an access. `explained`: something explained it (a relationship made by it is
    /// confirmed, as by a write); `alerted`: it alerted, so it teaches nothing about departments
    /// and patients and confirms no relationship (a fraud's prescription makes the stranger no
    /// patient of hers), unless it broke the glass (`emergency`): then the record counts as
    /// touched.
    pub fn learn(
        &mut self,
        access: Access,
        kind: Learn,
        explained: bool,
        alerted: bool,
        emergency: bool,
    ) {
        let Access {
            actor,
            dept,
            patient,
            time: t,
            ..
        } = access;
        let day = t.div_euclid(DAY);
        let fact = self
            .pairs
            .get_or_insert_with(pair(actor, patient), || PairFact {
                last: t,
                last_day: day,
                days: 1,
                confirmed: false,
            });
        if day > fact.last_day {
            fact.days = fact.days.saturating_add(1);
            fact.last_day = day;
        }
        fact.last = fact.last.max(t);
        fact.confirmed |= (explained || kind == Learn::Write) && (!alerted || emergency);
        if alerted {
            // A broken glass is a declared emergency: even when it alerts, the record is in
            // someone's hands now (the consultant called down to the emergency department
            // joins a case in progress). Any other alerting look leaves the record as it was:
            // a snooper must not make a neighbour's record look cared for.
            if emergency {
                self.touch_patient(dept, actor, patient, t);
            }
            return;
        }
        let d = self
            .depts
            .get_or_insert_with(pair(dept, patient), || DeptFact {
                last: t,
                last_actor: actor,
                other: None,
                last_write: None,
            });
        if d.last_actor != actor {
            d.other = Some(d.last);
            d.last_actor = actor;
        }
        d.last = d.last.max(t);
        if kind == Learn::Write {
            d.last_write = Some(d.last_write.map_or(t, |w| w.max(t)));
        }
        let recent = self.touch_patient(dept, actor, patient, t);
        if kind == Learn::Read {
            *self.dept_reads.get_or_insert_with(dept, || 0.0) += 1.0;
            let mut counted = [0u64; 4];
            for (i, (other, when)) in recent.into_iter().enumerate() {
                if other == 0 || other == dept || t - when > 3 * DAY || counted.contains(&other) {
                    continue;
                }
                counted[i] = other;
                *self.coaccess.get_or_insert_with(pair(dept, other), || 0.0) += 1.0;
            }
        }
    }

    /// Records that `actor` of `dept` touched `patient` at `t` (when she was last touched,
    /// by whom, and the ring of departments that did lately); returns the ring as it was.
    fn touch_patient(&mut self, dept: u64, actor: u64, patient: u64, t: i64) -> [(u64, i64); 4] {
        let p = self.patients.get_or_insert_with(patient, || PatientFact {
            first: t,
            last: t,
            last_actor: actor,
            other: None,
            recent: [(0, 0); 4],
        });
        let recent = p.recent;
        if p.last_actor != actor {
            p.other = Some(p.last);
            p.last_actor = actor;
        }
        p.last = p.last.max(t);
        // The ring of departments: refresh this one's time, or replace the stalest.
        match p.recent.iter().position(|(k, _)| *k == dept) {
            Some(i) => p.recent[i].1 = t,
            None => {
                let stalest = (0..p.recent.len())
                    .min_by_key(|i| p.recent[*i].1)
                    .unwrap_or(0);
                p.recent[stalest] = (dept, t);
            }
        }
        recent
    }
}

/// How dormant a record is whom nobody else touched for `elapsed` seconds: 0 within a day, 1
/// after a week.
fn dormancy(elapsed: i64) -> f64 {
    clamp01((elapsed as f64 / DAY as f64 - 1.0) / 6.0)
}

fn clamp01(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u64 = 11;
    const B: u64 = 12;
    const WARD: u64 = 21;
    const CARDIO: u64 = 22;
    const ELSEWHERE: u64 = 23;
    const P: u64 = 31;
    const Q: u64 = 32;

    fn access(actor: u64, dept: u64, patient: u64, time: i64) -> Access {
        Access {
            actor,
            person: 0,
            dept,
            patient,
            time,
        }
    }

    #[test]
    fn a_colleague_of_the_ward_is_explained_a_stranger_is_not() {
        let mut r = Relations::new(RelationLimits::default());
        r.learn(access(A, WARD, P, 0), Learn::Read, false, false, false);
        let colleague = r.explain(access(B, WARD, P, 3600), false, true);
        assert_eq!(colleague.why, Why::Department);
        assert!(colleague.strength >= 0.9);
        let stranger = r.explain(access(B, ELSEWHERE, P, 3600), false, true);
        assert_eq!(stranger.strength, 0.0);
        assert!(stranger.first_time);
        // A patient nobody has ever touched, once the model is mature: dormant.
        let never = r.explain(access(B, ELSEWHERE, Q, 3600), false, true);
        assert_eq!(never.dormant, 1.0);
    }

    #[test]
    fn a_provisional_relationship_explains_nothing_the_same_day() {
        let mut r = Relations::new(RelationLimits::default());
        r.learn(access(A, ELSEWHERE, P, 0), Learn::Read, false, false, false);
        // A colleague of the department is explained by A's access; A's own next one is not.
        assert_eq!(
            r.explain(access(B, ELSEWHERE, P, 60), false, true).strength,
            0.9
        );
        assert_eq!(
            r.explain(access(A, ELSEWHERE, P, 60), false, true).strength,
            0.0
        );
        // Nothing but the actor's own unexplained, alerting read: the same day, still nothing.
        r.learn(access(B, CARDIO, Q, 0), Learn::Read, false, true, false);
        let again = r.explain(access(B, CARDIO, Q, 120), false, true);
        assert_eq!(again.strength, 0.0);
        assert!(!again.first_time);
        // Back another day to a record nobody else touched since: still nothing (the
        // neighbour's second visit), and it confirms nothing.
        let back = access(B, CARDIO, Q, 2 * DAY);
        assert_eq!(r.explain(back, false, true).strength, 0.0);
        r.learn(back, Learn::Read, false, false, false);
        assert_eq!(
            r.explain(access(B, CARDIO, Q, 2 * DAY + 60), false, true)
                .strength,
            0.0
        );
        // Back another day to a record others are caring for: it counts for something.
        r.learn(access(A, WARD, Q, 3 * DAY), Learn::Read, true, false, false);
        assert!(
            r.explain(access(B, CARDIO, Q, 3 * DAY + 600), false, true)
                .strength
                >= 0.7
        );
    }

    /// A prescription written for a stranger alerts: a write it is, but one that alerted, so it
    /// makes her no patient of the prescriber's (a fraud's next prescription for her, days
    /// later, is not follow-up care). The same prescription unalerted would.
    #[test]
    fn an_alerting_write_confirms_no_relationship() {
        let mut r = Relations::new(RelationLimits::default());
        r.learn(access(A, CARDIO, P, 0), Learn::Read, false, false, false);
        r.learn(access(A, CARDIO, P, 60), Learn::Write, false, true, false);
        let back = r.explain(access(A, CARDIO, P, 4 * DAY), false, true);
        assert!(back.strength < 0.5, "{back:?}");
        r.learn(access(B, CARDIO, Q, 0), Learn::Read, false, false, false);
        r.learn(access(B, CARDIO, Q, 60), Learn::Write, false, false, false);
        let cared = r.explain(access(B, CARDIO, Q, 4 * DAY), false, true);
        assert_eq!(cared.strength, 1.0);
        assert_eq!(cared.why, Why::OwnHistory);
    }

    /// The emergency department breaks the glass for a patient held elsewhere, and it alerts;
    /// the cardiologist called down an hour later joins a case in progress (a record in hand,
    /// and cardiology often reads the emergency department's patients), not a dormant record.
    /// Any other alerting look leaves the record as dormant as it was, and neither teaches the
    /// department anything.
    #[test]
    fn a_broken_glass_that_alerted_still_puts_the_record_in_hand() {
        const ED: u64 = 24;
        const C: u64 = 13;
        let mut r = Relations::new(RelationLimits::default());
        for i in 0..30 {
            let patient = 100 + i;
            let t = i as i64 * 600;
            r.learn(access(A, ED, patient, t), Learn::Read, true, false, false);
            r.learn(
                access(B, CARDIO, patient, t + 300),
                Learn::Read,
                true,
                false,
                false,
            );
        }
        let glass = 10 * DAY;
        r.learn(access(A, ED, P, glass), Learn::Read, false, true, true);
        r.learn(access(A, ED, Q, glass), Learn::Read, false, true, false);
        let called_down = r.explain(access(B, CARDIO, P, glass + 3600), false, true);
        assert_eq!(called_down.dormant, 0.0);
        assert_eq!(called_down.why, Why::Consult);
        assert!(called_down.strength >= 0.5, "{}", called_down.strength);
        let after_a_look = r.explain(access(B, CARDIO, Q, glass + 3600), false, true);
        assert_eq!(after_a_look.dormant, 1.0);
        assert_eq!(after_a_look.strength, 0.0);
        // A's colleague in the department: an alerting glass is no department relationship.
        assert_eq!(
            r.explain(access(C, ED, P, glass + 3600), false, true)
                .strength,
            0.0
        );
    }

    #[test]
    fn the_departments_patient_of_last_week_nobody_cares_for_now_is_a_past_episode() {
        let mut r = Relations::new(RelationLimits::default());
        r.learn(access(A, WARD, P, 0), Learn::Write, true, false, false);
        r.learn(access(A, WARD, Q, 0), Learn::Write, true, false, false);
        // Within three days the department's note explains a colleague's read.
        let soon = r.explain(access(B, WARD, P, 2 * DAY), false, true);
        assert_eq!((soon.why, soon.strength), (Why::DepartmentWrote, 1.0));
        // Ten days on, nobody having touched her since: nothing explains it.
        let dormant = r.explain(access(B, WARD, P, 10 * DAY), false, true);
        assert_eq!(dormant.dormant, 1.0);
        assert_eq!(dormant.strength, 0.0);
        // Ten days on, someone else caring for her today: the note still explains it.
        r.learn(
            access(A, CARDIO, Q, 10 * DAY - 3600),
            Learn::Read,
            true,
            false,
            false,
        );
        let active = r.explain(access(B, WARD, Q, 10 * DAY), false, true);
        assert_eq!((active.why, active.strength), (Why::DepartmentWrote, 1.0));
    }

    /// A calendar of a department that worked on `days` (day numbers), at 09:00.
    fn worked_on(days: impl IntoIterator<Item = i64>) -> OpenDays {
        let mut calendar = OpenDays::default();
        for day in days {
            calendar.see(day * DAY + 9 * HOUR);
        }
        calendar
    }

    #[test]
    fn a_department_closed_for_days_counts_only_the_days_it_worked() {
        // A practice that works Monday to Thursday (days 0-3), closed Friday to Monday.
        let practice = worked_on(0..4);
        let (thursday, tuesday) = (3 * DAY + 10 * HOUR, 8 * DAY + 9 * HOUR);
        assert_eq!(practice.closed_between(thursday, tuesday), 4);
        assert_eq!(
            practice.elapsed(thursday, tuesday),
            tuesday - thursday - 4 * DAY
        );
        // A day it worked in between counts: the Saturday surgery.
        let saturday_surgery = worked_on([0, 1, 2, 3, 5]);
        assert_eq!(saturday_surgery.closed_between(thursday, tuesday), 3);
        // Out of order, a late event of an earlier day still marks it worked.
        let mut late = worked_on([0, 1, 3]);
        late.see(2 * DAY + 23 * HOUR);
        assert_eq!(late, worked_on(0..4));
        // Every day worked, or no calendar: the calendar's days.
        assert_eq!(
            worked_on(0..9).elapsed(thursday, tuesday),
            tuesday - thursday
        );
        assert_eq!(
            OpenDays::EVERY_DAY.elapsed(thursday, tuesday),
            tuesday - thursday
        );
        // Days before the department was first seen, or beyond what it remembers, count as
        // worked: a department new to the stream is no proof that nobody worked.
        let new = worked_on([7]);
        assert_eq!(new.closed_between(0, tuesday), 0);
        let long_ago = worked_on([0, 200]);
        assert_eq!(
            long_ago.closed_between(0, 201 * DAY),
            OPEN_DAYS_KEPT - 1,
            "only the remembered days, less the one it worked"
        );
    }

    #[test]
    fn the_practices_order_read_after_a_holiday_is_todays_care_the_wards_is_not() {
        // The practice orders a test on Thursday, the ward another; nobody touches either
        // patient again after the laboratory system writes the result that afternoon.
        let mut r = Relations::new(RelationLimits::default());
        const PRACTICE: u64 = 25;
        const LAB: u64 = 26;
        const LAB_SYSTEM: u64 = 14;
        let thursday = 3 * DAY + 10 * HOUR;
        for (patient, dept) in [(P, PRACTICE), (Q, WARD)] {
            let result = access(LAB_SYSTEM, LAB, patient, thursday + 4 * HOUR);
            r.learn(
                access(A, dept, patient, thursday),
                Learn::Write,
                true,
                false,
                false,
            );
            r.learn(result, Learn::Write, true, false, false);
        }
        // The Tuesday after Easter, a colleague of the practice reads the result: on the
        // practice's clock (closed Friday to Monday) it is the next working day.
        let tuesday = 8 * DAY + 9 * HOUR;
        let practice = worked_on(0..4);
        let read = r.explain_on(access(B, PRACTICE, P, tuesday), false, true, &practice);
        assert_eq!((read.why, read.strength), (Why::DepartmentWrote, 1.0));
        assert_eq!(read.dormant, 0.0);
        // A week of the practice's work later, its note has aged as the ward's.
        let later = r.explain_on(
            access(B, PRACTICE, P, tuesday + 5 * DAY),
            false,
            true,
            &worked_on((0..4).chain(8..14)),
        );
        assert!(later.strength < 0.4, "{later:?}");
        // The ward worked every day: its patient of five days ago, untouched since, is a
        // past episode as before.
        let ward = worked_on(0..9);
        let stale = r.explain_on(access(B, WARD, Q, tuesday), false, true, &ward);
        assert!(stale.dormant > 0.6 && stale.strength < 0.4, "{stale:?}");
        assert_eq!(
            stale.strength,
            r.explain(access(B, WARD, Q, tuesday), false, true).strength
        );
    }

    #[test]
    fn consults_are_learned_from_co_access() {
        let mut r = Relations::new(RelationLimits::default());
        // Cardiology reads, many times, patients the ward has just touched.
        for i in 0..50 {
            let patient = 1000 + i;
            r.learn(
                access(A, WARD, patient, i as i64 * 60),
                Learn::Read,
                false,
                false,
                false,
            );
            r.learn(
                access(B, CARDIO, patient, i as i64 * 60 + 30),
                Learn::Read,
                false,
                false,
                false,
            );
        }
        r.learn(access(A, WARD, P, 4000), Learn::Read, false, false, false);
        let consult = r.explain(access(B, CARDIO, P, 4100), false, true);
        assert_eq!(consult.why, Why::Consult);
        assert!(consult.strength > 0.8, "{consult:?}");
        // A department that never consults on the ward's patients is not explained.
        assert_eq!(
            r.explain(access(B, ELSEWHERE, P, 4100), false, true)
                .strength,
            0.0
        );
    }

    #[test]
    fn care_facts_explain_within_their_period() {
        let mut r = Relations::new(RelationLimits::default());
        r.learn_care(A, P, 100, Some(200));
        assert_eq!(
            r.explain(access(A, WARD, P, 150), false, true).why,
            Why::Care
        );
        assert_eq!(
            r.explain(access(A, WARD, P, 250), false, true).strength,
            0.0
        );
        r.learn_care(CARDIO, P, 0, None);
        assert!(r.explain(access(B, CARDIO, P, 9_999), false, true).strength >= 0.9);
    }

    #[test]
    fn a_care_team_on_record_is_known_and_who_is_on_it_now() {
        let mut r = Relations::new(RelationLimits::default());
        r.learn_care(A, P, 100, Some(200));
        let before = r.explain(access(B, WARD, P, 50), false, true);
        assert!(!before.care_on_record && !before.in_care);
        let on = r.explain(access(A, WARD, P, 150), false, true);
        assert!(on.care_on_record && on.in_care);
        // Someone else, or A after her care ended: a team is on record, she is not on it.
        for off in [access(B, WARD, P, 150), access(A, WARD, P, 250)] {
            let e = r.explain(off, false, true);
            assert!(e.care_on_record && !e.in_care, "{e:?}");
        }
        assert!(
            !r.explain(access(A, WARD, Q, 150), false, true)
                .care_on_record
        );
    }
}
