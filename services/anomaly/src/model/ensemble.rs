//! The ensemble: every feature's value in `[0, 1]` times its weight, combined as a noisy-OR
//! into a raw risk, then calibrated so the alert threshold lands at a chosen false-positive
//! rate of the training period.
//!
//! Calibration: the first `warmup` of event time (default 48 h) only learns (relationships and
//! baselines are empty, so nearly every access is "unexplained"); the next `calibration` (48 h)
//! fills a histogram of raw risks (4,096 bins), at most [`PER_ACTOR_HOUR`] events per actor and
//! hour, [`TAIL_PER_ACTOR`] tail events (raw ≥ 0.5) per actor, and of those at 0.9 or more a
//! quarter of the tail the threshold is set by ([`HIGH_SHARE_PER_ACTOR`]: in a small hospital,
//! a few events each). The raw threshold `q` is the
//! smallest bin edge with at most the target share of those events at or above it, never below
//! [`MIN_RAW_THRESHOLD`]; it is recomputed every 4,096 events of the period (once 20,000 are
//! in). Until then `q` is the prior [`PRIOR_RAW_THRESHOLD`]: rules that need no baseline
//! (bursts, denials, failed logins, sweeps, exports) still alert during the warm-up. The
//! assumption is that the training period is mostly benign; the per-actor caps keep an incident
//! in it (an exfiltration) from pushing `q` into its own scores.
//!
//! The target share is `target_fpr` (0.5%), lowered for a hospital so busy that it would make
//! more than `daily_alert_budget` (75) alerting events a day: at a fixed rate, precision falls
//! as benign traffic grows. The budget divides every event of the day, not only the sampled
//! ones: a busy account's events past its caps alert like any other.
//!
//! After calibration the threshold follows the traffic: the histogram keeps counting (at most
//! [`PER_ACTOR_DAY`] events and [`TAIL_PER_ACTOR_DAY`] tail events per actor and day), older
//! days fade by [`FOLLOW_DECAY`] a day, and `q` is set again at the start of each day. The
//! calibration days are not every week (a partner hospital busier, clinic days): frozen, the
//! threshold let the false-positive rate drift to 0.6-0.9% on simulated hospitals. A threshold
//! imported from the federation is not followed.
//!
//! The score is the raw risk mapped piecewise-linearly so that `q` becomes
//! [`CALIBRATED_ANCHOR`] (0.8, the default `ANOMALY_ALERT_THRESHOLD`): `[0, q] → [0, 0.8]`,
//! `[q, 1] → [0.8, 1]`. An operator's threshold other than 0.8 moves along the same scale.

use super::cache::KeyMap;

/// Scores at the calibrated raw threshold map to this.
pub const CALIBRATED_ANCHOR: f64 = 0.8;
/// The raw threshold before calibration.
pub const PRIOR_RAW_THRESHOLD: f64 = 0.8;
/// Calibration never puts the threshold below this raw risk (a very quiet training period must
/// not make faint signals alert).
pub const MIN_RAW_THRESHOLD: f64 = 0.3;
const BINS: usize = 4096;
const DAY: i64 = 86_400;
const RECOMPUTE_EVERY: u64 = 4096;
const MIN_SAMPLES: u64 = 20_000;
/// Events of one actor in one hour of event time sampled for calibration at most.
pub const PER_ACTOR_HOUR: u32 = 30;
/// Events of one actor in one day sampled at most once calibrated: one insider's long day
/// cannot move the threshold that should catch him.
pub const PER_ACTOR_DAY: u32 = 120;
/// Raw risks from here up are the tail a threshold is set in.
const TAIL_RAW: f64 = 0.5;
/// Tail events of one actor sampled at most in the calibration period, and in a day after it:
/// an insider's exfiltration during the calibration must not set the threshold above its own
/// scores (measured on a simulated 60-staff hospital with four incidents in its calibration
/// days: the raw threshold went to 0.98, recall of attack events 0.79; with the cap 0.87, and
/// nothing changed on hospitals with clean calibration days; a cap of 20 cost them precision).
pub const TAIL_PER_ACTOR: u32 = 40;
pub const TAIL_PER_ACTOR_DAY: u32 = 40;
/// A raw risk this high is what the threshold is set among (the top half-percent of a
/// hospital's events lies at 0.85-0.98).
const HIGH_RAW: f64 = 0.9;
/// High-risk events of one actor sampled at most in the calibration period, as a share of the
/// events the threshold is set by (the target share of the period's samples, estimated from
/// the warm-up's), at least [`MIN_HIGH_PER_ACTOR`]: in a small hospital that tail is 30-40
/// events, and four insiders at work in the calibration days at [`TAIL_PER_ACTOR`] each made
/// it theirs (a simulated 40-staff hospital's raw threshold went to 0.98, above its
/// exfiltrations' whole records). Benign actors seldom reach 0.9 at all.
pub const HIGH_SHARE_PER_ACTOR: f64 = 0.25;
pub const MIN_HIGH_PER_ACTOR: u32 = 3;

