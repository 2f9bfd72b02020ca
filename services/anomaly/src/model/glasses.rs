//! Glasses broken alone. An emergency department breaks the glass every day, for patients who
//! are there: the triage nurse or the physician called down opens the same record within
//! hours, or the physician comes back to it for the results. A physician who breaks the glass
//! on records nobody else touches before or after, and never comes back to, is reading what is
//! not hers to read, however ordinary each glass looks beside her colleagues'.
//!
//! A glass opens a session on its record. It ends "in company" when someone else touches the
//! record, or the actor comes back to it after [`RETURN_AFTER`]; a session still alone
//! [`LONE_AFTER`] after its first glass was broken alone. The actor's glasses broken alone in
//! the last [`REMEMBERED`] are what [`super::Detector`] weighs: from the [`LONE_HABIT`]th on,
//! the emergency department's habit no longer excuses her next glass, which waits to see
//! whether it too is alone (measured on 35 simulated hospitals: of emergency physicians'
//! glasses with two broken alone before them, and themselves alone, 211 attack events against
//! 54 benign; a session's other glasses in company are not judged).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::baselines::DAY;

/// A session alone this long after its first glass was broken alone.
pub const LONE_AFTER: i64 = 3 * 3600;
/// The actor touching the record again this long after the glass is coming back (the
/// results an hour or two later): care, not a look.
pub const RETURN_AFTER: i64 = 30 * 60;
/// Someone else touching the record this long before the glass is its company (the triage
/// nurse); a glass on the same record within it belongs to the same session.
pub const COMPANY_BEFORE: i64 = 6 * 3600;
/// How long a glass broken alone counts.
pub const REMEMBERED: i64 = 14 * DAY;
/// Glasses broken alone in [`REMEMBERED`] from which the next one is judged alone.
pub const LONE_HABIT: usize = 2;
/// Glasses broken alone an actor keeps (more say nothing new).
const KEPT: usize = 8;
/// Sessions open at most across the stream (a hospital breaks a few dozen a day).
const OPEN: usize = 4_096;

/// When an actor's glasses broken alone were known to be (newest last).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoneGlasses {
    known: VecDeque<i64>,
}

impl LoneGlasses {
    /// A glass broken alone, known to be at `at`.
    pub fn learn(&mut self, at: i64) {
        while self.known.len() >= KEPT {
            self.known.pop_front();
        }
        self.known.push_back(at);
    }

    /// Glasses broken alone known by `t`, in the last [`REMEMBERED`].
    pub fn recent(&self, t: i64) -> usize {
        self.known
            .iter()
            .filter(|&&at| at <= t && t - at < REMEMBERED)
            .count()
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Session {
    actor: u64,
    patient: u64,
    start: i64,
    alone: bool,
}

/// Whether a touch of the record by `actor` at `t` ends a session `session_actor` opened at
/// `start` in company: anyone else's, or the actor coming back.
pub fn ends_alone(session_actor: u64, start: i64, actor: u64, t: i64) -> bool {
    actor != session_actor || t - start > RETURN_AFTER
}

/// The sessions of the last [`COMPANY_BEFORE`], oldest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GlassSessions {
    sessions: VecDeque<Session>,
}

impl GlassSessions {
    /// `actor` broke the glass on `patient` at `t`; `company`: someone else touched the record
    /// within [`COMPANY_BEFORE`]. Returns when the session began if it is still alone.
    pub fn glass(&mut self, actor: u64, patient: u64, t: i64, company: bool) -> Option<i64> {
        if let Some(s) = self
            .sessions
            .iter()
            .rev()
            .find(|s| s.actor == actor && s.patient == patient && t - s.start < COMPANY_BEFORE)
        {
            return (s.alone && t - s.start < LONE_AFTER).then_some(s.start);
        }
        if self.sessions.len() >= OPEN {
            self.sessions.pop_front();
        }
        self.sessions.push_back(Session {
            actor,
            patient,
            start: t,
            alone: !company,
        });
        (!company).then_some(t)
    }

    /// `actor` touched `patient`'s record at `t` (a permitted access naming her).
    pub fn touched(&mut self, actor: u64, patient: u64, t: i64) {
        for s in self.sessions.iter_mut() {
            if s.patient == patient
                && s.alone
                && t - s.start < LONE_AFTER
                && ends_alone(s.actor, s.start, actor, t)
            {
                s.alone = false;
            }
        }
    }

    /// Closes the sessions whose wait ran out by `t`: calls `alone(actor, at)` for each broken
    /// alone, known to be at `at`; forgets those older than [`COMPANY_BEFORE`].
    pub fn close(&mut self, t: i64, mut alone: impl FnMut(u64, i64)) {
        for s in self.sessions.iter_mut() {
            if s.alone && t - s.start >= LONE_AFTER {
                alone(s.actor, s.start + LONE_AFTER);
                s.alone = false;
            }
        }
        while self
            .sessions
            .front()
            .is_some_and(|s| t - s.start >= COMPANY_BEFORE)
        {
            self.sessions.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u64 = 1;
    const B: u64 = 2;
    const P: u64 = 10;

    fn closed(s: &mut GlassSessions, t: i64) -> Vec<(u64, i64)> {
        let mut out = Vec::new();
        s.close(t, |a, at| out.push((a, at)));
        out
    }

    #[test]
    fn a_glass_nobody_joins_is_alone_after_three_hours() {
        let mut s = GlassSessions::default();
        assert_eq!(s.glass(A, P, 0, false), Some(0));
        // Her own further looks in the same minutes are the same session.
        s.touched(A, P, 300);
        assert_eq!(s.glass(A, P, 400, false), Some(0));
        assert!(closed(&mut s, LONE_AFTER - 1).is_empty());
        assert_eq!(closed(&mut s, LONE_AFTER), vec![(A, LONE_AFTER)]);
        // Known once only.
        assert!(closed(&mut s, LONE_AFTER + 60).is_empty());
    }

    #[test]
    fn company_before_after_or_her_return_ends_it() {
        let mut s = GlassSessions::default();
        assert_eq!(
            s.glass(A, P, 0, true),
            None,
            "the triage nurse was there first"
        );
        let mut s = GlassSessions::default();
        s.glass(A, P, 0, false);
        s.touched(B, P, 3_000);
        assert!(
            closed(&mut s, LONE_AFTER).is_empty(),
            "the intensivist came down"
        );
        let mut s = GlassSessions::default();
        s.glass(A, P, 0, false);
        s.touched(A, P, RETURN_AFTER + 1);
        assert!(
            closed(&mut s, LONE_AFTER).is_empty(),
            "she came back for the results"
        );
        assert_eq!(s.glass(A, P, LONE_AFTER + 60, false), None);
    }

    #[test]
    fn glasses_alone_count_for_two_weeks() {
        let mut lone = LoneGlasses::default();
        lone.learn(0);
        lone.learn(DAY);
        assert_eq!(lone.recent(DAY), 2);
        assert_eq!(lone.recent(REMEMBERED + 1), 1);
        for d in 0..20 {
            lone.learn(2 * DAY + d);
        }
        assert_eq!(lone.known.len(), KEPT);
    }
}
