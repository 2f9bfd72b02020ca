//! Patterns over an actor's recent events: bursts of distinct patients, rate against the
//! actor's own baseline, denied accesses and failed logins (from the 5-minute window), a
//! spree of unexplained patients, enumeration (monotone sweeps of patient ids, many searches
//! with few reads) and covering (several patients of one other department in a row).

use std::collections::VecDeque;

use super::{baselines::clamp01, cache::hash_str};

/// The rate baseline never counts as lower than this many events per minute, so a new or
/// usually quiet actor is not flagged for a dozen clicks.
pub const BASELINE_FLOOR: f64 = 6.0;

/// A patient only seen in a search result counts as 1/SEARCH_WEIGHT of one read: a search casts
/// a wide net (a ward list returns dozens of patients at once, a research query hundreds),
/// reading opens records one by one.
pub const SEARCH_WEIGHT: f64 = 10.0;

const HOUR: i64 = 3_600;

/// What the 5-minute window knows about an actor.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowFeatures {
    /// Distinct patients read (or whose reading was attempted) in the window.
    pub distinct_patients: usize,
    /// Further distinct patients only seen in search results in the window; each counts 1/3.
    pub searched_patients: usize,
    /// Events in the last 60 s (all kinds).
    pub recent_events: usize,
    /// EWMA of events per active minute, once known.
    pub baseline: Option<f64>,
    /// Events with a patient in the window, and how many of them were denied.
    pub patient_events: u32,
    pub denied: u32,
    /// Distinct patients whose reading was refused in the window.
    pub refused_patients: usize,
    pub failed_logins: u32,
    /// Accesses that failed (outcome `error`) in the window.
    pub errors: u32,
}

impl WindowFeatures {
    /// `d = r + s/10` distinct patients.
    pub fn weighted_patients(&self) -> f64 {
        self.distinct_patients as f64 + self.searched_patients as f64 / SEARCH_WEIGHT
    }

    /// `d` against the actor's usual `b` (EWMA of `d` at its events): `(d − m) / 10` with
    /// `m = max(5, 3b)`: for most, 5 → 0, 10 → 0.5, ≥ 15 → 1; a service that always reads
    /// populations is judged against its own normal.
    pub fn burst(&self, usual: f64) -> f64 {
        let floor = (3.0 * usual).max(5.0);
        clamp01((self.weighted_patients() - floor) / 10.0)
    }

    pub fn effective_baseline(&self) -> f64 {
        self.baseline.unwrap_or(0.0).max(BASELINE_FLOOR)
    }

    /// Events in the last minute against the baseline: ≤ 3× → 0, ≥ 10× → 1.
    pub fn rate(&self) -> f64 {
        let ratio = self.recent_events as f64 / self.effective_baseline();
        clamp01((ratio - 3.0) / 7.0)
    }

    /// `(k / m) · (k − 1) / 2` for `k` denied of `m` patient accesses: nothing for one (a
    /// mistake, or the refusal before an emergency's break-the-glass), 1 for three or more
    /// (measured on 12 simulated hospitals: 12 of 982 benign actor-hours with a denial had two
    /// within 5 minutes, none three), and for two patients refused (the two refusals before a
    /// glass are one patient's; measured on 8 simulated hospitals: two benign refusals had
    /// another patient's within 5 minutes, and 200 attacks').
    pub fn denied_share(&self) -> f64 {
        if self.patient_events == 0 {
            return 0.0;
        }
        let denied = f64::from(self.denied);
        let count = if self.refused_patients >= 2 {
            1.0
        } else {
            ((denied - 1.0) / 2.0).clamp(0.0, 1.0)
        };
        clamp01(denied / f64::from(self.patient_events) * count)
    }

    /// Failed accesses (records that do not exist) in 5 minutes: 1 → 0, 4 → 1 (measured on 12
    /// simulated hospitals: two benign actor-hours of 981 with one had two or three; every
    /// enumeration of ids four or more).
    pub fn failures(&self) -> f64 {
        clamp01((f64::from(self.errors) - 1.0) / 3.0)
    }

    /// Failed logins in 5 minutes: 5 → 0, 7 → 1. A user who forgot her password fails five
    /// times and is refused once more as locked out (ten a fortnight in each simulated
    /// hospital); guessing goes on. Fewer failures are guessing from an address or at an hour
    /// the account does not use, from one address for several accounts, or against a locked
    /// account ([`super::sign_ins`]).
    pub fn failed_logins(&self) -> f64 {
        clamp01((f64::from(self.failed_logins) - 5.0) / 2.0)
    }
}

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Recent {
    patient: u64,
    last: i64,
    /// 1 − explanation strength at the actor's most recent access.
    unexplained: f32,
    /// How long before `last` the actor first opened her record with nothing to explain it,
    /// until the actor's first note for her ([`Patterns::explain_patient`]); [`NOT_OPENED`]
    /// if not. (A `u32` beside the `f32` keeps the entry at 24 bytes.)
    #[serde(default = "not_opened")]
    opened_before_last: u32,
}

const NOT_OPENED: u32 = u32::MAX;

