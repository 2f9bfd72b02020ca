//! The `anomaly` group's handler on records' signed `<prefix>:relationships` stream: each
//! `care` message (every care fact read from one source resource, as of a version) replaces
//! the stored facts of that resource (`relationships` table, unless a newer version is stored)
//! and teaches them to the detector ([`crate::model::Detector::learn_relationship`]); each
//! `labels` message (a patient's `meta.security` labels, as of a version of her Patient
//! resource) replaces her stored labels (`patient_labels`, unless a newer version is stored)
//! and teaches them ([`crate::model::Detector::learn_patient_labels`]); restarts teach both
//! again from the tables. `membership` messages are consent's business: skipped.
//!
//! A read's messages are stored in one transaction ([`BatchHandler`]): records publishes a
//! care or labels message for most resources it writes, and one commit per message held a bulk
//! load's pipeline back (3,500 messages/s, behind the access stream). If the batch's
//! transaction fails, each message is handled alone, so one that cannot be stored does not hold
//! back (or dead-letter) the others.
//!
//! Care facts name actors by FHIR reference (`Practitioner/..`, `Organization/..`), access
//! events by user id (token `sub`): a fact explains an access only once the two meet (see the
//! README's anomaly section: access events do not carry the user's `Practitioner` reference
//! yet). Facts are taught as the reference they name.

use chrono::{DateTime, Utc};
use custodian_database::Pool;
use custodian_events::{
    consumer::{BatchHandler, Handler, HandlerError},
    CareChange, PatientLabels, RelationshipEvent,
};
use diesel_async::AsyncConnection;

use crate::{
    consumer::{lock, SharedDetector},
    domain::{
        labels,
        relationships::{self, teach, via_text, NewRelationship, ORIGIN_CARE},
    },
    metrics::AnomalyMetrics,
    model::CareVia,
};

/// The consumer group anomaly reads the relationships stream in.
pub const RELATIONSHIPS_GROUP: &str = "anomaly";

pub struct CareFacts {
    pub pool: Pool,
    pub detector: SharedDetector,
    pub metrics: AnomalyMetrics,
}

/// How the fact's actor takes part, from the source resource's type and the actor's.
pub fn via(source: &str, actor: &str) -> CareVia {
    let source_type = source.split('/').next().unwrap_or_default();
    let actor_type = actor.split('/').next().unwrap_or_default();
    match source_type {
        "Encounter" if actor_type == "Organization" => CareVia::EncounterServiceProvider,
        "Encounter" => CareVia::EncounterParticipant,
        "CareTeam" => CareVia::CareTeam,
        "Patient" => CareVia::GeneralPractitioner,
        _ => CareVia::EpisodeOfCare,
    }
}

/// The rows of one care message.
pub fn rows(change: &CareChange) -> Vec<NewRelationship> {
    change
        .facts
        .iter()
        .filter(|f| !f.patient.is_empty() && !f.actor.is_empty())
        .map(|f| NewRelationship {
            origin: ORIGIN_CARE.into(),
            actor_kind: "user".into(),
            actor: f.actor.clone(),
            organization: None,
            patient_ref: f.patient.clone(),
            via: via_text(via(&change.source, &f.actor)).into(),
            source: change.source.clone(),
            source_version: change.version,
            start_time: f.start.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            end_time: f.end,
        })
        .collect()
}

impl Handler for CareFacts {
    async fn handle(&self, payload: &str) -> Result<(), HandlerError> {
        let event: RelationshipEvent = serde_json::from_str(payload)
            .map_err(|e| HandlerError::Reject(format!("not a relationship event: {e}")))?;
        let change = match event {
            RelationshipEvent::Care(change) => change,
            RelationshipEvent::Labels(patient) => return self.labels(patient).await,
            RelationshipEvent::Membership(_) => return Ok(()),
        };
        let rows = rows(&change);
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| HandlerError::Retry(e.to_string()))?;
        let source = change.source.clone();
        let version = change.version;
        let stored_rows = rows.clone();
        let stored = conn
            .transaction::<_, diesel::result::Error, _>(async move |conn| {
                relationships::replace_care(conn, &source, version, &stored_rows).await
            })
            .await
            .map_err(|e| HandlerError::Retry(e.to_string()))?;
        if stored {
            let mut detector = lock(&self.detector);
            for row in &rows {
                teach(&mut detector, &row.fact());
            }
            self.metrics.care_facts.inc_by(rows.len() as u64);
        }
        Ok(())
    }
}

/// What a message asks of the store, parsed.
enum Change {
    Care(CareChange, Vec<NewRelationship>),
    Labels(PatientLabels),
    Skip,
}

