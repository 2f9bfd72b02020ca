//! The live path: the `anomaly` group's handler for the access stream, a batch (one stream
//! read, up to 200 messages) at a time. Malformed messages are dead-lettered; events already
//! scored are skipped (idempotent by event id); the others are scored in stream order with the
//! shared [`Detector`], then one transaction stores the scores and, for each alert, the alert
//! row and its [`custodian_events::Alert`] in the outbox (identity consumes it and suspends the
//! user). At most one alert per actor per 10 minutes of event time. Each alert records its kind,
//! its incident (the actor's alerts within the model's incident gap share one), the model's
//! explanation and contributions, and asks for a suspension only at or above
//! `ANOMALY_SUSPEND_CONFIDENCE`; with a webhook configured, its `DetectedIssue` is queued for
//! delivery in the same transaction. The relay and the webhook worker are woken after the
//! commit. If the transaction fails, the whole batch stays pending and is retried.
//!
//! An alert that rests only on a missing explanation waits for the model's grace period
//! (`ANOMALY_GRACE_SECONDS`, event time) for the actor to document for the patient; if nothing
//! comes, the detector hands it over later ([`Detector::take_matured`], while scoring a later
//! batch) and it is raised then, in that batch's transaction.
//!
//! Every `ANOMALY_SNAPSHOT_SECONDS` (300) the detector's whole state is saved in the
//! transaction that stores a batch ([`crate::domain::snapshots`]), so it holds exactly the
//! events stored up to then; a restart loads it and observes only the scores stored after it
//! ([`rebuild`]): calibration, baselines, relationships and waiting alerts survive a restart.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, MutexGuard},
};

use chrono::Utc;
use custodian_database::Pool;
use custodian_events::{
    consumer::{BatchHandler, HandlerError},
    outbox::{self, Relay},
    AccessEvent, AccessOutcome, Alert,
};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    domain::{
        alert_events,
        alerts::{self, AlertRecord, AlertStatus},
        detected_issue,
        kind::AlertKind,
        scored::{self, NewScoredEvent},
        snapshots::{self, NewSnapshot},
    },
    metrics::AnomalyMetrics,
    model::{snapshot, Detector, Matured, Scored},
    webhook::{self, WebhookWaker},
};

/// The detector shared by the consumer (and rebuilt at start).
pub type SharedDetector = Arc<Mutex<Detector>>;

/// Locks the detector; a panic while scoring leaves valid (if partial) state, so poisoning is
/// ignored rather than wedging the consumer.
pub fn lock(detector: &SharedDetector) -> MutexGuard<'_, Detector> {
    detector
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Clone)]
pub struct AccessScorer {
    pub pool: Pool,
    pub detector: SharedDetector,
    /// `<prefix>:alerts`.
    pub alerts_stream: String,
    /// `ANOMALY_SUSPEND`.
    pub suspend: bool,
    /// `ANOMALY_SUSPEND_CONFIDENCE`: alerts below it do not ask for a suspension.
    pub suspend_confidence: f64,
    pub relay: Relay,
    pub metrics: AnomalyMetrics,
    /// Wakes the webhook worker; deliveries are queued only when one is configured.
    pub webhook: WebhookWaker,
    /// When the detector's state is saved next.
    pub snapshots: SnapshotSchedule,
}

/// How often the detector's state is saved (`ANOMALY_SNAPSHOT_SECONDS`; none when 0), and
/// when it last was (shared by the clones of the scorer).
#[derive(Clone)]
pub struct SnapshotSchedule {
    every: Option<std::time::Duration>,
    last: Arc<Mutex<std::time::Instant>>,
}

impl SnapshotSchedule {
    pub fn every(every: Option<std::time::Duration>) -> Self {
        Self {
            every,
            last: Arc::new(Mutex::new(std::time::Instant::now())),
        }
    }

    fn due(&self) -> bool {
        let last = *self.last.lock().unwrap_or_else(|p| p.into_inner());
        self.every.is_some_and(|every| last.elapsed() >= every)
    }

    fn done(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = std::time::Instant::now();
    }
}

/// A state to save with the batch it follows.
struct State {
    bytes: Vec<u8>,
    events: i64,
    newest: Option<chrono::DateTime<Utc>>,
}