fn not_opened() -> u32 {
    NOT_OPENED
}

/// Where a patient id sorts: ids ending in digits by (the hash of what precedes the digits,
/// the number); others by their first 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
struct SortKey {
    prefix: u64,
    value: u64,
    numeric: bool,
}

impl SortKey {
    fn of(reference: &str) -> Self {
        let id = reference.rsplit('/').next().unwrap_or(reference);
        let digits = id.bytes().rev().take_while(u8::is_ascii_digit).count();
        if digits > 0 && digits <= 18 {
            let (head, tail) = id.split_at(id.len() - digits);
            if let Ok(value) = tail.parse::<u64>() {
                return Self {
                    prefix: hash_str(head),
                    value,
                    numeric: true,
                };
            }
        }
        let mut word = [0u8; 8];
        for (w, b) in word.iter_mut().zip(id.bytes()) {
            *w = b.to_ascii_lowercase();
        }
        Self {
            prefix: 0,
            value: u64::from_be_bytes(word),
            numeric: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
struct Run {
    last_key: SortKey,
    last_patient: u64,
    last: i64,
    direction: i8,
    len: u16,
    /// Steps of at most 10 (a numeric sweep).
    tight: u16,
    unexplained: f32,
    /// Off-run patients skipped since the run last grew ([`MAX_DETOURS`]).
    #[serde(default)]
    detours: u8,
    /// What its latest patient added to `unexplained`: taken back if the actor documents for
    /// her ([`Patterns::explain_patient`]).
    #[serde(default)]
    last_unexplained: f32,
}

/// Patients off a tight numeric sweep that do not end it: a clerk guessing record numbers
/// between two registrations of her own.
const MAX_DETOURS: u8 = 2;

/// One actor's pattern memory (bounded: 32 recent patients, 64 search times, 3 departments).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Patterns {
    recent: Vec<Recent>,
    run: Run,
    searches: VecDeque<i64>,
    /// The last search requests counted: a request's events interleaved with another's (two
    /// requests at once, a log merged from several servers) count once.
    #[serde(default)]
    counted_searches: [u64; CONCURRENT_REQUESTS],
    /// The request being seen (its key), its latest patient and how many patients before it.
    request: (u64, u64, u32),
    /// Events of that request for its latest patient so far: a `$everything` is one search
    /// event per kind of data.
    #[serde(default)]
    request_breadth: u16,
    /// Requests seen just before it, in the same form with their breadth: a list whose events
    /// interleave with another request's resumes where it was.
    #[serde(default)]
    earlier_requests: [(u64, u64, u32, u16); CONCURRENT_REQUESTS],
    cover: [(u64, u16, i64); 3],
    /// When the actor last pulled the whole record of a patient nothing explained (the last
    /// [`STRANGERS_WHOLE_RECORDS`]).
    #[serde(default)]
    strangers_whole_records: [i64; STRANGERS_WHOLE_RECORDS],
    /// When the actor last made a counted list far beyond the usual (the last
    /// [`BROAD_LISTS`]).
    #[serde(default)]
    broad_lists: [i64; BROAD_LISTS],
    /// Kinds of data the actor began to use this hour that her role and department never use,
    /// and when she last used each: a run of role misuse ([`Patterns::misuse_run`]).
    #[serde(default)]
    misused_kinds: [(u64, i64); MISUSED],
    /// The patients of those runs, and when each was last part of one.
    #[serde(default)]
    misused_patients: [(u64, i64); MISUSED],
    /// Patients the actor first opened with nothing to explain it and whose clinical record
    /// (conditions, allergies, encounters, results, notes) she has not looked at since, and
    /// when she first opened each ([`Patterns::prescribing_unreviewed`]).
    #[serde(default)]
    unreviewed: [(u64, i64); UNREVIEWED],
    /// Patients whose record beyond her demographics (results, medications, notes, anything
    /// but `Patient`) the actor last looked into, and when ([`Patterns::looked_into_lately`]).
    #[serde(default)]
    looked_into: [(u64, i64); LOOKED_INTO],
    /// Kinds of data whose run of role misuse alerted, confidently, and when it last did: what
    /// her incident was about does not become her habit ([`Patterns::misuse_run`]).
    #[serde(default)]
    alerted_misuse: [(u64, i64); ALERTED_MISUSE],
    /// Patients whose own refusal stopped the actor lately ([`Patterns::objected`]).
    #[serde(default)]
    objections: Objections,
}

/// Patients whose own refusal (a consent that denies the user) stopped an actor within
/// [`OBJECTIONS_WITHIN`] that make a run: she goes on trying records whose owners said no.
pub const OBJECTIONS: usize = 3;
/// How long patients' refusals of one actor are counted together.
pub const OBJECTIONS_WITHIN: i64 = 2 * HOUR;
/// Refusals before the last [`OBJECTIONS_WITHIN`] after which refusals are the actor's work
/// (a records office releasing letters behind patients' objections every morning), not a run.
pub const USUAL_OBJECTIONS: u32 = 3;

/// The patients' refusals of one actor: the last [`OBJECTIONS`] patients and when, and how many
/// refusals came before them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Objections {
    recent: [(u64, i64); OBJECTIONS],
    before: u32,
}

impl Objections {
    /// Records that `patient`'s refusal stopped the actor at `t`; returns how many patients'
    /// refusals stopped her within [`OBJECTIONS_WITHIN`] (this one's included), or 0 where
    /// refusals are her work.
    pub fn objected(&mut self, patient: u64, t: i64) -> usize {
        // Refusals leaving the window (or pushed out of it) are her history.
        for entry in &mut self.recent {
            if entry.0 != 0 && t - entry.1 > OBJECTIONS_WITHIN {
                self.before = self.before.saturating_add(1);
                *entry = (0, 0);
            }
        }
        let slot = self
            .recent
            .iter()
            .position(|e| e.0 == patient)
            .or_else(|| self.recent.iter().position(|e| e.0 == 0));
        match slot.and_then(|i| self.recent.get_mut(i)) {
            Some(entry) => *entry = (patient, t),
            None => {
                // All three within the window: the oldest is pushed out into her history.
                self.before = self.before.saturating_add(1);
                if let Some(oldest) = self.recent.iter_mut().min_by_key(|e| e.1) {
                    *oldest = (patient, t);
                }
            }
        }
        if self.before >= USUAL_OBJECTIONS {
            return 0;
        }
        self.recent.iter().filter(|e| e.0 != 0).count()
    }
}

/// Kinds of data of alerted misuse runs remembered per actor.
pub const ALERTED_MISUSE: usize = 2;

/// How long a kind of data whose misuse run alerted begins a run again, however usual her
/// own use has made it for her groups since (an exfiltration over a week's evenings).
pub const ALERTED_MISUSE_FOR: i64 = 14 * 24 * HOUR;

/// Patients opened unexplained and not yet reviewed, remembered per actor.
pub const UNREVIEWED: usize = 2;

/// How long after her first look a prescription still belongs to that first session.
pub const CONSULTATION: i64 = 30 * 60;

/// Patients whose record the actor looked into, remembered per actor: a GP's prescription
/// can follow its look after a few other patients (with 4 remembered, on the networks, up to
/// 7 of a GP's 168 prescriptions looked blind; with 8, 1).
pub const LOOKED_INTO: usize = 8;

/// Kinds and patients of a run of role misuse remembered per actor: the third patient within
/// an hour counts fully.
pub const MISUSED: usize = 3;

/// Broad counted lists remembered per actor: the third within an hour is a trawl.
pub const BROAD_LISTS: usize = 3;

/// Strangers' whole records remembered per actor: the third within an hour is exfiltration.
pub const STRANGERS_WHOLE_RECORDS: usize = 3;

const RECENT: usize = 32;
const SEARCHES: usize = 64;
/// Requests of one actor whose events may interleave and still be told apart.
const CONCURRENT_REQUESTS: usize = 4;

impl Patterns {
    /// Whether the actor touched the patient earlier in the same hour.
    pub fn seen_this_hour(&self, patient: u64, t: i64) -> bool {
        self.recent
            .iter()
            .any(|r| r.patient == patient && r.last.div_euclid(HOUR) == t.div_euclid(HOUR))
    }