fn parse(payload: &str) -> Result<Change, HandlerError> {
    let event: RelationshipEvent = serde_json::from_str(payload)
        .map_err(|e| HandlerError::Reject(format!("not a relationship event: {e}")))?;
    Ok(match event {
        RelationshipEvent::Care(change) => {
            let rows = rows(&change);
            Change::Care(change, rows)
        }
        RelationshipEvent::Labels(patient) if patient.patient.is_empty() => {
            return Err(HandlerError::Reject("labels without a patient".into()))
        }
        RelationshipEvent::Labels(patient) => Change::Labels(patient),
        RelationshipEvent::Membership(_) => Change::Skip,
    })
}

impl BatchHandler for CareFacts {
    async fn handle_batch(&self, payloads: &[String]) -> Vec<Result<(), HandlerError>> {
        let parsed: Vec<Result<Change, HandlerError>> = payloads.iter().map(|p| parse(p)).collect();
        let changes: Vec<&Change> = parsed.iter().filter_map(|p| p.as_ref().ok()).collect();
        let stored = match self.pool.get().await {
            Ok(mut conn) => {
                conn.transaction::<_, diesel::result::Error, _>(async |conn| {
                    let mut stored = Vec::with_capacity(changes.len());
                    for change in &changes {
                        stored.push(match change {
                            Change::Care(change, rows) => {
                                relationships::replace_care(
                                    conn,
                                    &change.source,
                                    change.version,
                                    rows,
                                )
                                .await?
                            }
                            Change::Labels(p) => {
                                labels::replace(conn, &p.patient, p.version, &p.labels).await?
                            }
                            Change::Skip => false,
                        });
                    }
                    Ok(stored)
                })
                .await
            }
            Err(e) => {
                let error = e.to_string();
                return parsed
                    .into_iter()
                    .map(|p| p.and(Err(HandlerError::Retry(error.clone()))))
                    .collect();
            }
        };
        let Ok(stored) = stored else {
            let mut outcomes = Vec::with_capacity(payloads.len());
            for payload in payloads {
                outcomes.push(self.handle(payload).await);
            }
            return outcomes;
        };
        let mut detector = lock(&self.detector);
        let mut facts = 0;
        for (change, stored) in changes.iter().zip(stored) {
            match change {
                Change::Care(_, rows) if stored => {
                    for row in rows {
                        teach(&mut detector, &row.fact());
                    }
                    facts += rows.len();
                }
                Change::Labels(p) if stored => {
                    detector.learn_patient_labels(&p.patient, &p.labels);
                }
                _ => {}
            }
        }
        drop(detector);
        self.metrics.care_facts.inc_by(facts as u64);
        parsed.into_iter().map(|p| p.map(|_| ())).collect()
    }
}

impl CareFacts {
    /// Stores a patient's labels (unless newer ones are) and teaches them.
    async fn labels(&self, patient: PatientLabels) -> Result<(), HandlerError> {
        if patient.patient.is_empty() {
            return Err(HandlerError::Reject("labels without a patient".into()));
        }
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| HandlerError::Retry(e.to_string()))?;
        let stored = labels::replace(
            &mut conn,
            &patient.patient,
            patient.version,
            &patient.labels,
        )
        .await
        .map_err(|e| HandlerError::Retry(e.to_string()))?;
        if stored {
            lock(&self.detector).learn_patient_labels(&patient.patient, &patient.labels);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custodian_events::CareFact;

    #[test]
    fn facts_become_rows_with_their_via() {
        let change = CareChange {
            source: "Encounter/e1".into(),
            version: 3,
            facts: vec![
                CareFact {
                    patient: "Patient/a".into(),
                    actor: "Practitioner/p1".into(),
                    via: "Encounter/e1".into(),
                    start: None,
                    end: None,
                },
                CareFact {
                    patient: "Patient/a".into(),
                    actor: "Organization/cardio".into(),
                    via: "Encounter/e1".into(),
                    start: None,
                    end: None,
                },
                CareFact {
                    patient: String::new(),
                    actor: "Practitioner/p1".into(),
                    via: "Encounter/e1".into(),
                    start: None,
                    end: None,
                },
            ],
        };
        let rows = rows(&change);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].via, "encounter-participant");
        assert_eq!(rows[1].via, "encounter-service-provider");
        assert_eq!(rows[0].source_version, 3);
        assert_eq!(via("CareTeam/c", "Practitioner/p"), CareVia::CareTeam);
        assert_eq!(
            via("Patient/a", "Practitioner/p"),
            CareVia::GeneralPractitioner
        );
        assert_eq!(
            via("EpisodeOfCare/x", "Practitioner/p"),
            CareVia::EpisodeOfCare
        );
    }
}
