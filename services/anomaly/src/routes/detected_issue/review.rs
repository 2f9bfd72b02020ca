//! `POST /anomaly/DetectedIssue/{id}/$acknowledge` and `.../$dismiss`.
//!
//! The body is optional: a FHIR `Parameters` resource with a `note` (`valueString`, at most
//! 1,000 characters), or nothing. In one transaction: the alert is locked, its status set
//! (`acknowledged` / `dismissed`), the feedback row written, for a dismissal the relationship
//! (the alert's actor and patient, from the alert's event time on) stored, and the access event
//! of the review enqueued. After the commit a dismissal is taught to the live detector (a
//! restart teaches it again from the table).
//!
//! - Repeating the alert's current verdict changes nothing (200, no new mitigation).
//! - An acknowledged alert may still be dismissed; a dismissed one stays dismissed (409): what
//!   it taught the detector cannot be taken back.
//! - Every attempt is audited, denied ones too (403), and one on a missing alert (404).

use actix_web::{web, HttpResponse};
use custodian_access::{absent_event, Caller, Decision, Interaction, Touched};
use custodian_database::Pool;
use diesel_async::AsyncConnection;
use serde_json::Value;
use uuid::Uuid;

use super::{fhir, render_all};
use crate::{
    consumer::lock,
    domain::{
        access::{decide, AlertInteraction, DETECTED_ISSUE},
        alerts::{self, AlertRecord, AlertStatus},
        feedback::{self, FeedbackAction, FeedbackRow},
        relationships::{self, teach, NewRelationship},
    },
    error::ApiError,
    routes::Review,
};

/// The longest note a reviewer may leave.
pub const MAX_NOTE: usize = 1_000;

/// Acknowledges an alert: security staff will follow it up.
#[utoipa::path(
    post,
    path = "/anomaly/DetectedIssue/{id}/$acknowledge",
    tag = "DetectedIssue",
    params(("id" = Uuid, Path, description = "The alert's id")),
    request_body(content = Option<Object>, description = "Optional FHIR Parameters with a `note` (valueString)", content_type = "application/fhir+json"),
    responses(
        (status = 200, description = "The DetectedIssue, status final", body = Object),
        (status = 400, description = "Malformed Parameters"),
        (status = 401, description = "No valid token"),
        (status = 403, description = "Not security staff, or no scope for it"),
        (status = 404, description = "No such alert"),
        (status = 409, description = "The alert was dismissed"),
    ),
    security(("smart" = []))
)]
pub async fn acknowledge(
    caller: Caller,
    id: web::Path<String>,
    body: web::Bytes,
    pool: web::Data<Pool>,
    review: web::Data<Review>,
) -> Result<HttpResponse, ApiError> {
    apply(
        FeedbackAction::Acknowledge,
        &caller,
        &id,
        &body,
        &pool,
        &review,
    )
    .await
}

/// Dismisses an alert as legitimate: the detector learns that its actor and patient have a
/// legitimate relationship.
#[utoipa::path(
    post,
    path = "/anomaly/DetectedIssue/{id}/$dismiss",
    tag = "DetectedIssue",
    params(("id" = Uuid, Path, description = "The alert's id")),
    request_body(content = Option<Object>, description = "Optional FHIR Parameters with a `note` (valueString)", content_type = "application/fhir+json"),
    responses(
        (status = 200, description = "The DetectedIssue, status cancelled", body = Object),
        (status = 400, description = "Malformed Parameters"),
        (status = 401, description = "No valid token"),
        (status = 403, description = "Not security staff, or no scope for it"),
        (status = 404, description = "No such alert"),
        (status = 409, description = "The alert was dismissed already with another verdict"),
    ),
    security(("smart" = []))
)]
pub async fn dismiss(
    caller: Caller,
    id: web::Path<String>,
    body: web::Bytes,
    pool: web::Data<Pool>,
    review: web::Data<Review>,
) -> Result<HttpResponse, ApiError> {
    apply(FeedbackAction::Dismiss, &caller, &id, &body, &pool, &review).await
}

/// The note of an optional `Parameters` body.
pub fn note(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let parameters: Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::invalid("the body must be a FHIR Parameters resource"))?;
    if parameters["resourceType"] != "Parameters" {
        return Err(ApiError::invalid(
            "the body must be a FHIR Parameters resource",
        ));
    }
    let note = parameters["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "note")
        .map(|p| {
            p["valueString"]
                .as_str()
                .map(str::trim)
                .map(str::to_string)
                .ok_or_else(|| ApiError::invalid("note must be a valueString"))
        })
        .transpose()?
        .filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE) {
        return Err(ApiError::invalid(format!(
            "note is longer than {MAX_NOTE} characters"
        )));
    }
    Ok(note)
}

/// What the transaction did.
enum Outcome {
    Missing,
    Refused(AlertStatus),
    Unchanged(AlertRecord),
    Changed {
        alert: AlertRecord,
        taught: Option<NewRelationship>,
    },
}