/// What a day of raw risks still weighs the next day, once calibrated (about a week's memory).
/// The traffic of the calibration days is not every week's (a partner hospital busier, a
/// clinic day, a holiday): measured on simulated hospitals, a threshold frozen after its two
/// calibration days let the false-positive rate drift to 0.6-0.9% against a target of 0.5%.
pub const FOLLOW_DECAY: f64 = 0.8;

/// The features, in table order (see the module doc of [`crate::model`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    NoRelationship,
    SensitiveUnexplained,
    DormantUnexplained,
    UnexplainedContext,
    UnexplainedSpree,
    Burst,
    Rate,
    Denied,
    FailedLogins,
    BreakGlass,
    BreakGlassExcess,
    Export,
    WholeRecord,
    LargeResult,
    LongList,
    Sweep,
    SearchSweep,
    OddHour,
    NewSource,
    RoleMisuse,
    MisuseRun,
    Volume,
    PatientsPerHour,
    Outlier,
    Restricted,
    Amendments,
    OwnRecord,
    UnreviewedPrescription,
    TwoPlaces,
    Objections,
}

pub const FEATURES: usize = 30;

impl Feature {
    pub const ALL: [Feature; FEATURES] = [
        Feature::NoRelationship,
        Feature::SensitiveUnexplained,
        Feature::DormantUnexplained,
        Feature::UnexplainedContext,
        Feature::UnexplainedSpree,
        Feature::Burst,
        Feature::Rate,
        Feature::Denied,
        Feature::FailedLogins,
        Feature::BreakGlass,
        Feature::BreakGlassExcess,
        Feature::Export,
        Feature::WholeRecord,
        Feature::LargeResult,
        Feature::LongList,
        Feature::Sweep,
        Feature::SearchSweep,
        Feature::OddHour,
        Feature::NewSource,
        Feature::RoleMisuse,
        Feature::MisuseRun,
        Feature::Volume,
        Feature::PatientsPerHour,
        Feature::Outlier,
        Feature::Restricted,
        Feature::Amendments,
        Feature::OwnRecord,
        Feature::UnreviewedPrescription,
        Feature::TwoPlaces,
        Feature::Objections,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Feature::NoRelationship => "no_relationship",
            Feature::SensitiveUnexplained => "sensitive_unexplained",
            Feature::DormantUnexplained => "dormant_unexplained",
            Feature::UnexplainedContext => "unexplained_context",
            Feature::UnexplainedSpree => "unexplained_spree",
            Feature::Burst => "distinct_patients",
            Feature::Rate => "rate",
            Feature::Denied => "denied",
            Feature::FailedLogins => "failed_logins",
            Feature::BreakGlass => "break_glass_no_context",
            Feature::BreakGlassExcess => "break_glass_excess",
            Feature::Export => "export",
            Feature::WholeRecord => "whole_record",
            Feature::LargeResult => "large_result",
            Feature::LongList => "long_list",
            Feature::Sweep => "sweep",
            Feature::SearchSweep => "search_sweep",
            Feature::OddHour => "odd_hour",
            Feature::NewSource => "new_source",
            Feature::RoleMisuse => "role_misuse",
            Feature::MisuseRun => "misuse_run",
            Feature::Volume => "volume",
            Feature::PatientsPerHour => "patients_per_hour",
            Feature::Outlier => "outlier",
            Feature::Restricted => "restricted",
            Feature::Amendments => "amendments",
            Feature::OwnRecord => "own_record",
            Feature::UnreviewedPrescription => "unreviewed_prescription",
            Feature::TwoPlaces => "two_places",
            Feature::Objections => "objections",
        }
    }

    /// The weight: how much the feature alone, at full strength, adds to the raw risk.
    pub fn weight(self) -> f64 {
        match self {
            Feature::NoRelationship => 0.40,
            Feature::SensitiveUnexplained => 0.75,
            Feature::DormantUnexplained => 0.55,
            Feature::UnexplainedContext => 0.60,
            Feature::UnexplainedSpree => 0.95,
            Feature::Burst => 0.95,
            Feature::Rate => 0.50,
            Feature::Denied => 0.85,
            Feature::FailedLogins => 0.97,
            Feature::BreakGlass => 0.85,
            Feature::BreakGlassExcess => 0.60,
            Feature::Export => 0.50,
            Feature::WholeRecord => 0.97,
            Feature::LargeResult => 0.60,
            Feature::LongList => 0.90,
            Feature::Sweep => 0.97,
            Feature::SearchSweep => 0.70,
            Feature::OddHour => 0.25,
            Feature::NewSource => 0.35,
            Feature::RoleMisuse => 0.50,
            Feature::MisuseRun => 0.95,
            Feature::Volume => 0.50,
            Feature::PatientsPerHour => 0.60,
            Feature::Outlier => 0.30,
            Feature::Restricted => 0.10,
            Feature::Amendments => 0.90,
            Feature::OwnRecord => 0.90,
            Feature::UnreviewedPrescription => 0.95,
            Feature::TwoPlaces => 0.97,
            Feature::Objections => 0.95,
        }
    }
}