/// Encodes a copy of the detector off the async threads (a large hospital's state is hundreds
/// of megabytes); `None`, logged, when it cannot be encoded.
async fn encode(copy: Detector) -> Option<State> {
    let encoded = tokio::task::spawn_blocking(move || {
        copy.encode_snapshot().map(|bytes| State {
            bytes,
            events: i64::try_from(copy.observed()).unwrap_or(i64::MAX),
            newest: copy.newest(),
        })
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|encoded| encoded.map_err(|e| e.to_string()));
    encoded
        .inspect_err(|error| tracing::warn!(%error, "detector state not saved"))
        .ok()
}

/// What storing one batch came to.
#[derive(Debug, Default)]
struct Stored {
    /// Scores stored (events not stored before, by anyone).
    scored: Vec<f64>,
    /// Events another consumer stored first.
    raced: u64,
    /// Alerts raised: (event id, user id, score, kind, whether it asked for a suspension).
    alerts: Vec<(Uuid, String, f64, AlertKind, bool)>,
    /// Over the threshold, but the actor had an alert within the cooldown.
    suppressed: u64,
}

impl AccessScorer {
    /// Scores and stores the events of one read (in stream order); an error means the whole
    /// batch is retried.
    async fn process(&self, events: &[AccessEvent]) -> Result<(), String> {
        let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
        let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
        let known = scored::existing(&mut conn, &ids)
            .await
            .map_err(|e| e.to_string())?;
        let mut seen = HashSet::new();
        let mut fresh = Vec::with_capacity(events.len());
        let mut duplicates = 0u64;
        let matured;
        let copy;
        {
            // The detector ignores ids already in its window, so a batch retried after a
            // failed store does not count its events twice.
            let mut detector = lock(&self.detector);
            for event in events {
                if known.contains(&event.id) || !seen.insert(event.id) {
                    duplicates += 1;
                    continue;
                }
                let started = std::time::Instant::now();
                let scored = detector.score(event);
                self.metrics
                    .score_duration
                    .observe(started.elapsed().as_secs_f64());
                fresh.push((event, scored));
            }
            matured = detector.take_matured();
            self.metrics
                .alerts_waiting
                .set(i64::try_from(detector.waiting()).unwrap_or(i64::MAX));
            // A copy of the state right after this batch, saved with it (cloning under the
            // lock is quick; encoding is not).
            copy = (!fresh.is_empty() && self.snapshots.due()).then(|| detector.clone());
        }
        let state = match copy {
            Some(copy) => {
                self.snapshots.done();
                encode(copy).await
            }
            None => None,
        };
        let stored = if fresh.is_empty() && matured.is_empty() {
            Stored::default()
        } else {
            match self
                .store(&mut conn, &fresh, &matured, state.as_ref())
                .await
            {
                Ok(stored) => stored,
                Err(e) => {
                    // The batch is retried, but its events are already in the detector's
                    // window (a retry does not score them again): keep the late alerts for
                    // the next store.
                    lock(&self.detector).restore_matured(matured);
                    return Err(e.to_string());
                }
            }
        };
        self.metrics
            .events_duplicate
            .inc_by(duplicates + stored.raced);
        self.metrics
            .events_scored
            .inc_by(stored.scored.len() as u64);
        for score in &stored.scored {
            self.metrics.score.observe(*score);
        }
        self.metrics.alerts_suppressed.inc_by(stored.suppressed);
        if let Some(state) = &state {
            self.metrics
                .snapshot_bytes
                .set(i64::try_from(state.bytes.len()).unwrap_or(i64::MAX));
            self.metrics.snapshot_time.set(Utc::now().timestamp());
        }
        if !stored.alerts.is_empty() {
            self.relay.wake();
            self.webhook.wake();
        }
        for (event_id, user_id, score, kind, suspend) in &stored.alerts {
            self.metrics.alert(*kind);
            if *suspend {
                self.metrics.suspensions.inc();
            }
            let kind = kind.code();
            tracing::warn!(%event_id, %user_id, score, kind, suspend, "anomaly alert raised");
        }
        Ok(())
    }

    /// One transaction: the scores, and for each alert not within an actor's cooldown (the
    /// fresh events' and those that waited out their grace period) the alert row and its
    /// outbox entry; and the detector's state when one is due.
    async fn store(
        &self,
        conn: &mut AsyncPgConnection,
        fresh: &[(&AccessEvent, Scored)],
        matured: &[Matured],
        state: Option<&State>,
    ) -> Result<Stored, diesel::result::Error> {
        let alerts_stream = self.alerts_stream.as_str();
        let suspend = self.suspend;
        let suspend_confidence = self.suspend_confidence;
        let webhook = self.webhook.enabled();
        conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
            let rows: Vec<NewScoredEvent<'_>> = fresh
                .iter()
                .map(|(event, scored)| NewScoredEvent {
                    event_id: event.id,
                    actor_id: &event.actor.id,
                    patient_ref: event.patient.as_deref(),
                    time: event.time,
                    action: event.action.as_str(),
                    outcome: event.outcome.as_str(),
                    score: scored.score,
                })
                .collect();
            let inserted: HashSet<Uuid> = scored::insert_many(conn, &rows)
                .await?
                .into_iter()
                .collect();
            let mut stored = Stored::default();
            let mut candidates: Vec<(&AccessEvent, &Scored)> = Vec::with_capacity(fresh.len());
            for (event, scored) in fresh {
                if !inserted.contains(&event.id) {
                    stored.raced += 1;
                    continue;
                }
                stored.scored.push(scored.score);
                candidates.push((event, scored));
            }
            for m in matured {
                scored::raise_score(conn, m.event.id, m.scored.score).await?;
                // Restored from a snapshot taken before it was raised the first time.
                if !alerts::exists_for_event(conn, m.event.id).await? {
                    candidates.push((&m.event, &m.scored));
                }
            }
            if let Some(state) = state {
                let snapshot = NewSnapshot {
                    name: snapshots::ACCESS_SCORER,
                    format: i32::try_from(snapshot::FORMAT).unwrap_or(i32::MAX),
                    state: &state.bytes,
                    events: state.events,
                    newest: state.newest,
                };
                snapshots::save(conn, &snapshot).await?;
            }
            for (event, scored) in candidates {
                // Every permitted break-glass is alerted on (the access policy's obligation),
                // whatever its score, never suppressed by a cooldown, and never by itself a
                // reason to suspend: the security team reviews it.
                let broke_glass = event.break_glass && event.outcome == AccessOutcome::Permit;
                if !scored.alert && !broke_glass {
                    continue;
                }
                alerts::lock_actor(conn, &event.actor.id).await?;
                // A glass broken with no context scores high on its own; it is still the
                // security team's to review: a permitted break-glass never suspends (the
                // actor's other accesses still can).
                let confident =
                    suspend && scored.alert && scored.score >= suspend_confidence && !broke_glass;
                let in_force = if broke_glass {
                    None
                } else {
                    alerts::latest_for(conn, &event.actor.id, event.time).await?
                };
                if let Some(latest) = in_force {
                    // Within the cooldown, only an escalation is raised: the first alert
                    // confident enough to ask for a suspension when none was asked yet.
                    let escalation = confident
                        && !alerts::recent_suspension_for(conn, &event.actor.id, event.time)
                            .await?;
                    if !escalation {
                        // No alert of its own: its events join the actor's alert in force.
                        let mut events = vec![event.id];
                        events.extend(&scored.joined);
                        alert_events::add(conn, latest, &events).await?;
                        stored.suppressed += 1;
                        continue;
                    }
                }
                let mut reasons = scored.reasons.clone();
                if broke_glass && !scored.alert {
                    reasons.insert(
                        0,
                        "break-glass access (its stated reason is in the ledger)".into(),
                    );
                }
                let kind = AlertKind::of_alert(
                    scored.contributions.iter().map(|c| c.feature),
                    broke_glass && !scored.alert,
                );
                let id = Uuid::now_v7();
                let incident_id = alerts::incident_for(conn, &event.actor.id, event.time)
                    .await?
                    .unwrap_or(id);
                let now = Utc::now();
                let record = AlertRecord {
                    id,
                    event_id: event.id,
                    user_id: event.actor.id.clone(),
                    score: scored.score,
                    reasons: serde_json::json!(reasons),
                    event_time: event.time,
                    created_at: now,
                    // Only a confident alert suspends (never a break-glass review alone).
                    suspended: confident,
                    kind: kind.code().to_string(),
                    incident_id,
                    explanation: if scored.explanation.is_empty() {
                        reasons.join("; ")
                    } else {
                        scored.explanation.clone()
                    },
                    contributions: serde_json::to_value(&scored.contributions)
                        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?,
                    patient_ref: event.patient.clone().filter(|p| !p.is_empty()),
                    status: AlertStatus::Open.as_str().to_string(),
                    updated_at: now,
                };
                alerts::insert(conn, &record).await?;
                alert_events::add(conn, record.id, &scored.joined).await?;
                if webhook {
                    let issue = detected_issue::render(&record, &[], &scored.joined);
                    webhook::enqueue(conn, record.id, &issue).await?;
                }
                let alert = Alert {
                    id: record.id,
                    time: record.created_at,
                    user_id: record.user_id.clone(),
                    event_id: record.event_id,
                    score: record.score,
                    reason: reasons.join("; "),
                    suspend: record.suspended,
                };
                let payload = serde_json::to_value(&alert)
                    .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
                outbox::enqueue(conn, alerts_stream, alert.id, &payload).await?;
                stored.alerts.push((
                    event.id,
                    record.user_id,
                    record.score,
                    kind,
                    record.suspended,
                ));
            }
            Ok(stored)
        })
        .await
    }
}

