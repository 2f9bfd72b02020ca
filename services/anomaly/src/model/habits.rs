//! Habits: how unexplained an actor's (and its role's and department's) ordinary work is, e.g.
//! a coder's or an admissions clerk's, whose reads nothing in the stream explains by nature.
//!
//! A habit discounts the core signal, so it must not learn from the access it should catch.
//! Learned per event, an insider's own slow sweep (one patient a minute, each below the
//! threshold while the habit is young) taught itself within half an hour: after 60 unexplained
//! reads the actor's habit stood at 0.45 and nothing it did was unexplained any more. So a
//! habit learns from whole hours of the actor's work: an hour is held until the next one has
//! passed (an alert waiting 30 minutes, or a late join, can still reach it), is dropped if any
//! of its events or the next hour's turned out suspicious, and teaches at most
//! [`HOURLY_CAP`] reads' worth (a few hours to learn a new coder's work, none to learn one
//! session's).
//!
//! [`NoteDelays`] is an actor's other habit: how long after first opening a chart nothing
//! explained the actor documents for the patient (a clinic physician reads the record, sees
//! the patient, then writes the encounter and its note a minute or two later), which sets how
//! long such a first look waits for its note before it alerts.

use serde::{Deserialize, Serialize};

/// Reads before an actor's own habit counts, learned one by one until then.
pub const YOUNG_ACTOR: u32 = 50;
/// Reads before a department's habit counts, learned one by one until then.
pub const YOUNG_GROUP: u32 = 300;

/// Reads' worth one clean hour teaches, at most: an actor's, and to each of its groups.
pub const HOURLY_CAP: f32 = 20.0;

/// A habit: EWMA of the unexplained share of reads, of the dormant-and-unexplained share, and
/// the reads learned so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Habit {
    pub unexplained: f32,
    pub dormant: f32,
    pub reads: u32,
}

impl Habit {
    /// Folds in one read of weight `weight` at once, at the per-read rate `alpha`: how a young
    /// habit learns (a new service account's nightly batch must not alert for hours).
    pub fn learn_read(&mut self, unexplained: f32, dormant: f32, weight: f32, alpha: f32) {
        let step = alpha * weight;
        self.unexplained += step * (unexplained - self.unexplained);
        self.dormant += step * (dormant - self.dormant);
        self.reads = self.reads.saturating_add(1);
    }

    /// Folds in an hour whose mean shares are those of `hour`, as `min(weight, HOURLY_CAP)`
    /// reads at the per-read rate `alpha`.
    pub fn learn_hour(&mut self, hour: &Hour, alpha: f32) {
        if hour.weight <= 0.0 {
            return;
        }
        let reads = hour.weight.min(HOURLY_CAP);
        let step = 1.0 - (1.0 - alpha).powf(reads);
        self.unexplained += step * (hour.unexplained / hour.weight - self.unexplained);
        self.dormant += step * (hour.dormant / hour.weight - self.dormant);
        self.reads = self.reads.saturating_add(reads.ceil() as u32);
    }
}

/// One hour of an actor's reads, weighted (a list's further patients weigh less).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Hour {
    index: i64,
    pub unexplained: f32,
    pub dormant: f32,
    pub weight: f32,
    tainted: bool,
}

/// A young person's reads learned one by one in the current hour, at most [`YOUNG_PER_HOUR`]
/// (each counts one toward [`YOUNG_ACTOR`], whatever its weight).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct YoungReads {
    hour: i64,
    reads: u32,
}

/// Reads a young person (an actor with a department) learns one by one in one hour, at most.
/// Uncapped, a cardiologist first seen an hour before listed 450 patients nobody had touched
/// (searches of 3-30 patients, nothing opened): the lists' members taught her habit one by
/// one, her 50th read made it count at 0.53, and nothing she listed after was unexplained (a
/// 7-day hospital: 39 of the sweep's 453 events alerted; 394 capped). At 30 an hour her habit
/// counts after two hours at the soonest; on 45 simulated hospitals, no false alert more (at
/// 20, two neighbours' snoops were lost: habits learned later, at the young rate, stood
/// higher). A machine's account (no department) learns its first batch uncapped: the services
/// of that 7-day hospital, learning only from whole hours after their first 12, alerted 160
/// times more.
pub const YOUNG_PER_HOUR: u32 = 30;