/// Feature values of one event, indexed by `Feature as usize`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Values(pub [f64; FEATURES]);

impl Feature {
    /// The features that say only that nothing explains an access (and how much that
    /// matters): what a later explanation (the actor documenting for the patient) answers.
    pub const EXPLANATION: [Feature; 6] = [
        Feature::NoRelationship,
        Feature::SensitiveUnexplained,
        Feature::DormantUnexplained,
        Feature::UnexplainedContext,
        Feature::Outlier,
        Feature::Restricted,
    ];
}

impl Values {
    pub fn set(&mut self, feature: Feature, value: f64) {
        self.0[feature as usize] = if value.is_nan() {
            0.0
        } else {
            value.clamp(0.0, 1.0)
        };
    }

    pub fn get(&self, feature: Feature) -> f64 {
        self.0[feature as usize]
    }

    /// `weight × value` per feature.
    pub fn contributions(&self) -> [f64; FEATURES] {
        let mut c = [0.0; FEATURES];
        for f in Feature::ALL {
            c[f as usize] = f.weight() * self.get(f);
        }
        c
    }

    /// `1 − Π (1 − wᵢ fᵢ)`.
    /// These values with `features` set to 0.
    pub fn without(&self, features: &[Feature]) -> Values {
        let mut rest = *self;
        for f in features {
            rest.0[*f as usize] = 0.0;
        }
        rest
    }

    pub fn raw(&self) -> f64 {
        let keep: f64 = self.contributions().iter().map(|c| 1.0 - c).product();
        (1.0 - keep).clamp(0.0, 1.0)
    }
}

/// The calibration settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CalibrationSettings {
    /// The share of training events allowed to alert.
    pub target_fpr: f64,
    /// Event time that only learns before calibration starts.
    pub warmup_seconds: i64,
    /// Event time whose raw risks set the threshold.
    pub calibration_seconds: i64,
    /// Alerting events a day the threshold aims at, at most (of all the day's events, sampled
    /// or not); 0 = no limit.
    /// A hospital so busy that `target_fpr` of its day would exceed this gets a lower target:
    /// at a fixed rate, precision falls as traffic grows (measured on a simulated 300-staff
    /// hospital: precision 0.56 at 0.5%, 0.85 at 0.2%), and a security team reviews alerts,
    /// not rates.
    #[serde(default)]
    pub daily_alert_budget: f64,
}

impl CalibrationSettings {
    /// The share of a day's `daily` events allowed to alert.
    pub fn target_for(&self, daily: f64) -> f64 {
        if self.daily_alert_budget > 0.0 && daily > 0.0 {
            self.target_fpr.min(self.daily_alert_budget / daily)
        } else {
            self.target_fpr
        }
    }
}

/// The default [`CalibrationSettings::daily_alert_budget`]: a simulated 120-staff hospital's
/// day has about 14,500 events, so its 0.5% target stands; a 300-staff one's about 60,000, so
/// it gets about 0.125%.
pub const DEFAULT_DAILY_ALERT_BUDGET: f64 = 75.0;

impl Default for CalibrationSettings {
    fn default() -> Self {
        Self {
            target_fpr: 0.005,
            warmup_seconds: 48 * 3600,
            calibration_seconds: 48 * 3600,
            daily_alert_budget: DEFAULT_DAILY_ALERT_BUDGET,
        }
    }
}