    /// Remembers the actor's access to a patient and how unexplained it was.
    pub fn record_patient(&mut self, patient: u64, t: i64, unexplained: f64) {
        let unexplained = unexplained as f32;
        if let Some(r) = self.recent.iter_mut().find(|r| r.patient == patient) {
            if t > r.last && r.opened_before_last != NOT_OPENED {
                let gap = u64::from(r.opened_before_last) + (t - r.last).unsigned_abs();
                r.opened_before_last = u32::try_from(gap).unwrap_or(NOT_OPENED);
            }
            r.last = r.last.max(t);
            r.unexplained = r.unexplained.min(unexplained);
            return;
        }
        let fresh = Recent {
            patient,
            last: t,
            unexplained,
            opened_before_last: if unexplained >= 0.7 { 0 } else { NOT_OPENED },
        };
        if self.recent.len() < RECENT {
            self.recent.push(fresh);
        } else if let Some(stalest) = self.recent.iter_mut().min_by_key(|r| r.last) {
            *stalest = fresh;
        }
    }

    /// The actor documented for the patient (a write) at `t`: its recent reads of her were
    /// care, not part of a spree, nor an unexplained step of a sweep. Returns how long after
    /// first opening her record, with nothing to explain it, the actor wrote this first note.
    pub fn explain_patient(&mut self, patient: u64, t: i64) -> Option<i64> {
        // A round in id order (the nurse's medication round, each patient's administration
        // charted after her orders were read) is care, patient by patient: the run keeps its
        // length, not her as unexplained. Only its latest patient: a round's note comes before
        // the next patient's chart.
        if self.run.last_patient == patient && self.run.len > 0 {
            self.run.unexplained = (self.run.unexplained - self.run.last_unexplained).max(0.0);
            self.run.last_unexplained = 0.0;
        }
        let r = self.recent.iter_mut().find(|r| r.patient == patient)?;
        r.unexplained = 0.0;
        let before = std::mem::replace(&mut r.opened_before_last, NOT_OPENED);
        (before != NOT_OPENED).then(|| t - (r.last - i64::from(before)))
    }

