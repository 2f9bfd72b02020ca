//! Feature values, their mapping to `[0, 1]` and the noisy-OR combination (see the module doc of
//! [`crate::model`] for the table).

use super::EventFlags;

/// The rate baseline never counts as lower than this many events per minute, so a new or
/// usually quiet actor is not flagged for a dozen clicks.
pub const BASELINE_FLOOR: f64 = 6.0;

/// A patient only seen in a search result counts as 1/SEARCH_WEIGHT of one read: a search casts
/// a wide net (a ward list returns dozens of patients at once), reading opens records one by one.
pub const SEARCH_WEIGHT: f64 = 3.0;

pub const W_PATIENTS: f64 = 0.95;
pub const W_RATE: f64 = 0.60;
pub const W_DENIED: f64 = 0.70;
pub const W_BREAK_GLASS: f64 = 0.40;
pub const W_RESTRICTED: f64 = 0.40;
pub const W_OFF_HOURS: f64 = 0.10;
pub const W_EXPORT: f64 = 0.35;

/// What the detector knows about an actor when it scores one of its events.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Features {
    /// Distinct patients read (or whose reading was attempted) in the window (5 min).
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
    pub flags: EventFlags,
}

fn clamp01(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

impl Features {
    pub fn patients(&self) -> f64 {
        let weighted =
            self.distinct_patients as f64 + self.searched_patients as f64 / SEARCH_WEIGHT;
        clamp01((weighted - 5.0) / 10.0)
    }

    pub fn effective_baseline(&self) -> f64 {
        self.baseline.unwrap_or(0.0).max(BASELINE_FLOOR)
    }

    pub fn rate(&self) -> f64 {
        let ratio = self.recent_events as f64 / self.effective_baseline();
        clamp01((ratio - 3.0) / 7.0)
    }

    pub fn denied_share(&self) -> f64 {
        if self.patient_events == 0 {
            return 0.0;
        }
        let denied = f64::from(self.denied);
        clamp01(denied / f64::from(self.patient_events) * (denied / 5.0).min(1.0))
    }

    /// `(weight × value, reason)` of every feature.
    fn contributions(&self) -> [(f64, String); 7] {
        let flags = self.flags;
        [
            (
                W_PATIENTS * self.patients(),
                if self.searched_patients == 0 {
                    format!("{} distinct patients in 5 minutes", self.distinct_patients)
                } else {
                    format!(
                        "{} distinct patients in 5 minutes (and {} more in search results)",
                        self.distinct_patients, self.searched_patients
                    )
                },
            ),
            (
                W_RATE * self.rate(),
                format!(
                    "{} events in the last minute against a baseline of {:.1} per minute",
                    self.recent_events,
                    self.effective_baseline()
                ),
            ),
            (
                W_DENIED * self.denied_share(),
                format!(
                    "{} of {} patient accesses in 5 minutes denied",
                    self.denied, self.patient_events
                ),
            ),
            (
                W_BREAK_GLASS * f64::from(u8::from(flags.break_glass)),
                "break-glass access".to_string(),
            ),
            (
                W_RESTRICTED * clamp01(flags.restricted),
                if flags.restricted >= 1.0 {
                    "very restricted (V) record"
                } else {
                    "restricted (R) record"
                }
                .to_string(),
            ),
            (
                W_OFF_HOURS * f64::from(u8::from(flags.off_hours)),
                "off-hours access (22:00-06:00 UTC)".to_string(),
            ),
            (
                W_EXPORT * f64::from(u8::from(flags.export)),
                "export".to_string(),
            ),
        ]
    }

    /// `1 - Π (1 - w_i f_i)`, rounded to 4 decimals.
    pub fn score(&self) -> f64 {
        let keep: f64 = self.contributions().iter().map(|(c, _)| 1.0 - c).product();
        let score = clamp01(1.0 - keep);
        (score * 10_000.0).round() / 10_000.0
    }

    /// The features that added to the score, strongest first.
    pub fn reasons(&self) -> Vec<String> {
        let mut contributions: Vec<(f64, String)> = self
            .contributions()
            .into_iter()
            .filter(|(c, _)| *c > 0.0)
            .collect();
        // Stable sort: ties keep the table's order, so reasons are deterministic.
        contributions.sort_by(|a, b| b.0.total_cmp(&a.0));
        contributions
            .into_iter()
            .map(|(_, reason)| reason)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings() {
        let f = |d| {
            Features {
                distinct_patients: d,
                ..Features::default()
            }
            .patients()
        };
        assert_eq!(f(0), 0.0);
        assert_eq!(f(5), 0.0);
        assert!((f(10) - 0.5).abs() < 1e-12);
        assert_eq!(f(15), 1.0);
        assert_eq!(f(400), 1.0);
        let s = |read, searched| {
            Features {
                distinct_patients: read,
                searched_patients: searched,
                ..Features::default()
            }
            .patients()
        };
        assert_eq!(s(0, 15), 0.0);
        assert!((s(0, 30) - 0.5).abs() < 1e-12);
        assert_eq!(s(10, 15), 1.0);

        let r = |n, b| {
            Features {
                recent_events: n,
                baseline: b,
                ..Features::default()
            }
            .rate()
        };
        assert_eq!(r(18, None), 0.0);
        assert_eq!(r(60, None), 1.0);
        assert_eq!(r(60, Some(20.0)), 0.0);
        assert_eq!(r(200, Some(20.0)), 1.0);

        let d = |n, m| {
            Features {
                denied: n,
                patient_events: m,
                ..Features::default()
            }
            .denied_share()
        };
        assert_eq!(d(0, 0), 0.0);
        assert!((d(1, 1) - 0.2).abs() < 1e-12);
        assert_eq!(d(10, 10), 1.0);
        assert!((d(5, 20) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn score_is_a_noisy_or_in_range() {
        assert_eq!(Features::default().score(), 0.0);
        let all = Features {
            distinct_patients: 50,
            searched_patients: 0,
            recent_events: 1000,
            baseline: None,
            patient_events: 50,
            denied: 50,
            flags: EventFlags {
                break_glass: true,
                restricted: 1.0,
                off_hours: true,
                export: true,
            },
        };
        let s = all.score();
        assert!(s <= 1.0 && s > 0.998, "{s}");
        let expected = 1.0
            - (1.0 - W_PATIENTS)
                * (1.0 - W_RATE)
                * (1.0 - W_DENIED)
                * (1.0 - W_BREAK_GLASS)
                * (1.0 - W_RESTRICTED)
                * (1.0 - W_OFF_HOURS)
                * (1.0 - W_EXPORT);
        assert!((s - (expected * 10_000.0).round() / 10_000.0).abs() < 1e-12);
        assert_eq!(all.reasons().len(), 7);
        assert!(all.reasons()[0].contains("distinct patients"));
    }
}