impl YoungReads {
    /// Whether a read at `t` may still be learned one by one this hour (and counts it if so).
    pub fn take(&mut self, t: i64) -> bool {
        let hour = t.div_euclid(3600);
        if hour != self.hour {
            *self = Self { hour, reads: 0 };
        }
        if self.reads >= YOUNG_PER_HOUR {
            return false;
        }
        self.reads += 1;
        true
    }
}

/// The actor's last two hours, not yet learned.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HeldHours {
    hours: Vec<Hour>,
}

impl HeldHours {
    /// Holds one read at time `t`, and returns the hours now old enough to teach (clean ones
    /// only, oldest first).
    pub fn hold(
        &mut self,
        t: i64,
        unexplained: f32,
        dormant: f32,
        weight: f32,
    ) -> impl Iterator<Item = Hour> {
        let index = t.div_euclid(3600);
        let ready = self.ready(index);
        match self.hours.last_mut() {
            Some(hour) if hour.index == index => {
                hour.unexplained += unexplained * weight;
                hour.dormant += dormant * weight;
                hour.weight += weight;
            }
            _ => self.hours.push(Hour {
                index,
                unexplained: unexplained * weight,
                dormant: dormant * weight,
                weight,
                tainted: false,
            }),
        }
        ready.into_iter()
    }

    /// Something suspicious happened at `t`: the hours held that it may belong to (this one and
    /// the one before) teach nothing.
    pub fn taint(&mut self, t: i64) {
        let index = t.div_euclid(3600);
        for hour in &mut self.hours {
            if hour.index >= index - 1 {
                hour.tainted = true;
            }
        }
    }

    /// Removes the hours that ended at least an hour before hour `index`; returns the clean ones.
    fn ready(&mut self, index: i64) -> Vec<Hour> {
        let (old, held): (Vec<Hour>, Vec<Hour>) =
            self.hours.drain(..).partition(|h| h.index + 2 <= index);
        self.hours = held;
        old.into_iter().filter(|h| !h.tainted).collect()
    }
}

/// Upper bounds (seconds) of the note-delay buckets; a note later than the last bound but
/// within [`OVERFLOW_BOUND`] counts in an overflow bucket.
const NOTE_BOUNDS: [i64; 8] = [30, 60, 90, 120, 150, 180, 240, 300];
/// The overflow bucket's upper bound (what [`NOTE_HORIZON`] was before the session buckets).
const OVERFLOW_BOUND: i64 = 600;
/// Upper bounds of the buckets of notes written after a session (a psychiatrist reads the
/// chart, sees the patient for fifty minutes, then writes): kept apart so that a snapshot of
/// the first buckets still reads.
const SESSION_BOUNDS: [i64; 5] = [1_200, 1_800, 2_700, 3_600, 5_400];
/// A write later than this after the first look is not that look's note.
pub const NOTE_HORIZON: i64 = 5_400;
/// Each new note fades the older ones by this factor (a memory of about 200 notes).
const NOTE_FADE: f32 = 0.995;

/// How long after a first, unexplained look at a patient an actor documents for her: faded
/// counts per delay bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct NoteDelays {
    counts: [f32; NOTE_BOUNDS.len() + 1],
    #[serde(default)]
    sessions: [f32; SESSION_BOUNDS.len()],
}

impl NoteDelays {
    /// Learns one note written `seconds` after the first look (ignored beyond [`NOTE_HORIZON`]).
    pub fn learn(&mut self, seconds: i64) {
        if !(0..=NOTE_HORIZON).contains(&seconds) {
            return;
        }
        for c in self.counts.iter_mut().chain(&mut self.sessions) {
            *c *= NOTE_FADE;
        }
        let bucket = Self::bounds()
            .position(|b| seconds <= b)
            .unwrap_or(NOTE_BOUNDS.len() + SESSION_BOUNDS.len());
        match self.counts.get_mut(bucket) {
            Some(c) => *c += 1.0,
            None => {
                if let Some(c) = self.sessions.get_mut(bucket - self.counts.len()) {
                    *c += 1.0;
                }
            }
        }
    }

    /// Every bucket's upper bound, in order.
    fn bounds() -> impl Iterator<Item = i64> {
        NOTE_BOUNDS
            .into_iter()
            .chain([OVERFLOW_BOUND])
            .chain(SESSION_BOUNDS)
    }

    /// The delay (a bucket's upper bound, seconds) within which the share `q` of the notes came;
    /// `None` before `evidence` notes.
    pub fn quantile(&self, q: f32, evidence: f32) -> Option<i64> {
        let total: f32 = self.counts.iter().chain(&self.sessions).sum();
        if total < evidence {
            return None;
        }
        let mut seen = 0.0;
        for (c, bound) in self.counts.iter().chain(&self.sessions).zip(Self::bounds()) {
            seen += c;
            if seen >= q * total {
                return Some(bound);
            }
        }
        Some(NOTE_HORIZON)
    }
}