    /// The patient the actor opened last, and when.
    pub fn last_patient(&self) -> Option<(u64, i64)> {
        self.recent
            .iter()
            .max_by_key(|r| r.last)
            .map(|r| (r.patient, r.last))
    }

    /// Distinct patients the actor accessed in the last hour with (almost) no explanation,
    /// counting `current` (not yet recorded) when it is one of them.
    pub fn unexplained_patients(&self, t: i64, current: Option<u64>) -> usize {
        let known = self
            .recent
            .iter()
            .filter(|r| t - r.last <= HOUR && r.unexplained >= 0.7 && Some(r.patient) != current)
            .count();
        known + usize::from(current.is_some())
    }

    /// Feeds a patient access into the sweep detector; returns the sweep signal in `[0, 1]`:
    /// a run of `n` distinct patients in monotone id order (each within 15 minutes of the
    /// previous), weighted by how unexplained they were. Tight numeric steps: 4 → 0, 7 → 1;
    /// otherwise 4 → 0, 10 → 1. A tight step to a dormant record counts `dormant_unexplained`
    /// when more (whatever the actor's habit: new registrations a clerk works through in id
    /// order are not dormant; the neighbours of a guessed record number are). Up to
    /// [`MAX_DETOURS`] patients off a tight sweep are skipped, not its end. A patient the actor
    /// documents for before the next one counts as explained ([`Patterns::explain_patient`]):
    /// a medication round in bed order is not an enumeration (measured: 58 false alerts on the
    /// fifteen hospitals of the generators written apart, a network nurse's round each, for no
    /// attack event).
    pub fn sweep(
        &mut self,
        patient: u64,
        reference: &str,
        t: i64,
        unexplained: f64,
        dormant_unexplained: f64,
    ) -> f64 {
        let run = &mut self.run;
        if patient == run.last_patient && run.len > 0 {
            return run_signal(run);
        }
        let key = SortKey::of(reference);
        let direction =
            if run.len == 0 || t - run.last > 15 * 60 || key.prefix != run.last_key.prefix {
                0
            } else if key.value > run.last_key.value {
                1
            } else if key.value < run.last_key.value {
                -1
            } else {
                0
            };
        let step = key.value.abs_diff(run.last_key.value);
        let tight_step = key.numeric && direction != 0 && step <= 10;
        let continues = direction != 0 && (run.direction == 0 || run.direction == direction);
        // A numeric run of tight steps so far (or its first patient).
        let tight_run = run.len >= 1
            && run.last_key.numeric
            && run.tight + 1 >= run.len
            && t - run.last <= 15 * 60;
        if !tight_step && tight_run && run.detours < MAX_DETOURS {
            // Off the sweep: skipped, the sweep goes on from where it was.
            run.detours += 1;
            return run_signal(run);
        }
        run.detours = 0;
        let unexplained = if tight_step {
            unexplained.max(dormant_unexplained)
        } else {
            unexplained
        };
        if continues {
            run.len += 1;
            run.tight += u16::from(key.numeric && step <= 10);
            run.unexplained += unexplained as f32;
            run.direction = direction;
        } else if direction != 0 {
            // Turned around: the last two form a new run.
            run.len = 2;
            run.tight = u16::from(key.numeric && step <= 10);
            run.unexplained = unexplained as f32 + run.unexplained / f32::from(run.len.max(1));
            run.direction = direction;
        } else {
            run.len = 1;
            run.tight = 0;
            run.unexplained = unexplained as f32;
            run.direction = 0;
        }
        run.last_unexplained = unexplained as f32;
        run.last_key = key;
        run.last_patient = patient;
        run.last = t;
        run_signal(run)
    }

    /// Counts a search request (all its events count once, also when another request's
    /// interleave) and returns how many the actor made in the last 10 minutes.
    pub fn search(&mut self, t: i64, request: u64) -> usize {
        if !self.counted_searches.contains(&request) {
            self.counted_searches.rotate_right(1);
            self.counted_searches[0] = request;
            if self.searches.len() == SEARCHES {
                self.searches.pop_front();
            }
            self.searches.push_back(t);
        }
        self.searches.iter().filter(|s| t - **s <= 600).count()
    }

    /// Whether an event of `request` would be its first (neither the current request nor one
    /// of the earlier ones remembered).
    pub fn opens_request(&self, request: u64) -> bool {
        self.request.0 != request && self.earlier_requests.iter().all(|r| r.0 != request)
    }