/// How often the live path looks for late alerts when the stream is quiet.
pub const LATE_ALERT_TICK: std::time::Duration = std::time::Duration::from_secs(1);

impl AccessScorer {
    /// Raises the alerts whose grace period ran out while no event came to move the model's
    /// clock: every [`LATE_ALERT_TICK`], the clock moves to the wall clock, or, when producers'
    /// clocks run ahead of ours, by as long as the stream has been quiet.
    pub async fn raise_late_alerts(self, token: CancellationToken) {
        let mut tick = tokio::time::interval(LATE_ALERT_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen = (u64::MAX, std::time::Instant::now());
        loop {
            tokio::select! {
                () = token.cancelled() => break,
                _ = tick.tick() => {}
            }
            let due = {
                let mut detector = lock(&self.detector);
                let observed = detector.observed();
                if observed != seen.0 {
                    seen = (observed, std::time::Instant::now());
                }
                let quiet = chrono::Duration::from_std(seen.1.elapsed()).unwrap_or_default();
                detector.advance(Utc::now());
                detector.advance_quiet(quiet);
                detector.has_matured()
            };
            if !due {
                continue;
            }
            if let Err(reason) = self.process(&[]).await {
                tracing::warn!(%reason, "late alerts not stored yet; retrying");
            }
        }
    }
}

impl BatchHandler for AccessScorer {
    async fn handle_batch(&self, payloads: &[String]) -> Vec<Result<(), HandlerError>> {
        let mut outcomes = Vec::with_capacity(payloads.len());
        let mut events = Vec::with_capacity(payloads.len());
        let mut positions = Vec::with_capacity(payloads.len());
        for (i, payload) in payloads.iter().enumerate() {
            match AccessEvent::parse(payload) {
                Ok(event) => {
                    outcomes.push(Ok(()));
                    events.push(event);
                    positions.push(i);
                }
                Err(e) => outcomes.push(Err(HandlerError::Reject(e.to_string()))),
            }
        }
        if events.is_empty() {
            return outcomes;
        }
        if let Err(reason) = self.process(&events).await {
            for i in positions {
                outcomes[i] = Err(HandlerError::Retry(reason.clone()));
            }
        }
        outcomes
    }
}

/// Where a restart took the detector's state from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuilt {
    /// The saved state, then the events stored after it.
    Snapshot { events_after: usize },
    /// No usable saved state: windows and actor-patient relationships from the events scored
    /// in the last day; the rest is relearned.
    Recent { events: usize },
}