/// Where the calibration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Phase {
    Warmup,
    Calibrating,
    Calibrated,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Calibrator {
    settings: CalibrationSettings,
    /// The actor-hour being counted and how many of its events were sampled.
    actor_hour: KeyMap<u32>,
    hour: i64,
    start: Option<i64>,
    histogram: Vec<u32>,
    samples: u64,
    raw_threshold: f64,
    phase: Phase,
    /// An imported threshold waiting for the end of the warm-up.
    imported: Option<f64>,
    /// After calibration: the raw risks of recent days (the calibration's histogram to start
    /// with), each day's counts multiplied by [`FOLLOW_DECAY`] when the next begins; the
    /// threshold follows them once a day. Empty while calibrating and when the threshold was
    /// imported.
    #[serde(default)]
    recent: Vec<f64>,
    #[serde(default)]
    recent_day: i64,
    /// Events of each actor sampled today (at most [`PER_ACTOR_DAY`]).
    #[serde(default)]
    actor_day: KeyMap<u32>,
    /// Tail events sampled per actor (in the calibration period, then per day).
    #[serde(default)]
    actor_tail: KeyMap<u32>,
    /// Events sampled today, and per day (the calibration's mean to start, then a running
    /// mean over the days since).
    #[serde(default)]
    today: f64,
    #[serde(default)]
    per_day: f64,
    /// Every event observed (sampled or not) in the calibration period, today, and per day
    /// (likewise a running mean): what the daily alert budget divides. A busy actor's events
    /// past the sampling caps alert like the sampled ones, so a share of the sampled events
    /// alone overshot the budget in a busy hospital (a simulated 300-staff hospital sampled
    /// about 60% of its events).
    #[serde(default)]
    all_calibrating: u64,
    #[serde(default)]
    all_today: f64,
    #[serde(default)]
    all_per_day: f64,
    /// The threshold came from outside: it is not followed locally.
    #[serde(default)]
    threshold_imported: bool,
    /// Events sampled (within the actor-hour cap) in the warm-up: what the calibration's tail
    /// will be made of ([`HIGH_SHARE_PER_ACTOR`]).
    #[serde(default)]
    warmup_samples: u64,
    /// High-risk events sampled per actor in the calibration period.
    #[serde(default)]
    actor_high: KeyMap<u32>,
}

impl Calibrator {
    /// Runs on under other settings (a restart restored from a snapshot with changed ones).
    pub fn set_settings(&mut self, settings: CalibrationSettings) {
        self.settings = settings;
    }