    /// Counts `patient` in request `request`; returns how many other patients the request
    /// touched before it. A request for one patient's data (`Observation?patient=…`) is as
    /// specific as a read; the 30th patient of a ward list is not.
    pub fn position_in_request(&mut self, request: u64, patient: u64) -> u32 {
        if self.request.0 != request {
            let (key, last, seen) = self.request;
            let resumed = self
                .earlier_requests
                .iter()
                .position(|r| r.0 == request && request != 0);
            let current = (key, last, seen, self.request_breadth);
            match resumed {
                Some(i) => {
                    let (_, last, seen, breadth) = self.earlier_requests[i];
                    self.earlier_requests[i] = current;
                    self.request = (request, last, seen);
                    self.request_breadth = breadth;
                }
                None => {
                    self.earlier_requests.rotate_right(1);
                    self.earlier_requests[0] = current;
                    self.request = (request, patient, 0);
                    self.request_breadth = 1;
                    return 0;
                }
            }
        }
        let (_, last, seen) = &mut self.request;
        if *last != patient {
            *last = patient;
            *seen += 1;
            self.request_breadth = 1;
        } else {
            self.request_breadth = self.request_breadth.saturating_add(1);
        }
        *seen
    }

    /// How many events the current request has had for its latest patient (after
    /// [`Patterns::position_in_request`]).
    pub fn request_breadth(&self) -> u16 {
        self.request_breadth
    }

    /// The actor pulled a stranger's whole record at `t`.
    pub fn stranger_whole_record(&mut self, t: i64) {
        self.strangers_whole_records.rotate_right(1);
        self.strangers_whole_records[0] = t;
    }

    /// Strangers' whole records the actor pulled in the last hour (at most
    /// [`STRANGERS_WHOLE_RECORDS`]).
    pub fn strangers_whole_records(&self, t: i64) -> usize {
        within_the_hour(&self.strangers_whole_records, t)
    }

    /// The actor made a counted list far beyond the usual at `t`.
    pub fn broad_list(&mut self, t: i64) {
        self.broad_lists.rotate_right(1);
        self.broad_lists[0] = t;
    }

    /// Broad counted lists the actor made in the last hour (at most [`BROAD_LISTS`]).
    pub fn broad_lists(&self, t: i64) -> usize {
        within_the_hour(&self.broad_lists, t)
    }

    /// The actor did `kind` to `patient` at `t`, where `begins` says her role and department
    /// never do it. Once begun, the same kind within the hour continues the run, however her
    /// own use has taught her groups since (her second and third look already are usual for
    /// the group she alone made them in). Returns the distinct patients of the actor's runs in
    /// the last hour (at most [`MISUSED`]) if this access is part of one, else 0.
    pub fn misuse_run(&mut self, kind: u64, patient: u64, t: i64, begins: bool) -> usize {
        let within = |at: i64| (0..=HOUR).contains(&(t - at));
        let continues = self
            .misused_kinds
            .iter()
            .any(|&(k, at)| k == kind && within(at))
            || self.alerted_misuse.iter().any(|&(k, at)| {
                k == kind && (0..=ALERTED_MISUSE_FOR).contains(&t.saturating_sub(at))
            });
        if kind == 0 || !(begins || continues) {
            return 0;
        }
        remember_for_the_hour(&mut self.misused_kinds, kind, t);
        remember_for_the_hour(&mut self.misused_patients, patient, t);
        self.misused_patients
            .iter()
            .filter(|(p, at)| *p != 0 && within(*at))
            .count()
    }

    /// A run of role misuse of `kind` alerted at `t`: the kind begins runs again for
    /// [`ALERTED_MISUSE_FOR`].
    pub fn misuse_alerted(&mut self, kind: u64, t: i64) {
        remember_for_the_hour(&mut self.alerted_misuse, kind, t);
    }

    /// An alert of the actor's at `t` was dismissed as legitimate: the kinds whose runs alerted
    /// then (within the hour after) are hers after all.
    pub fn misuse_dismissed(&mut self, t: i64) {
        for entry in self
            .alerted_misuse
            .iter_mut()
            .filter(|(_, at)| (t..=t.saturating_add(HOUR)).contains(at))
        {
            *entry = (0, i64::MIN);
        }
    }

    /// The actor opened the patient's record for the first time with nothing to explain it.
    pub fn opened_unexplained(&mut self, patient: u64, t: i64) {
        if self.unreviewed.iter().any(|(p, _)| *p == patient) {
            return;
        }
        if let Some(stalest) = self.unreviewed.iter_mut().min_by_key(|(_, at)| *at) {
            *stalest = (patient, t);
        }
    }

    /// The actor looked at the patient's clinical record (or documented a consultation).
    pub fn reviewed(&mut self, patient: u64) {
        for entry in self.unreviewed.iter_mut().filter(|(p, _)| *p == patient) {
            *entry = (0, i64::MIN);
        }
    }

    /// The actor looked into the patient's record beyond her demographics at `t`.
    pub fn looked_into(&mut self, patient: u64, t: i64) {
        let slot = match self.looked_into.iter().position(|(p, _)| *p == patient) {
            Some(same) => same,
            None => (0..LOOKED_INTO)
                .min_by_key(|&k| self.looked_into[k].1)
                .unwrap_or(0),
        };
        self.looked_into[slot] = (patient, t);
    }