/// Restores the detector at start: from its saved state when there is one this version reads
/// (then the scores stored after it are observed), otherwise from the events scored in the last
/// day (of event time, before the newest; [`scored::REBUILD_SPAN`]), so a restart does not
/// forget a burst in progress nor who already cares for whom; baselines, department facts and
/// the calibration are then relearned from the live stream.
pub async fn rebuild(
    conn: &mut AsyncPgConnection,
    detector: &SharedDetector,
) -> Result<Rebuilt, diesel::result::Error> {
    if let Some(saved) = snapshots::load(conn, snapshots::ACCESS_SCORER).await? {
        let (threshold, config) = {
            let d = lock(detector);
            (d.threshold(), *d.config())
        };
        let decoded = tokio::task::spawn_blocking(move || {
            Detector::decode_snapshot(&saved.state, threshold, config).map(|d| (d, saved.taken_at))
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|decoded| decoded.map_err(|e| e.to_string()));
        match decoded {
            Ok((restored, taken_at)) => {
                let rows = scored::stored_after(conn, taken_at).await?;
                let events_after = rows.len();
                let mut detector = lock(detector);
                *detector = restored;
                for row in rows {
                    detector.observe(&row.observation());
                }
                return Ok(Rebuilt::Snapshot { events_after });
            }
            Err(error) => tracing::warn!(%error, "saved detector state not used; relearning"),
        }
    }
    let rows = scored::recent(conn).await?;
    let events = rows.len();
    let mut detector = lock(detector);
    for row in rows {
        detector.observe(&row.observation());
    }
    Ok(Rebuilt::Recent { events })
}
