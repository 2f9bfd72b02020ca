//! Preparations: charts opened hours before their patient is seen.
//!
//! A clinic physician reads tomorrow's list the evening before, or the morning's before the
//! clinic opens; a surgeon reviews the next day's theatre list; an oncologist the tumour
//! board's cases. Each look is at a record nobody touched for days, with nothing in the stream
//! to explain it yet, often a dozen in a row: from the access alone, a spree of dormant
//! records. What tells it from curiosity comes later: the same user sees the patient and
//! documents for her within the day. On an independent generator's hospitals, 806 of 1,076
//! false alerts of one hospital were looks the user's own note for the patient followed 1-24
//! hours later; of 854 attack events, 10.
//!
//! So an actor's dormant, unexplained first looks at ordinary records (a consent to share the
//! record explains nothing here: it is lawful, not care) are remembered for [`HORIZON`]; her
//! note for the patient after [`SOON`] (earlier, the visit's or the session's own note: the
//! grace periods' and the session wait's business) counts the look as prepared, the horizon passing without one as not. Where her
//! looks are prepared as a rule ([`Preparations::factor`]: from half of them, fully at nine in
//! ten, once [`SAMPLES`] are known; before, what she lacks of them counts as her
//! department's share, or as half prepared), such a look is explained as preparation. A
//! snooper's looks are never followed by her care, so she never has the habit; a preparer's
//! look that no note follows counts against hers. Very restricted records and colleagues' are
//! never explained this way.
//!
//! Such a look used to wait [`HORIZON`] for her note and alert without one. Counted in replay
//! (which had let those lines go before the day was out), that alert was a false one 566 times
//! on five academic centres' logs (results reviewed, patients who did not come) and a true one
//! once in fifteen hospitals, a day late: a day-late alert on a no-show is noise for the
//! security team, and replay and the live service must agree.
//!
//! A habit takes days to show (a look is judged up to a day later), and a clinic's first days
//! in the log are its lists raised as sprees. Where a department's members prepare as a rule
//! ([`DepartmentPreparations`]: two of them at least), a member whose own looks are not yet
//! known borrows its share for what she lacks of [`SAMPLES`]; her own unprepared looks soon
//! outweigh it.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::habits::NOTE_HORIZON;

/// How long a look waits for the actor's note for the patient.
pub const HORIZON: i64 = 24 * 3600;
/// A note this soon after the look is the visit's own, not a prepared one's: up to the note
/// habit's horizon ([`NOTE_HORIZON`]), a session's (the therapist who writes after her
/// fifty-minute session waits for it, [`super::Detector`]'s session wait). At half an hour,
/// her session notes counted as preparations, and with what a newcomer lacks of [`SAMPLES`]
/// counted as half prepared, four sessions made her look at an unrelated dormant record
/// explained enough to neither alert nor wait.
pub const SOON: i64 = NOTE_HORIZON;
/// Outcomes known (faded: about ten looks) before the habit counts.
pub const SAMPLES: f32 = 8.0;
/// What one outcome weighs the next time (about 30 outcomes' memory).
const FADE: f32 = 0.97;
/// Looks remembered per actor at most (a clinic's lists of a day and an evening; 16 bytes each).
const REMEMBERED: usize = 48;
/// The share of her looks prepared counted for each of the [`SAMPLES`] she lacks, where her
/// department has no habit to lend: unknown either way.
const UNKNOWN_SHARE: f32 = 0.5;
/// The strength of the explanation at the full habit: as a consult guessed.
pub const STRENGTH: f64 = 0.75;

/// Looks judged by one call: prepared (her note came) and not (the horizon passed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Judged {
    pub prepared: u16,
    pub unprepared: u16,
}

impl Judged {
    pub fn add(&mut self, other: Self) {
        self.prepared = self.prepared.saturating_add(other.prepared);
        self.unprepared = self.unprepared.saturating_add(other.unprepared);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Look {
    patient: u64,
    time: i64,
}

/// One actor's dormant, unexplained first looks of the last [`HORIZON`], and how often such
/// looks were followed by her note for the patient.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Preparations {
    looks: VecDeque<Look>,
    prepared: f32,
    unprepared: f32,
}

impl Preparations {
    /// A dormant, unexplained first look at `patient` at `t` (once per patient while it is
    /// remembered): the looks the passing time judged.
    pub fn look(&mut self, patient: u64, t: i64) -> Judged {
        let judged = self.expire(t);
        if self.looks.iter().any(|l| l.patient == patient) {
            return judged;
        }
        if self.looks.len() >= REMEMBERED {
            // Forgotten unjudged: a list longer than a day's clinic is not a clinic's list.
            self.looks.pop_front();
        }
        self.looks.push_back(Look { patient, time: t });
        judged
    }