    /// Whether the actor looked into the patient's record beyond her demographics within
    /// [`CONSULTATION`] before `t`: a prescription written without is written blind (from the
    /// order screen, as some prescribers always do).
    pub fn looked_into_lately(&self, patient: u64, t: i64) -> bool {
        self.looked_into
            .iter()
            .any(|&(p, at)| p == patient && (0..=CONSULTATION).contains(&t.saturating_sub(at)))
    }

    /// Records that the patient's own refusal (a consent that denies the user) stopped the
    /// actor at `t`: how many patients' refusals did within [`OBJECTIONS_WITHIN`] ([`Objections`]).
    pub fn objected(&mut self, patient: u64, t: i64) -> usize {
        self.objections.objected(patient, t)
    }

    /// Whether a prescription the actor writes for the patient at `t` is written in the session
    /// of an unexplained first look, with nothing of her clinical record looked at since.
    pub fn prescribing_unreviewed(&self, patient: u64, t: i64) -> bool {
        self.unreviewed
            .iter()
            .any(|&(p, at)| p == patient && (0..=CONSULTATION).contains(&t.saturating_sub(at)))
    }

    /// Search requests in the last 10 minutes, without counting one.
    pub fn searches(&self, t: i64) -> usize {
        self.searches.iter().filter(|s| t - **s <= 600).count()
    }

    /// Whether the actor has been reading the patients of `dept` (3 or more in 2 hours): a
    /// colleague covering another ward.
    pub fn covering(&self, dept: u64, t: i64) -> bool {
        self.cover
            .iter()
            .any(|(d, n, last)| *d == dept && *n >= 3 && t - *last <= 2 * HOUR)
    }