async fn apply(
    action: FeedbackAction,
    caller: &Caller,
    id: &str,
    body: &[u8],
    pool: &Pool,
    review: &Review,
) -> Result<HttpResponse, ApiError> {
    let decision = decide(caller, AlertInteraction::Review);
    let touched = Touched::new(DETECTED_ISSUE, None);
    let mut conn = pool.get().await?;
    if !decision.permitted() {
        let event = decision.event(caller, Interaction::Update, touched);
        review.log.record(&mut conn, &[event]).await?;
        return Err(ApiError::forbidden(decision.explanation));
    }
    let note = note(body)?;
    let Ok(alert_id) = Uuid::parse_str(id) else {
        return missing(caller, &mut conn, review).await;
    };
    let outcome = transact(&mut conn, action, alert_id, caller, note, &decision, review).await?;
    let alert = match outcome {
        Outcome::Missing => return missing(caller, &mut conn, review).await,
        Outcome::Refused(status) => {
            review.log.wake();
            return Err(ApiError::conflict(format!(
                "the alert is {} already: it cannot be {}d",
                status.as_str(),
                action.as_str()
            )));
        }
        Outcome::Unchanged(alert) => {
            review.log.wake();
            alert
        }
        Outcome::Changed { alert, taught } => {
            review.log.wake();
            if let Some(relationship) = taught {
                teach(&mut lock(&review.detector), &relationship.fact());
            }
            match action {
                FeedbackAction::Acknowledge => review.metrics.acknowledgements.inc(),
                FeedbackAction::Dismiss => review.metrics.dismissals.inc(),
            }
            tracing::info!(alert_id = %alert.id, action = action.as_str(), "alert reviewed");
            alert
        }
    };
    let issue = render_all(&mut conn, std::slice::from_ref(&alert))
        .await?
        .pop()
        .ok_or_else(|| ApiError::Unexpected("an alert rendered to nothing".into()))?;
    Ok(fhir(&issue))
}

/// A review of an alert that does not exist: still on the record.
async fn missing(
    caller: &Caller,
    conn: &mut diesel_async::AsyncPgConnection,
    review: &Review,
) -> Result<HttpResponse, ApiError> {
    let event = absent_event(caller, Interaction::Update, DETECTED_ISSUE);
    review.log.record(conn, &[event]).await?;
    Err(ApiError::not_found("no such DetectedIssue"))
}

/// The transaction: the alert locked, its status, the feedback, the relationship and the
/// access event (the event is written whatever the outcome, except a missing alert's, which
/// the caller records).
async fn transact(
    conn: &mut diesel_async::AsyncPgConnection,
    action: FeedbackAction,
    alert_id: Uuid,
    caller: &Caller,
    note: Option<String>,
    decision: &Decision,
    review: &Review,
) -> Result<Outcome, ApiError> {
    let event = decision.event(
        caller,
        Interaction::Update,
        Touched::new(DETECTED_ISSUE, None).count(1),
    );
    let author = caller.claims.sub.clone();
    let log = review.log.clone();
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let Some(alert) = alerts::find_for_update(conn, alert_id).await? else {
            return Ok(Outcome::Missing);
        };
        log.enqueue(conn, std::slice::from_ref(&event)).await?;
        let current = alert.status();
        let wanted = action.status();
        if current == wanted {
            return Ok(Outcome::Unchanged(alert));
        }
        if current == AlertStatus::Dismissed {
            return Ok(Outcome::Refused(current));
        }
        let row = FeedbackRow {
            id: Uuid::now_v7(),
            alert_id,
            action: action.as_str().to_string(),
            author_id: author,
            note,
            created_at: chrono::Utc::now(),
        };
        feedback::insert(conn, &row).await?;
        let alert = alerts::set_status(conn, alert_id, wanted).await?;
        let taught = match (action, alert.patient_ref.as_deref()) {
            (FeedbackAction::Dismiss, Some(patient)) => {
                let relationship =
                    NewRelationship::dismissal(alert.id, &alert.user_id, patient, alert.event_time);
                relationships::insert(conn, &relationship).await?;
                Some(relationship)
            }
            _ => None,
        };
        Ok(Outcome::Changed { alert, taught })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_come_from_parameters() {
        assert_eq!(note(b"").ok(), Some(None));
        assert_eq!(note(b"  \n").ok(), Some(None));
        let body = br#"{"resourceType":"Parameters","parameter":[{"name":"note","valueString":" covering "}]}"#;
        assert_eq!(note(body).ok(), Some(Some("covering".to_string())));
        assert_eq!(note(br#"{"resourceType":"Parameters"}"#).ok(), Some(None));
        assert!(note(br#"{"resourceType":"Patient"}"#).is_err());
        assert!(note(b"not json").is_err());
        assert!(note(
            br#"{"resourceType":"Parameters","parameter":[{"name":"note","valueInteger":1}]}"#
        )
        .is_err());
        let long = format!(
            r#"{{"resourceType":"Parameters","parameter":[{{"name":"note","valueString":"{}"}}]}}"#,
            "x".repeat(MAX_NOTE + 1)
        );
        assert!(note(long.as_bytes()).is_err());
    }
}