/// Each guess counts this much less per later one: the last hundred or so decide.
const GUESS_FADE: f32 = 0.99;
/// The prior unconfirmed share of guesses, and how many guesses it is worth.
pub const GUESS_PRIOR_SHARE: f32 = 0.1;
pub const GUESS_PRIOR: f32 = 10.0;
/// An unconfirmed guess alerts where at most this share of guesses went unconfirmed.
pub const GUESS_ALERTS_UNDER: f32 = 0.1;
/// Guesses of her own (faded) from which an actor's record of them speaks for itself, and the
/// share of them left unconfirmed under which it still expects care
/// ([`Confirmations::own_record`]).
pub const OWN_GUESSES_KNOWN: f32 = 20.0;
pub const OWN_GUESSES_ALERT_UNDER: f32 = 0.02;

/// A fading tally of what turned out confirmed and what did not, for an actor's or a
/// department's acts whose sequel tells whether they were care. First of all guesses: first
/// looks that only a guess explained (a consult the department's habits suggest, covering for
/// another ward, the ward's care of days ago), confirmed when within [`super::GUESS_WAIT`] the
/// actor wrote for the patient or anyone else touched her record. A ward's guesses are
/// confirmed nearly always (the transfer is nursed, the consult writes its note); a pharmacy's
/// reviews never are, and say nothing when they are not. Also dormant first looks followed by
/// care, and prescriptions that followed a look into the patient's record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Confirmations {
    confirmed: f32,
    unconfirmed: f32,
}

impl Confirmations {
    pub fn learn(&mut self, confirmed: bool) {
        self.confirmed *= GUESS_FADE;
        self.unconfirmed *= GUESS_FADE;
        if confirmed {
            self.confirmed += 1.0;
        } else {
            self.unconfirmed += 1.0;
        }
    }

    /// Once an actor has [`OWN_GUESSES_KNOWN`] guesses on record, the share of them left
    /// unconfirmed, without the prior: a clinician one of whose guesses in twenty goes
    /// unconfirmed (the bed manager's look at tonight's admission that stayed in the emergency
    /// department) makes such a look every other day, and it tells nothing; one in fifty does not.
    pub fn own_record(&self) -> Option<f32> {
        self.share_once(OWN_GUESSES_KNOWN)
    }

    /// The share left unconfirmed, without the prior, once `known` (faded) are on record.
    pub fn share_once(&self, known: f32) -> Option<f32> {
        let all = self.confirmed + self.unconfirmed;
        (all >= known).then(|| self.unconfirmed / all)
    }

    /// The share of guesses left unconfirmed, from a prior of [`GUESS_PRIOR_SHARE`] worth
    /// [`GUESS_PRIOR`] guesses: a department that rarely guesses is a ward until it shows
    /// otherwise; one unconfirmed guess with nothing confirmed is enough to doubt it.
    pub fn unconfirmed_share(&self) -> f32 {
        (self.unconfirmed + GUESS_PRIOR_SHARE * GUESS_PRIOR)
            / (self.confirmed + self.unconfirmed + GUESS_PRIOR)
    }
}

/// What a department's record of care teams weighs the next time (a few thousand looks' memory).
const CARE_TEAM_FADE: f32 = 0.999;
/// Looks at records with a care team on record before a department's share says anything.
const CARE_TEAM_MIN: f32 = 20.0;
/// A department is on the care team as a rule from this share of its looks.
pub const CARE_TEAM_RULE: f32 = 0.5;

/// How often a department's members, opening a record whose clinical data names a care team,
/// are on it (themselves or their department). A ward nearly always is; a pharmacy verifying
/// the hospital's orders or a coding service never is, and their absence from a team says
/// nothing. Where being on it is the rule, being off it is a sign.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CareTeams {
    on: f32,
    off: f32,
}

impl CareTeams {
    pub fn learn(&mut self, on_team: bool) {
        self.on *= CARE_TEAM_FADE;
        self.off *= CARE_TEAM_FADE;
        if on_team {
            self.on += 1.0;
        } else {
            self.off += 1.0;
        }
    }