    pub fn record_cover(&mut self, dept: u64, t: i64) {
        if let Some(c) = self.cover.iter_mut().find(|c| c.0 == dept) {
            c.1 = if t - c.2 <= 2 * HOUR {
                c.1.saturating_add(1)
            } else {
                1
            };
            c.2 = t;
        } else if let Some(stalest) = self.cover.iter_mut().min_by_key(|c| c.2) {
            *stalest = (dept, 1, t);
        }
    }
}

/// Remembers `key` as seen at `t` in `seen`, in place of the stalest entry if it is new.
fn remember_for_the_hour(seen: &mut [(u64, i64)], key: u64, t: i64) {
    let slot = seen.iter().position(|(k, _)| *k == key).or_else(|| {
        seen.iter()
            .enumerate()
            .min_by_key(|(_, (_, at))| *at)
            .map(|(i, _)| i)
    });
    if let Some(entry) = slot.and_then(|i| seen.get_mut(i)) {
        *entry = (key, t);
    }
}

/// How many of `times` fall within the hour before `t`.
fn within_the_hour(times: &[i64], t: i64) -> usize {
    times
        .iter()
        .filter(|at| (0..=HOUR).contains(&(t - **at)))
        .count()
}

fn run_signal(run: &Run) -> f64 {
    let len = f64::from(run.len);
    let unexplained = f64::from(run.unexplained) / len.max(1.0);
    let shape = if run.tight + 1 >= run.len && run.len >= 3 {
        clamp01((len - 4.0) / 3.0)
    } else {
        clamp01((len - 4.0) / 6.0)
    };
    shape * unexplained
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_patients_refusals_within_two_hours_are_a_run_unless_refusals_are_her_lot() {
        let mut o = Objections::default();
        assert_eq!(o.objected(1, 0), 1);
        // The same patient again is still one patient.
        assert_eq!(o.objected(1, 60), 1);
        assert_eq!(o.objected(2, 1_800), 2);
        assert_eq!(o.objected(3, 2 * HOUR), 3);
        // Refusals more than two hours apart are not one run.
        let mut spread = Objections::default();
        for (k, patient) in [10, 11, 12].into_iter().enumerate() {
            assert!(spread.objected(patient, k as i64 * (2 * HOUR + 1)) < OBJECTIONS);
        }
        // Three refusals before make them her lot: a run of three is her morning's work.
        assert_eq!(spread.objected(13, 10 * HOUR), 0);
        assert_eq!(spread.objected(14, 10 * HOUR + 60), 0);
        assert_eq!(spread.objected(15, 10 * HOUR + 120), 0);
    }

    #[test]
    fn a_run_of_misuse_continues_with_its_kind_within_the_hour() {
        let (report, chart) = (11, 12);
        let mut p = Patterns::default();
        // Her usual kind of data begins nothing.
        assert_eq!(p.misuse_run(chart, 1, 0, false), 0);
        assert_eq!(p.misuse_run(report, 1, 60, true), 1);
        // The same kind, no longer rare for her groups, continues the run; her charts do not.
        assert_eq!(p.misuse_run(report, 2, 120, false), 2);
        assert_eq!(p.misuse_run(chart, 3, 180, false), 0);
        // A patient counts once, whatever else of hers is read.
        assert_eq!(p.misuse_run(report, 2, 200, false), 2);
        assert_eq!(p.misuse_run(report, 4, 240, false), 3);
        // An hour after the kind's last use the run is over; the next rare look begins anew.
        assert_eq!(p.misuse_run(report, 5, 240 + HOUR + 1, false), 0);
        assert_eq!(p.misuse_run(report, 5, 240 + HOUR + 2, true), 1);
    }

    #[test]
    fn an_alerted_misuse_kind_begins_runs_for_two_weeks_until_dismissed() {
        let report = 11;
        let mut p = Patterns::default();
        p.misuse_run(report, 1, 0, true);
        p.misuse_alerted(report, 0);
        // The next day her look at the kind, usual for her groups by now, begins a run.
        assert_eq!(p.misuse_run(report, 2, 86_400, false), 1);
        assert_eq!(p.misuse_run(report, 3, 86_460, false), 2);
        // Two weeks after its alert it is over.
        assert_eq!(
            p.misuse_run(report, 4, ALERTED_MISUSE_FOR + HOUR + 1, false),
            0
        );
        // Dismissed: hers after all.
        let mut q = Patterns::default();
        q.misuse_alerted(report, 100);
        q.misuse_dismissed(50);
        assert_eq!(q.misuse_run(report, 2, 86_400, false), 0);
        // Another alert's dismissal, a day earlier, leaves this one standing.
        let mut r = Patterns::default();
        r.misuse_alerted(report, 86_400);
        r.misuse_dismissed(0);
        assert_eq!(r.misuse_run(report, 2, 2 * 86_400, false), 1);
    }

    #[test]
    fn a_prescription_is_unreviewed_within_the_first_looks_session_until_a_review() {
        let mut p = Patterns::default();
        p.opened_unexplained(7, 1_000);
        // A second look keeps the first look's time: the session began then.
        p.opened_unexplained(7, 1_500);
        assert!(p.prescribing_unreviewed(7, 1_000 + CONSULTATION));
        assert!(!p.prescribing_unreviewed(7, 1_001 + CONSULTATION));
        assert!(!p.prescribing_unreviewed(8, 1_100));
        // Her record looked at: reviewed.
        p.reviewed(7);
        assert!(!p.prescribing_unreviewed(7, 1_100));
        // Two patients remembered; a third takes the stalest's place.
        p.opened_unexplained(8, 2_000);
        p.opened_unexplained(9, 2_100);
        p.opened_unexplained(10, 2_200);
        assert!(!p.prescribing_unreviewed(8, 2_300));
        assert!(p.prescribing_unreviewed(9, 2_300) && p.prescribing_unreviewed(10, 2_300));
    }

    #[test]
    fn the_first_note_reports_how_long_after_the_unexplained_first_look_it_came() {
        let mut p = Patterns::default();
        p.record_patient(7, 1_000, 0.95);
        p.record_patient(7, 1_040, 0.95);
        assert_eq!(p.explain_patient(7, 1_130), Some(130));
        // Only the first note.
        assert_eq!(p.explain_patient(7, 1_200), None);
        // A first look something explained is no such look.
        p.record_patient(8, 2_000, 0.1);
        assert_eq!(p.explain_patient(8, 2_100), None);
        // The memory stays at 24 bytes a patient.
        assert_eq!(std::mem::size_of::<Recent>(), 24);
    }

    #[test]
    fn a_numeric_sweep_is_found_a_ward_round_is_not() {
        let mut p = Patterns::default();
        let mut last = 0.0;
        for i in 0..8 {
            let reference = format!("Patient/{}", 5000 + i);
            last = p.sweep(hash_str(&reference), &reference, i * 20, 1.0, 0.0);
        }
        assert_eq!(last, 1.0);
        // The same order, but every patient explained (the ward's own, in bed order): nothing.
        let mut ward = Patterns::default();
        for i in 0..8 {
            let reference = format!("Patient/{}", 5000 + i);
            last = ward.sweep(hash_str(&reference), &reference, i * 20, 0.0, 0.0);
        }
        assert_eq!(last, 0.0);
        // Random order: runs stay short.
        let mut random = Patterns::default();
        let ids = [17, 3, 44, 12, 9, 31, 2, 40, 8, 25];
        let mut top: f64 = 0.0;
        for (i, id) in ids.iter().enumerate() {
            let reference = format!("Patient/{id}");
            top = top.max(random.sweep(hash_str(&reference), &reference, i as i64 * 20, 1.0, 0.0));
        }
        assert_eq!(top, 0.0);
    }

    /// A community nurse's medication round: each patient's orders read, in id order, strangers
    /// to the stream, and her administration charted before the next. A round, not a sweep;
    /// the same order read without a note is one.
    #[test]
    fn a_round_in_id_order_documented_patient_by_patient_is_not_a_sweep() {
        let ids = [5, 19, 21, 60, 188, 766, 1051, 1687, 1942, 1962, 2552, 2610];
        let mut round = Patterns::default();
        let mut read_only = Patterns::default();
        let (mut documented, mut undocumented) = (0.0_f64, 0.0_f64);
        for (i, id) in ids.iter().enumerate() {
            let reference = format!("Patient/{}", 1_000_000 + id);
            let patient = hash_str(&reference);
            let t = i as i64 * 180;
            documented = documented.max(round.sweep(patient, &reference, t, 1.0, 0.0));
            round.explain_patient(patient, t + 30);
            undocumented = read_only.sweep(patient, &reference, t, 1.0, 0.0);
        }
        // Only the patient open, not yet documented, counts: one of the run's ten or more.
        assert!(documented <= 0.1 + 1e-9, "{documented}");
        assert_eq!(undocumented, 1.0);
    }

    #[test]
    fn a_clerks_guessed_numbers_between_her_own_registrations_are_a_sweep() {
        // Record numbers one after another through dormant records, each with the clerk's own
        // registration of another patient between: the habit discounts nothing here.
        let mut p = Patterns::default();
        let mut last = 0.0;
        for i in 0..8i64 {
            let reference = format!("Patient/{}", 7000 + 2 * i);
            last = p.sweep(hash_str(&reference), &reference, i * 120, 0.0, 1.0);
            let registration = format!("Patient/{}", 90_000 - 37 * i);
            p.sweep(
                hash_str(&registration),
                &registration,
                i * 120 + 60,
                0.0,
                0.0,
            );
        }
        // (The first patient, before any step, counts as explained by the habit.)
        assert!(last >= 0.85, "{last}");
        // New registrations worked through in id order are not dormant: nothing.
        let mut new = Patterns::default();
        for i in 0..8i64 {
            let reference = format!("Patient/{}", 7000 + i);
            last = new.sweep(hash_str(&reference), &reference, i * 120, 0.0, 0.0);
        }
        assert_eq!(last, 0.0);
        // Three patients off the sweep in a row end it.
        let mut ended = Patterns::default();
        for i in 0..4i64 {
            let reference = format!("Patient/{}", 7000 + i);
            ended.sweep(hash_str(&reference), &reference, i * 60, 0.0, 1.0);
        }
        for (i, id) in [50_000, 20_000, 80_000].iter().enumerate() {
            let reference = format!("Patient/{id}");
            ended.sweep(
                hash_str(&reference),
                &reference,
                300 + i as i64 * 10,
                0.0,
                1.0,
            );
        }
        let reference = "Patient/7004";
        assert_eq!(
            ended.sweep(hash_str(reference), reference, 400, 0.0, 1.0),
            0.0
        );
    }

    #[test]
    fn alphabetical_sweeps_of_opaque_ids_count_too() {
        let mut p = Patterns::default();
        let mut last = 0.0;
        for (i, id) in ["ab", "ac", "bd", "ce", "da", "ef", "fa", "gz", "hh", "ka"]
            .iter()
            .enumerate()
        {
            let reference = format!("Patient/{id}x-");
            last = p.sweep(hash_str(&reference), &reference, i as i64 * 30, 1.0, 0.0);
        }
        assert_eq!(last, 1.0);
    }

    #[test]
    fn unexplained_patients_and_covering() {
        let mut p = Patterns::default();
        for i in 0..4u64 {
            p.record_patient(i, i as i64 * 60, 1.0);
        }
        p.record_patient(9, 300, 0.0);
        assert_eq!(p.unexplained_patients(400, None), 4);
        assert_eq!(p.unexplained_patients(400, Some(10)), 5);
        assert_eq!(p.unexplained_patients(4 * HOUR, None), 0);
        for i in 0..3 {
            p.record_cover(77, i * 60);
        }
        assert!(p.covering(77, 200));
        assert!(!p.covering(78, 200));
        assert!(!p.covering(77, 200 + 3 * HOUR));
    }

    #[test]
    fn search_requests_count_once() {
        let mut p = Patterns::default();
        for _ in 0..30 {
            p.search(0, 1);
        }
        assert_eq!(p.search(5, 2), 2);
        assert_eq!(p.searches(700), 0);
    }

    /// Two lists at once, or a log merged from several servers a few seconds apart: the events
    /// of two requests interleave. Each request still counts once, across seconds, and each
    /// list's later patients stay later patients (were each switch a new request, every one
    /// would be a "first patient", a specific look, and every event a search: measured on a
    /// simulated log shuffled within ±3 s, false alerts 686 → 3,228 before this).
    #[test]
    fn interleaved_requests_are_told_apart() {
        let mut p = Patterns::default();
        let (ward_list, lab_list) = (11, 12);
        for (i, patient) in (100..110).enumerate() {
            let t = i as i64;
            let ward = p.position_in_request(ward_list, patient);
            p.search(t, ward_list);
            let lab = p.position_in_request(lab_list, patient + 50);
            p.search(t, lab_list);
            assert_eq!((ward, lab), (i as u32, i as u32));
        }
        assert_eq!(p.searches(20), 2);
        // A new request, after both: its first patient is a first patient again.
        assert_eq!(p.position_in_request(13, 100), 0);
        assert_eq!(p.search(30, 13), 3);
        // A `$everything`'s breadth survives another request between its events.
        for kind in 0..8 {
            p.position_in_request(14, 7);
            if kind == 3 {
                p.position_in_request(15, 8);
            }
        }
        p.position_in_request(14, 7);
        assert_eq!(p.request_breadth(), 9);
    }
}