    /// The actor wrote for `patient` at `t`: a look at her [`SOON`] or more before was a
    /// preparation. The looks judged.
    pub fn wrote(&mut self, patient: u64, t: i64) -> Judged {
        let mut judged = self.expire(t);
        if let Some(at) = self.looks.iter().position(|l| l.patient == patient) {
            let look = self.looks.remove(at);
            if look.is_some_and(|l| t - l.time >= SOON) {
                self.learn(true);
                judged.prepared += 1;
            }
        }
        judged
    }

    /// Looks older than [`HORIZON`] were not preparations.
    fn expire(&mut self, t: i64) -> Judged {
        let mut judged = Judged::default();
        while self.looks.front().is_some_and(|l| t - l.time > HORIZON) {
            self.looks.pop_front();
            self.learn(false);
            judged.unprepared = judged.unprepared.saturating_add(1);
        }
        judged
    }

    fn learn(&mut self, prepared: bool) {
        faded_count(&mut self.prepared, &mut self.unprepared, FADE, prepared);
    }

    /// How far the actor's looks are preparations as a rule: 0 under half of them, 1 from nine
    /// in ten. Until [`SAMPLES`] are known, what she lacks is her department's `share` where it
    /// has one ([`DepartmentPreparations::share`]), otherwise half prepared (unknown either
    /// way): a first clinic's six prepared looks count most of the habit, a first theatre
    /// day's five over half of it (a surgeon who reads his week's list at six in the morning
    /// and sees each patient that afternoon), one prepared look a sixth, a snooper's none
    /// (her looks are never followed by her note, and no look proves nothing). Measured: with
    /// what she lacks counted as not prepared, a surgeon's second theatre day a week on raised
    /// his morning's list again (the independent hospitals: 20-60 false alerts a surgeon).
    pub fn factor(&self, department: Option<f32>) -> f64 {
        let known = self.prepared + self.unprepared;
        let share = if known >= SAMPLES {
            self.prepared / known
        } else {
            // What she lacks counts as her department's share, or as half prepared (unknown).
            (self.prepared + (SAMPLES - known) * department.unwrap_or(UNKNOWN_SHARE)) / SAMPLES
        };
        ((f64::from(share) - 0.5) / 0.4).clamp(0.0, 1.0)
    }
}

/// Counts one outcome, the earlier ones weighing `fade` of what they did.
fn faded_count(prepared: &mut f32, unprepared: &mut f32, fade: f32, was_prepared: bool) {
    *prepared *= fade;
    *unprepared *= fade;
    if was_prepared {
        *prepared += 1.0;
    } else {
        *unprepared += 1.0;
    }
}

/// What one outcome weighs the next time in a department (about 100 outcomes' memory).
const DEPARTMENT_FADE: f32 = 0.99;
/// Outcomes a department must know before its share says anything.
const DEPARTMENT_SAMPLES: f32 = 12.0;
/// Members whose looks were prepared before it is the department's way, not one member's.
const PREPARERS: usize = 2;

/// How often a department's members' dormant first looks were prepared visits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DepartmentPreparations {
    prepared: f32,
    unprepared: f32,
    /// The first [`PREPARERS`] members seen preparing (truncated hashes).
    preparers: Vec<u32>,
}

impl DepartmentPreparations {
    /// `member`'s looks judged.
    pub fn learn(&mut self, member: u32, judged: Judged) {
        let outcomes = std::iter::repeat_n(true, usize::from(judged.prepared))
            .chain(std::iter::repeat_n(false, usize::from(judged.unprepared)));
        for prepared in outcomes {
            faded_count(
                &mut self.prepared,
                &mut self.unprepared,
                DEPARTMENT_FADE,
                prepared,
            );
        }
        if judged.prepared > 0
            && self.preparers.len() < PREPARERS
            && !self.preparers.contains(&member)
        {
            self.preparers.push(member);
        }
    }

