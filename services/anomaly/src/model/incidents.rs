//! Incidents: alerts grouped per actor and time window. An alert opens an incident for its
//! actor (or extends the open one); the incident stays open [`INCIDENT_GAP`] after its last
//! alert on its own merits. While it is open, the actor's further events that are themselves
//! suspicious (raw risk at least [`CARRY`] of the raw threshold) alert as part of it (without
//! extending it): an insider's session
//! rarely has every access stand out on its own, but once one did, the similar ones around it
//! belong to the same incident.

/// An incident closes this long (event time) after its last alert.
pub const INCIDENT_GAP: i64 = 30 * 60;
/// Share of the raw threshold an event needs to join an open incident.
pub const CARRY: f64 = 0.6;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Incident {
    /// Deterministic: the detector's running count of incidents.
    pub id: u64,
    pub start: i64,
    pub last_alert: i64,
    pub alerts: u32,
    pub peak: f64,
}

impl Incident {
    pub fn open_at(&self, t: i64) -> bool {
        t - self.last_alert <= INCIDENT_GAP && t >= self.start - INCIDENT_GAP
    }
}

/// An actor's incident slot.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Incidents {
    current: Option<Incident>,
}

impl Incidents {
    /// The incident open at `t`, if any.
    pub fn open(&self, t: i64) -> Option<Incident> {
        self.current.filter(|i| i.open_at(t))
    }

    /// Records an alert at `t`: extends the open incident or opens a new one with `next_id`.
    /// Returns the incident's id and whether it is new.
    pub fn alert(&mut self, t: i64, score: f64, next_id: u64) -> (u64, bool) {
        match &mut self.current {
            Some(i) if i.open_at(t) => {
                i.last_alert = i.last_alert.max(t);
                i.start = i.start.min(t);
                i.alerts = i.alerts.saturating_add(1);
                i.peak = i.peak.max(score);
                (i.id, false)
            }
            _ => {
                self.current = Some(Incident {
                    id: next_id,
                    start: t,
                    last_alert: t,
                    alerts: 1,
                    peak: score,
                });
                (next_id, true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_close_in_time_are_one_incident() {
        let mut i = Incidents::default();
        assert_eq!(i.alert(0, 0.9, 1), (1, true));
        assert_eq!(i.alert(600, 0.95, 2), (1, false));
        assert!(i.open(600 + INCIDENT_GAP).is_some());
        assert!(i.open(601 + INCIDENT_GAP).is_none());
        assert_eq!(i.alert(700 + INCIDENT_GAP, 0.9, 2), (2, true));
        assert_eq!(i.open(700 + INCIDENT_GAP).map(|i| i.alerts), Some(1));
    }
}