    /// Whether the department's members are on the care teams of the records they open as a
    /// rule (not before [`CARE_TEAM_MIN`] looks).
    pub fn on_as_a_rule(&self) -> bool {
        let all = self.on + self.off;
        all >= CARE_TEAM_MIN && self.on >= CARE_TEAM_RULE * all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    #[test]
    fn a_department_is_on_care_teams_as_a_rule_only_when_most_of_its_looks_are() {
        let mut ward = CareTeams::default();
        let mut pharmacy = CareTeams::default();
        for i in 0..10 {
            ward.learn(i % 10 != 0);
            pharmacy.learn(i % 10 == 0);
        }
        // Too few looks to say.
        assert!(!ward.on_as_a_rule());
        for i in 0..15 {
            ward.learn(i % 10 != 0);
            pharmacy.learn(i % 10 == 0);
        }
        assert!(ward.on_as_a_rule());
        assert!(!pharmacy.on_as_a_rule());
    }

    #[test]
    fn an_hour_teaches_only_once_the_next_one_has_passed() {
        let mut held = HeldHours::default();
        assert_eq!(held.hold(10, 1.0, 0.0, 1.0).count(), 0);
        assert_eq!(held.hold(H + 10, 1.0, 0.0, 1.0).count(), 0);
        let ready: Vec<Hour> = held.hold(2 * H + 10, 0.0, 0.0, 1.0).collect();
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].weight, 1.0);
    }

    #[test]
    fn a_suspicious_event_drops_its_hour_and_the_one_before() {
        let mut held = HeldHours::default();
        let _ = held.hold(10, 1.0, 0.0, 1.0).count();
        let _ = held.hold(H + 10, 1.0, 0.0, 1.0).count();
        held.taint(H + 20);
        assert_eq!(held.hold(3 * H, 0.0, 0.0, 1.0).count(), 0);
        // A later clean hour still teaches.
        let ready: Vec<Hour> = held.hold(5 * H, 0.0, 0.0, 1.0).collect();
        assert_eq!(ready.len(), 1);
    }

    #[test]
    fn one_busy_hour_moves_a_habit_by_at_most_its_cap() {
        let mut habit = Habit {
            unexplained: 0.0,
            dormant: 0.0,
            reads: 1_000,
        };
        let busy = Hour {
            index: 0,
            unexplained: 500.0,
            dormant: 0.0,
            weight: 500.0,
            tainted: false,
        };
        habit.learn_hour(&busy, 0.01);
        let cap = 1.0 - 0.99f32.powf(HOURLY_CAP);
        assert!(
            (habit.unexplained - cap).abs() < 1e-5,
            "{}",
            habit.unexplained
        );
        assert!(habit.unexplained < 0.2);
    }

    #[test]
    fn note_delays_give_the_delay_most_notes_came_within() {
        let mut notes = NoteDelays::default();
        for _ in 0..10 {
            notes.learn(100);
        }
        assert_eq!(notes.quantile(0.9, 20.0), None, "too few notes to count");
        for i in 0..40 {
            notes.learn(if i % 10 == 0 { 170 } else { 45 });
        }
        // 46 of 50 within 120 s, all within 180 s.
        assert_eq!(notes.quantile(0.5, 20.0), Some(60));
        assert_eq!(notes.quantile(0.9, 20.0), Some(120));
        assert_eq!(notes.quantile(1.0, 20.0), Some(180));
        // Later than the horizon is no note of that look.
        notes.learn(NOTE_HORIZON + 1);
        assert_eq!(notes.quantile(1.0, 20.0), Some(180));
        // A therapist's notes, written after the session: most come 40-50 minutes on.
        for _ in 0..500 {
            notes.learn(2_900);
        }
        assert_eq!(notes.quantile(0.5, 20.0), Some(3_600));
        assert_eq!(notes.quantile(0.9, 20.0), Some(3_600));
        // The first look's own notes are still there, faded.
        assert!(notes.quantile(0.01, 20.0).is_some_and(|d| d <= 180));
    }

    #[test]
    fn note_delays_of_an_older_snapshot_read_without_the_session_buckets() {
        let mut notes = NoteDelays::default();
        for _ in 0..10 {
            notes.learn(100);
        }
        // As the model before the session buckets wrote it: the nine counts alone.
        #[derive(Serialize)]
        struct Before {
            counts: [f32; 9],
        }
        let mut bytes = Vec::new();
        ciborium::into_writer(
            &Before {
                counts: notes.counts,
            },
            &mut bytes,
        )
        .expect("written");
        let read: NoteDelays = ciborium::from_reader(bytes.as_slice()).expect("read");
        assert_eq!(read, notes);
    }
}