    pub fn new(settings: CalibrationSettings) -> Self {
        Self {
            settings,
            actor_hour: KeyMap::default(),
            hour: i64::MIN,
            start: None,
            histogram: vec![0; BINS],
            samples: 0,
            raw_threshold: PRIOR_RAW_THRESHOLD,
            phase: Phase::Warmup,
            imported: None,
            recent: Vec::new(),
            recent_day: 0,
            actor_day: KeyMap::default(),
            actor_tail: KeyMap::default(),
            today: 0.0,
            per_day: 0.0,
            all_calibrating: 0,
            all_today: 0.0,
            all_per_day: 0.0,
            threshold_imported: false,
            warmup_samples: 0,
            actor_high: KeyMap::default(),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn raw_threshold(&self) -> f64 {
        self.raw_threshold
    }

    /// Raw risk → score (see the module doc), rounded to 4 decimals.
    pub fn score(&self, raw: f64) -> f64 {
        let q = self.raw_threshold;
        let s = if raw < q {
            CALIBRATED_ANCHOR * raw / q
        } else {
            CALIBRATED_ANCHOR + (1.0 - CALIBRATED_ANCHOR) * (raw - q) / (1.0 - q).max(1e-9)
        };
        (s.clamp(0.0, 1.0) * 10_000.0).round() / 10_000.0
    }

    /// Counts one scored event's raw risk at event time `t` for `actor`. At most
    /// [`PER_ACTOR_HOUR`] events of one actor in one hour are sampled, so one busy actor (a
    /// service, or an insider copying records all day) cannot move the threshold.
    pub fn observe(&mut self, t: i64, actor: u64, raw: f64) {
        let hour = t.div_euclid(3600);
        if hour != self.hour {
            self.hour = hour;
            self.actor_hour.clear();
        }
        let start = *self.start.get_or_insert(t);
        let since = t - start;
        let warmup = self.settings.warmup_seconds;
        if self.phase == Phase::Calibrated {
            self.roll_day(t);
            self.all_today += 1.0;
        } else if since >= warmup && since < warmup + self.settings.calibration_seconds {
            self.all_calibrating += 1;
        }
        let n = self.actor_hour.entry(actor).or_default();
        *n += 1;
        if *n > PER_ACTOR_HOUR {
            return;
        }
        if since >= self.settings.warmup_seconds + self.settings.calibration_seconds {
            if let Some(q) = self.imported.take() {
                self.raw_threshold = q;
                self.phase = Phase::Calibrated;
                self.threshold_imported = true;
            }
        }
        match self.phase {
            Phase::Calibrated => self.follow(actor, raw),
            _ if since < self.settings.warmup_seconds => self.warmup_samples += 1,
            _ if since < self.settings.warmup_seconds + self.settings.calibration_seconds => {
                self.phase = Phase::Calibrating;
                if self.tail_full(actor, raw, TAIL_PER_ACTOR) || self.high_full(actor, raw) {
                    return;
                }
                let bin = ((raw.clamp(0.0, 1.0) * BINS as f64) as usize).min(BINS - 1);
                self.histogram[bin] += 1;
                self.samples += 1;
                if self.samples >= MIN_SAMPLES && self.samples.is_multiple_of(RECOMPUTE_EVERY) {
                    self.recompute(since - self.settings.warmup_seconds);
                }
            }
            _ => {
                if self.samples > 0 {
                    self.recompute(self.settings.calibration_seconds);
                    self.recent = self.histogram.iter().map(|&n| f64::from(n)).collect();
                    self.recent_day = t.div_euclid(DAY);
                    self.actor_tail.clear();
                    self.actor_high = KeyMap::default();
                    let days = (self.settings.calibration_seconds as f64 / DAY as f64).max(1.0);
                    self.per_day = self.samples as f64 / days;
                    self.all_per_day = self.all_calibrating as f64 / days;
                }
                self.phase = Phase::Calibrated;
            }
        }
    }

    /// The calibration histogram folded into `bins` equal bins over `[0, 1]` (`bins` divides
    /// 4,096): how many sampled events had each raw risk. What federates of the calibration.
    pub fn histogram(&self, bins: usize) -> Vec<f64> {
        let bins = bins.clamp(1, BINS);
        let width = BINS / bins;
        self.histogram
            .chunks(width)
            .map(|c| c.iter().map(|&n| f64::from(n)).sum())
            .collect()
    }

    /// Sets the raw threshold from outside (federated parameters, calibrated on far more
    /// events) in place of the local calibration's: at once if that is over, else when it
    /// would end. Not sooner: measured on a simulated newcomer, a young model (days 2-3) under
    /// a mature threshold alerts far too often (F1 0.41 against 0.65 alone).
    pub fn import_threshold(&mut self, raw_threshold: f64) {
        if !raw_threshold.is_finite() {
            return;
        }
        let q = raw_threshold.clamp(MIN_RAW_THRESHOLD, 1.0);
        if self.phase == Phase::Calibrated {
            self.raw_threshold = q;
            self.threshold_imported = true;
        } else {
            self.imported = Some(q);
        }
    }

    /// Counts a calibrated period's raw risk; on the first event of a new day, the older days
    /// fade and the threshold is set from what remains.
    fn follow(&mut self, actor: u64, raw: f64) {
        if self.threshold_imported || self.recent.len() != BINS {
            return;
        }
        let n = self.actor_day.entry(actor).or_default();
        *n += 1;
        if *n > PER_ACTOR_DAY || self.tail_full(actor, raw, TAIL_PER_ACTOR_DAY) {
            return;
        }
        let bin = ((raw.clamp(0.0, 1.0) * BINS as f64) as usize).min(BINS - 1);
        self.recent[bin] += 1.0;
        self.today += 1.0;
    }

    /// On the first event of a new day (calibrated, following): the older days fade and the
    /// threshold is set from what remains.
    fn roll_day(&mut self, t: i64) {
        if self.threshold_imported || self.recent.len() != BINS {
            return;
        }
        let day = t.div_euclid(DAY);
        if day <= self.recent_day {
            return;
        }
        let fade = FOLLOW_DECAY.powi(i32::try_from(day - self.recent_day).unwrap_or(i32::MAX));
        for n in &mut self.recent {
            *n *= fade;
        }
        self.recent_day = day;
        self.actor_day.clear();
        self.actor_tail.clear();
        self.per_day = FOLLOW_DECAY * self.per_day + (1.0 - FOLLOW_DECAY) * self.today;
        self.today = 0.0;
        self.all_per_day = FOLLOW_DECAY * self.all_per_day + (1.0 - FOLLOW_DECAY) * self.all_today;
        self.all_today = 0.0;
        let target = self.settings.target_for(self.budget_basis(self.per_day));
        if let Some(q) = threshold_from_histogram(&self.recent, target) {
            self.raw_threshold = q;
        }
    }

    /// Events a day the alert budget divides: every event observed, or the sampled ones
    /// (`sampled`) for a state saved before every event was counted.
    fn budget_basis(&self, sampled: f64) -> f64 {
        if self.all_per_day > 0.0 {
            self.all_per_day
        } else {
            sampled
        }
    }

    /// Counts a high-risk calibration event of `actor`; whether it has more than
    /// [`HIGH_SHARE_PER_ACTOR`] of the expected tail (the target share of as many samples a
    /// second as in the warm-up), at least [`MIN_HIGH_PER_ACTOR`], at most [`TAIL_PER_ACTOR`].
    fn high_full(&mut self, actor: u64, raw: f64) -> bool {
        let warmup = self.settings.warmup_seconds;
        if raw < HIGH_RAW || warmup <= 0 || self.warmup_samples == 0 {
            return false;
        }
        let scale = self.settings.calibration_seconds as f64 / warmup as f64;
        let per_day = self.warmup_samples as f64 * DAY as f64 / warmup as f64;
        let tail = self.settings.target_for(per_day) * self.warmup_samples as f64 * scale;
        let cap = ((tail * HIGH_SHARE_PER_ACTOR) as u32).clamp(MIN_HIGH_PER_ACTOR, TAIL_PER_ACTOR);
        let n = self.actor_high.entry(actor).or_default();
        *n += 1;
        *n > cap
    }

    /// Counts a tail event of `actor`; whether it has more than `cap` of them.
    fn tail_full(&mut self, actor: u64, raw: f64, cap: u32) -> bool {
        if raw < TAIL_RAW {
            return false;
        }
        let n = self.actor_tail.entry(actor).or_default();
        *n += 1;
        *n > cap
    }

    /// Sets the threshold from the calibration histogram, `elapsed` seconds of calibration in.
    fn recompute(&mut self, elapsed: i64) {
        let days = (elapsed as f64 / DAY as f64).max(1.0 / 24.0);
        let every = if self.all_calibrating > 0 {
            self.all_calibrating
        } else {
            self.samples
        };
        let target = self.settings.target_for(every as f64 / days);
        let allowed = (target * self.samples as f64).floor() as u64;
        let mut above = 0u64;
        let mut edge = BINS;
        for bin in (0..BINS).rev() {
            let n = u64::from(self.histogram[bin]);
            if above + n > allowed {
                break;
            }
            above += n;
            edge = bin;
        }
        self.raw_threshold = (edge as f64 / BINS as f64).clamp(MIN_RAW_THRESHOLD, 1.0);
    }
}

/// The raw threshold a histogram of raw risks (equal bins over `[0, 1]`, any scale) gives at
/// `target_fpr`: the smallest bin edge with at most that share of the mass at or above it, never
/// below [`MIN_RAW_THRESHOLD`]; `None` for an empty histogram. Negative bins (noise) count 0.
pub fn threshold_from_histogram(histogram: &[f64], target_fpr: f64) -> Option<f64> {
    let clean = |n: f64| if n.is_finite() { n.max(0.0) } else { 0.0 };
    let total: f64 = histogram.iter().map(|&n| clean(n)).sum();
    if total <= 0.0 || histogram.is_empty() {
        return None;
    }
    let allowed = target_fpr * total;
    let mut above = 0.0;
    let mut edge = histogram.len();
    for bin in (0..histogram.len()).rev() {
        let n = clean(histogram[bin]);
        if above + n > allowed {
            break;
        }
        above += n;
        edge = bin;
    }
    Some((edge as f64 / histogram.len() as f64).clamp(MIN_RAW_THRESHOLD, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A uniform draw in `[0, 1)` from a linear congruential generator (deterministic tests).
    fn uniform(state: &mut u64) -> f64 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn a_folded_histogram_gives_nearly_the_calibrated_threshold() {
        let settings = CalibrationSettings {
            target_fpr: 0.01,
            daily_alert_budget: 0.0,
            warmup_seconds: 0,
            calibration_seconds: 1_000_000,
        };
        let mut c = Calibrator::new(settings);
        for i in 0..50_000u64 {
            let u = ((i * 7919) % 50_000) as f64 / 50_000.0;
            c.observe(i as i64, i, u.powi(3));
        }
        c.recompute(1_000_000);
        let q = threshold_from_histogram(&c.histogram(256), 0.01).unwrap();
        assert!(
            (q - c.raw_threshold()).abs() <= 1.0 / 256.0,
            "{q} {}",
            c.raw_threshold()
        );
        assert_eq!(threshold_from_histogram(&[0.0; 8], 0.01), None);
        // Imported early: it takes over when the local calibration would end.
        let mut d = Calibrator::new(CalibrationSettings {
            warmup_seconds: 100,
            calibration_seconds: 100,
            ..settings
        });
        d.import_threshold(q);
        d.observe(0, 1, 0.5);
        d.observe(150, 1, 0.5);
        assert_eq!(d.raw_threshold(), PRIOR_RAW_THRESHOLD);
        d.observe(200, 1, 0.5);
        assert_eq!((d.phase(), d.raw_threshold()), (Phase::Calibrated, q));
        d.import_threshold(0.5);
        assert_eq!((d.phase(), d.raw_threshold()), (Phase::Calibrated, 0.5));
    }

    /// Once calibrated, the threshold follows the traffic: days whose raw risks run higher
    /// than the calibration days' bring the false-positive rate back to its target within a
    /// week; an imported threshold is left alone.
    #[test]
    fn the_calibrated_threshold_follows_a_heavier_week() {
        let settings = CalibrationSettings {
            target_fpr: 0.005,
            daily_alert_budget: 0.0,
            warmup_seconds: 0,
            calibration_seconds: DAY,
        };
        let mut c = Calibrator::new(settings);
        let mut state = 99u64;
        let mut draw = |power: i32| uniform(&mut state).powi(power);
        // A day of calibration (one event per actor: no cap), then a heavier tail.
        let per_day = 40_000i64;
        let mut t = 0i64;
        let mut actor = 0u64;
        let mut day = |c: &mut Calibrator, power: i32, draw: &mut dyn FnMut(i32) -> f64| {
            for i in 0..per_day {
                actor += 1;
                c.observe(t + i * DAY / per_day, actor, draw(power));
            }
            t += DAY;
        };
        day(&mut c, 6, &mut draw);
        day(&mut c, 2, &mut draw);
        assert_eq!(c.phase(), Phase::Calibrated);
        let mut imported = c.clone();
        imported.import_threshold(c.raw_threshold());
        let frozen = c.raw_threshold();
        let rate = |c: &Calibrator, draw: &mut dyn FnMut(i32) -> f64| {
            let n = 50_000;
            (0..n)
                .filter(|_| c.score(draw(2)) >= CALIBRATED_ANCHOR)
                .count() as f64
                / n as f64
        };
        assert!(
            rate(&c, &mut draw) > 0.01,
            "the heavier traffic alerts too often at first"
        );
        for _ in 0..7 {
            day(&mut c, 2, &mut draw);
            day(&mut imported, 2, &mut draw);
        }
        assert!(c.raw_threshold() > frozen);
        let followed = rate(&c, &mut draw);
        assert!((0.003..=0.008).contains(&followed), "{followed}");
        assert_eq!(imported.raw_threshold(), frozen);
    }

    /// A day busy enough that the target rate would exceed the alert budget gets a lower
    /// target, so that about the budget alerts; a quieter one keeps the target.
    #[test]
    fn a_busy_hospital_alerts_within_its_daily_budget() {
        let settings = CalibrationSettings {
            target_fpr: 0.005,
            warmup_seconds: 0,
            calibration_seconds: DAY,
            daily_alert_budget: 75.0,
        };
        assert_eq!(settings.target_for(10_000.0), 0.005);
        assert!((settings.target_for(37_500.0) - 0.002).abs() < 1e-12);
        let unlimited = CalibrationSettings {
            daily_alert_budget: 0.0,
            ..settings
        };
        assert_eq!(unlimited.target_for(1e6), 0.005);

        let mut draw = skewed_draws(7);
        let mut c = Calibrator::new(settings);
        let per_day = 40_000i64;
        for i in 0..=per_day {
            c.observe(i * DAY / per_day, i as u64, draw());
        }
        assert_eq!(c.phase(), Phase::Calibrated);
        let n = 100_000;
        let rate = (0..n)
            .filter(|_| c.score(draw()) >= CALIBRATED_ANCHOR)
            .count() as f64
            / n as f64;
        // 75 of 40,000 a day: 0.19%.
        assert!((0.0012..=0.0026).contains(&rate), "{rate}");
    }

    /// Raw risks as a busy day's: most near 0, a thin tail toward 1 (`u⁶`), from a fixed
    /// linear congruential sequence.
    fn skewed_draws(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || uniform(&mut state).powi(6)
    }

    /// The budget divides every event of the day, not only those the per-actor caps let into
    /// the histogram: ten busy accounts (a pharmacy's, an emergency department's) with three
    /// quarters of the traffic, past their caps, alert as often as anyone. Counting only the
    /// sampled events, the threshold let about 0.44% of the day alert, twice the budget.
    #[test]
    fn the_daily_budget_counts_the_events_the_calibration_did_not_sample() {
        let settings = CalibrationSettings {
            target_fpr: 0.005,
            warmup_seconds: 0,
            calibration_seconds: DAY,
            daily_alert_budget: 75.0,
        };
        let mut draw = skewed_draws(11);
        let mut c = Calibrator::new(settings);
        let per_day = 40_000i64;
        let actor = |i: i64| {
            if i % 4 == 0 {
                i as u64
            } else {
                1_000_000 + (i % 10) as u64
            }
        };
        let share_alerting = |c: &Calibrator, draw: &mut dyn FnMut() -> f64| {
            let n = 100_000;
            (0..n)
                .filter(|_| c.score(draw()) >= CALIBRATED_ANCHOR)
                .count() as f64
                / n as f64
        };
        for i in 0..=per_day {
            c.observe(i * DAY / per_day, actor(i), draw());
        }
        assert_eq!(c.phase(), Phase::Calibrated);
        // 75 of 40,000 a day: 0.19% (of the 17,000 sampled it would be 0.44%).
        let calibrated = share_alerting(&c, &mut draw);
        assert!((0.0012..=0.003).contains(&calibrated), "{calibrated}");
        // A day later, following the traffic, it still holds.
        for i in 0..=per_day {
            c.observe(DAY + i * DAY / per_day, actor(i), draw());
        }
        c.observe(2 * DAY + 1, 1, draw());
        let followed = share_alerting(&c, &mut draw);
        assert!((0.0012..=0.003).contains(&followed), "{followed}");
    }

    /// An insider busy during the calibration days (hundreds of high-risk events, under the
    /// hourly cap) moves the threshold no further than any one actor may.
    #[test]
    fn one_actors_incident_in_the_calibration_does_not_set_the_threshold() {
        let settings = CalibrationSettings {
            target_fpr: 0.005,
            warmup_seconds: 0,
            calibration_seconds: DAY,
            daily_alert_budget: 0.0,
        };
        let calibrate = |insider: bool| {
            let mut c = Calibrator::new(settings);
            let mut state = 3u64;
            for i in 0..=30_000i64 {
                let u = uniform(&mut state);
                let t = i * DAY / 30_000;
                c.observe(t, 1 + i as u64 % 300, u.powi(20));
                // 20 an hour, all day: 480 events at raw 0.99.
                if insider && i % 62 == 0 {
                    c.observe(t, 9_999, 0.99);
                }
            }
            c.raw_threshold()
        };
        let clean = calibrate(false);
        let with_insider = calibrate(true);
        assert!(with_insider < 0.95, "{with_insider}");
        assert!(
            (with_insider - clean).abs() < 0.05,
            "{clean} {with_insider}"
        );
    }

    /// A small hospital (3,000 events a day) with three insiders at work in its calibration
    /// day, 40 events at 0.99 each: under the per-actor tail cap alone they would be the whole
    /// tail (15 events) and the threshold above their scores; a few of each count.
    #[test]
    fn insiders_in_a_small_hospitals_calibration_do_not_make_its_tail() {
        let settings = CalibrationSettings {
            target_fpr: 0.005,
            warmup_seconds: DAY,
            calibration_seconds: DAY,
            daily_alert_budget: 0.0,
        };
        let calibrate = |insiders: u64| {
            let mut c = Calibrator::new(settings);
            let mut state = 5u64;
            for i in 0..=6_000i64 {
                let u = uniform(&mut state);
                let t = i * 2 * DAY / 6_000;
                c.observe(t, 1 + i as u64 % 40, u.powi(20));
                if t >= DAY && i % 25 == 0 {
                    for k in 0..insiders {
                        c.observe(t, 9_000 + k, 0.99);
                    }
                }
            }
            c.raw_threshold()
        };
        let clean = calibrate(0);
        let with_insiders = calibrate(3);
        assert!(clean < 0.93, "{clean}");
        // Their scores stay above the threshold (they alert).
        assert!(with_insiders < 0.97, "{clean} {with_insiders}");
    }

    #[test]
    fn noisy_or_in_range_and_monotone() {
        let mut v = Values::default();
        assert_eq!(v.raw(), 0.0);
        v.set(Feature::NoRelationship, 1.0);
        let one = v.raw();
        assert!((one - 0.4).abs() < 1e-12);
        v.set(Feature::OddHour, 1.0);
        assert!(v.raw() > one);
        for f in Feature::ALL {
            v.set(f, 1.0);
        }
        assert!(v.raw() <= 1.0 && v.raw() > 0.999);
        v.set(Feature::Burst, f64::NAN);
        assert_eq!(v.get(Feature::Burst), 0.0);
        assert_eq!(Feature::ALL.len(), FEATURES);
        for (i, f) in Feature::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i);
        }
    }

    /// A benign stream of raw risks (deterministic pseudo-random, heavy tail): the calibrated
    /// threshold lets through the target share within tolerance.
    #[test]
    fn calibration_hits_its_false_positive_rate() {
        let settings = CalibrationSettings {
            target_fpr: 0.005,
            daily_alert_budget: 0.0,
            warmup_seconds: 100,
            calibration_seconds: 90_000,
        };
        let mut c = Calibrator::new(settings);
        let mut state = 12345u64;
        let mut draw = || {
            let u = uniform(&mut state);
            // Mostly near 0, a tail toward 1.
            u.powi(6)
        };
        for t in 0..200_000i64 {
            c.observe(t / 2, t as u64, draw());
        }
        assert_eq!(c.phase(), Phase::Calibrated);
        // Fresh benign traffic from the same distribution.
        let n = 100_000;
        let alerts = (0..n)
            .filter(|_| c.score(draw()) >= CALIBRATED_ANCHOR)
            .count();
        let rate = alerts as f64 / n as f64;
        assert!((0.0035..=0.0065).contains(&rate), "{rate}");
        // The score is monotone and anchored.
        let q = c.raw_threshold();
        assert_eq!(c.score(q), CALIBRATED_ANCHOR);
        assert!(c.score(q * 0.99) < CALIBRATED_ANCHOR);
        assert_eq!(c.score(1.0), 1.0);
    }

    #[test]
    fn before_calibration_the_prior_holds() {
        let c = Calibrator::new(CalibrationSettings::default());
        assert_eq!(c.phase(), Phase::Warmup);
        assert_eq!(c.score(PRIOR_RAW_THRESHOLD), CALIBRATED_ANCHOR);
        assert_eq!(c.score(0.4), 0.4);
    }
}