    /// The share of its members' looks prepared, once [`DEPARTMENT_SAMPLES`] are known and
    /// [`PREPARERS`] members prepared.
    pub fn share(&self) -> Option<f32> {
        let known = self.prepared + self.unprepared;
        (known >= DEPARTMENT_SAMPLES && self.preparers.len() >= PREPARERS)
            .then(|| self.prepared / known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    /// `n` looks at patients from `first`, each followed by a note `after` later when
    /// `noted`.
    fn days(p: &mut Preparations, first: u64, n: u64, start: i64, after: Option<i64>) {
        for k in 0..n {
            p.look(first + k, start + k as i64 * 60);
        }
        if let Some(after) = after {
            for k in 0..n {
                p.wrote(first + k, start + k as i64 * 60 + after);
            }
        }
    }

    #[test]
    fn looks_followed_by_the_users_note_hours_later_make_a_habit() {
        let mut p = Preparations::default();
        assert_eq!(p.factor(None), 0.0);
        // Tomorrow's list the evening before, seen the next morning.
        days(&mut p, 0, 12, 0, Some(14 * H));
        assert_eq!(p.factor(None), 1.0);
    }

    #[test]
    fn a_first_clinics_preparations_count_before_the_habit_is_known() {
        // Six of tomorrow's patients opened the evening before, each seen with a note the next
        // day: short of the samples a habit needs, and no department's habit to borrow; what
        // she lacks counts as half prepared (six, faded, of eight: 85%, most of the habit).
        let mut p = Preparations::default();
        days(&mut p, 0, 6, 0, Some(14 * H));
        assert!((0.8..0.95).contains(&p.factor(None)), "{}", p.factor(None));
        // One prepared look is little evidence: a sixth of the habit.
        let mut once = Preparations::default();
        days(&mut once, 0, 1, 0, Some(14 * H));
        assert!(
            (0.1..0.2).contains(&once.factor(None)),
            "{}",
            once.factor(None)
        );
        // Four prepared of eight known: half, no habit.
        let mut q = Preparations::default();
        days(&mut q, 0, 4, 0, Some(14 * H));
        days(&mut q, 100, 4, 20 * H, None);
        q.look(999, 50 * H);
        assert!(q.factor(None) < 0.05, "{}", q.factor(None));
    }

    #[test]
    fn looks_nobody_followed_and_visits_own_notes_are_no_habit() {
        let mut p = Preparations::default();
        // A snooper's looks: never followed; a day later, counted.
        days(&mut p, 0, 12, 0, None);
        p.look(999, 25 * H);
        assert_eq!(p.factor(None), 0.0);
        // A clinic visit's own note, minutes after the look: neither.
        let mut q = Preparations::default();
        days(&mut q, 0, 12, 0, Some(5 * 60));
        assert_eq!(q.factor(None), 0.0);
        assert_eq!(q.prepared + q.unprepared, 0.0);
        // Nor a therapist's, after her fifty-minute session.
        let mut r = Preparations::default();
        days(&mut r, 0, 4, 0, Some(50 * 60));
        assert_eq!(r.factor(None), 0.0);
        assert_eq!(r.prepared + r.unprepared, 0.0);
    }

    #[test]
    fn a_habit_fades_when_looks_stop_being_followed() {
        let mut p = Preparations::default();
        days(&mut p, 0, 12, 0, Some(14 * H));
        assert_eq!(p.factor(None), 1.0);
        for day in 1..4 {
            days(&mut p, 100 * day, 12, day as i64 * 30 * H, None);
        }
        p.look(9_999, 200 * H);
        assert_eq!(p.factor(None), 0.0);
    }

    #[test]
    fn a_newcomer_borrows_her_departments_habit_until_her_own_looks_are_known() {
        let mut dept = DepartmentPreparations::default();
        let newcomer = Preparations::default();
        assert_eq!(newcomer.factor(dept.share()), 0.0);
        // One member's habit is hers, not the department's.
        for _ in 0..3 {
            dept.learn(
                1,
                Judged {
                    prepared: 12,
                    unprepared: 0,
                },
            );
        }
        assert_eq!(dept.share(), None);
        dept.learn(
            2,
            Judged {
                prepared: 10,
                unprepared: 1,
            },
        );
        assert!(newcomer.factor(dept.share()) > 0.9);
        // Her own looks, nobody's care a day later, outweigh it.
        let mut snooper = Preparations::default();
        days(&mut snooper, 0, 5, 0, None);
        snooper.look(999, 25 * H);
        assert_eq!(snooper.factor(dept.share()), 0.0);
        // A department whose looks are seldom prepared lends nothing.
        let mut ward = DepartmentPreparations::default();
        ward.learn(
            1,
            Judged {
                prepared: 5,
                unprepared: 20,
            },
        );
        ward.learn(
            2,
            Judged {
                prepared: 5,
                unprepared: 20,
            },
        );
        assert_eq!(newcomer.factor(ward.share()), 0.0);
    }
}
