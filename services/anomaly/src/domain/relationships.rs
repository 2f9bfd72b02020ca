//! `relationships`: legitimate relationships the detector is taught, kept so that a restart
//! teaches them again ([`replay`]). Two origins:
//!
//! - `dismissal`: security staff dismissed an alert, so its actor and patient have a
//!   legitimate relationship from the alert's event time on (and the kinds of data of her
//!   misuse runs that alerted then are her work: [`CareVia::Dismissal`]).
//! - `care`: a care fact records published on `<prefix>:relationships` (Encounter
//!   participants and service provider, CareTeam members, `Patient.generalPractitioner`,
//!   EpisodeOfCare). A newer version of the source resource replaces its facts.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    consumer::{lock, SharedDetector},
    model::{CareActor, CareFact, CareVia, Detector},
    schema::relationships,
};

pub const ORIGIN_DISMISSAL: &str = "dismissal";
pub const ORIGIN_CARE: &str = "care";
/// The `via` of a relationship learned from a dismissal.
pub const VIA_DISMISSAL: &str = "dismissal";

#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = relationships)]
pub struct NewRelationship {
    pub origin: String,
    /// `user` or `department`.
    pub actor_kind: String,
    /// A user id (token `sub`), a FHIR reference from a care fact, or a department name.
    pub actor: String,
    pub organization: Option<String>,
    pub patient_ref: String,
    /// `dismissal`, or a [`CareVia`] spelling (`encounter-participant` ...).
    pub via: String,
    /// The dismissed alert's id or the care fact's source resource.
    pub source: String,
    pub source_version: i64,
    pub start_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = relationships)]
pub struct RelationshipRow {
    pub origin: String,
    pub actor_kind: String,
    pub actor: String,
    pub organization: Option<String>,
    pub patient_ref: String,
    pub via: String,
    pub start_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
}

impl NewRelationship {
    /// The relationship a dismissal of `alert_id` teaches: `user` and `patient` from the alert's
    /// event time on.
    pub fn dismissal(alert_id: Uuid, user: &str, patient: &str, from: DateTime<Utc>) -> Self {
        Self {
            origin: ORIGIN_DISMISSAL.into(),
            actor_kind: "user".into(),
            actor: user.to_string(),
            organization: None,
            patient_ref: patient.to_string(),
            via: VIA_DISMISSAL.into(),
            source: alert_id.to_string(),
            source_version: 0,
            start_time: from,
            end_time: None,
        }
    }

    /// The detector's view of it.
    pub fn fact(&self) -> CareFact {
        fact(
            &self.actor_kind,
            &self.actor,
            self.organization.as_deref(),
            &self.patient_ref,
            &self.via,
            self.start_time,
            self.end_time,
        )
    }
}

impl RelationshipRow {
    pub fn fact(&self) -> CareFact {
        fact(
            &self.actor_kind,
            &self.actor,
            self.organization.as_deref(),
            &self.patient_ref,
            &self.via,
            self.start_time,
            self.end_time,
        )
    }
}

/// How a [`CareVia`] is stored.
pub fn via_text(via: CareVia) -> &'static str {
    match via {
        CareVia::EncounterParticipant => "encounter-participant",
        CareVia::EncounterServiceProvider => "encounter-service-provider",
        CareVia::CareTeam => "care-team",
        CareVia::GeneralPractitioner => "general-practitioner",
        CareVia::EpisodeOfCare => "episode-of-care",
        CareVia::Dismissal => VIA_DISMISSAL,
    }
}

/// The stored `via` as the model's [`CareVia`].
fn via_of(stored: &str) -> CareVia {
    match stored {
        "encounter-participant" => CareVia::EncounterParticipant,
        "encounter-service-provider" => CareVia::EncounterServiceProvider,
        "care-team" => CareVia::CareTeam,
        "general-practitioner" => CareVia::GeneralPractitioner,
        VIA_DISMISSAL => CareVia::Dismissal,
        _ => CareVia::EpisodeOfCare,
    }
}

fn fact(
    actor_kind: &str,
    actor: &str,
    organization: Option<&str>,
    patient: &str,
    via: &str,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
) -> CareFact {
    let actor = if actor_kind == "department" {
        CareActor::Department {
            organization: organization.map(str::to_string),
            department: actor.to_string(),
        }
    } else {
        CareActor::User(actor.to_string())
    };
    CareFact {
        patient: patient.to_string(),
        actor,
        via: via_of(via),
        start,
        end,
    }
}

/// Teaches the detector one relationship (the single call site of the model's feedback
/// method, live and at start).
pub fn teach(detector: &mut Detector, fact: &CareFact) {
    detector.learn_relationship(fact);
}

pub async fn insert(conn: &mut AsyncPgConnection, row: &NewRelationship) -> QueryResult<()> {
    diesel::insert_into(relationships::table)
        .values(row)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Replaces the care facts read from `source` with `rows` (version `version`), unless a newer
/// version is stored already (messages may arrive twice or out of order). Returns whether the
/// rows were stored.
pub async fn replace_care(
    conn: &mut AsyncPgConnection,
    source: &str,
    version: i64,
    rows: &[NewRelationship],
) -> QueryResult<bool> {
    let newer: bool = diesel::select(diesel::dsl::exists(
        relationships::table
            .filter(relationships::origin.eq(ORIGIN_CARE))
            .filter(relationships::source.eq(source))
            .filter(relationships::source_version.gt(version)),
    ))
    .get_result(conn)
    .await?;
    if newer {
        return Ok(false);
    }
    diesel::delete(
        relationships::table
            .filter(relationships::origin.eq(ORIGIN_CARE))
            .filter(relationships::source.eq(source)),
    )
    .execute(conn)
    .await?;
    if !rows.is_empty() {
        diesel::insert_into(relationships::table)
            .values(rows)
            .execute(conn)
            .await?;
    }
    Ok(true)
}

/// Every stored relationship, oldest first.
pub async fn all(conn: &mut AsyncPgConnection) -> QueryResult<Vec<RelationshipRow>> {
    relationships::table
        .order(relationships::id.asc())
        .select(RelationshipRow::as_select())
        .load(conn)
        .await
}

/// Teaches the detector every stored relationship (at start, before the consumers run).
pub async fn replay(conn: &mut AsyncPgConnection, detector: &SharedDetector) -> QueryResult<usize> {
    let rows = all(conn).await?;
    let mut detector = lock(detector);
    for row in &rows {
        teach(&mut detector, &row.fact());
    }
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dismissal_is_the_users_relationship_from_the_alert_on() {
        let from = Utc::now();
        let row = NewRelationship::dismissal(Uuid::nil(), "u1", "Patient/a", from);
        let fact = row.fact();
        assert_eq!(fact.actor, CareActor::User("u1".into()));
        assert_eq!(fact.patient, "Patient/a");
        assert_eq!(fact.start, from);
        assert_eq!(fact.end, None);
        assert_eq!(fact.via, CareVia::Dismissal);
    }

    #[test]
    fn vias_round_trip() {
        for via in [
            CareVia::EncounterParticipant,
            CareVia::EncounterServiceProvider,
            CareVia::CareTeam,
            CareVia::GeneralPractitioner,
            CareVia::EpisodeOfCare,
            CareVia::Dismissal,
        ] {
            assert_eq!(via_of(via_text(via)), via);
        }
    }
}
