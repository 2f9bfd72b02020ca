//! The `anomaly` group's handler on records' signed `<prefix>:relationships` stream: each
//! `care` message (every care fact read from one source resource, as of a version) replaces
//! the stored facts of that resource (`relationships` table, unless a newer version is stored)
//! and teaches them to the detector ([`crate::model::Detector::learn_relationship`]); each
//! `labels` message (a patient's `meta.security` labels, as of a version of her Patient
//! resource) replaces her stored labels (`patient_labels`, unless a newer version is stored)
//! and teaches them ([`crate::model::Detector::learn_patient_labels`]); restarts teach both
//! again from the tables. `membership` messages are consent's business: skipped.
//!
//! Care facts name actors by FHIR reference (`Practitioner/..`, `Organization/..`), access
//! events by user id (token `sub`): a fact explains an access only once the two meet (see the
//! README's anomaly section: access events do not carry the user's `Practitioner` reference
//! yet). Facts are taught as the reference they name.

use chrono::{DateTime, Utc};
use custodian_database::Pool;
use custodian_events::{
    consumer::{Handler, HandlerError},
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
