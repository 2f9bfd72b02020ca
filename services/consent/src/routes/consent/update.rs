//! `PUT /fhir/Consent/{id}`

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_access::{Caller, Decision, Interaction, Touched};
use custodian_events::outbox;
use custodian_fhir::{http, FhirError};
use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::{
    change_event, check_precondition, existing, if_match, json_body, known, refuse,
    resource_response, row_version,
};
use crate::{
    domain::{
        access, access::CONSENT, resource::now_millis, ConsentResource, PatientRef, VersionId,
    },
    error::ConsentError,
    routes::AppState,
    store::{self, ConsentRow},
};

/// Replaces a consent with a new version. Setting `status` to `inactive` or `rejected` revokes
/// it: the published change carries no consent. The patient of a consent never changes.
#[utoipa::path(
    put,
    path = "/fhir/Consent/{id}",
    tag = "Consent",
    params(
        ("id" = String, Path, description = "The consent's id (must equal the body's id)"),
        ("If-Match" = Option<String>, Header, description = "W/\"<versionId>\": update only that version"),
        ("X-Purpose-Of-Use" = Option<String>, Header, description = "PurposeOfUse code (TREAT by default)"),
    ),
    request_body(content = Object, content_type = "application/fhir+json", description = "The new version of the Consent"),
    responses(
        (status = 200, description = "Updated", body = Object, content_type = "application/fhir+json"),
        (status = 400, description = "Malformed, or the body's id differs from the URL's", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "No valid token", body = Object, content_type = "application/fhir+json"),
        (status = 403, description = "An actor the consent names, who may see but not change it", body = Object, content_type = "application/fhir+json"),
        (status = 404, description = "Not known (ids are assigned by POST), or not the caller's to see", body = Object, content_type = "application/fhir+json"),
        (status = 412, description = "If-Match names another version", body = Object, content_type = "application/fhir+json"),
        (status = 415, description = "Not JSON", body = Object, content_type = "application/fhir+json"),
        (status = 422, description = "Not a valid R4 Consent, one the engine cannot enforce exactly, or a changed patient", body = Object, content_type = "application/fhir+json"),
    ),
    security(("smart" = []))
)]
pub async fn update(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsentError> {
    let caller = known(&state, caller);
    let resource = ConsentResource::parse(json_body(&req, &body)?)?;
    update_by_id(&req, &state, &caller, &path, resource).await
}

/// Stores `resource` as the new version of the consent `raw_id` names (its body must carry
/// that id).
pub(super) async fn update_by_id(
    req: &HttpRequest,
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
    resource: ConsentResource,
) -> Result<HttpResponse, ConsentError> {
    let precondition = if_match(req)?;
    match resource.id_in_body() {
        Some(body_id) if body_id == raw_id => {}
        Some(body_id) => {
            return Err(ConsentError::bad_request(format!(
                "the body's id {body_id:?} does not match the URL's {raw_id:?}"
            )))
        }
        None => {
            return Err(ConsentError::bad_request(
                "the body must carry the consent's id",
            ))
        }
    }
    let (id, _, patient, decision) = authorised(state, caller, raw_id, Interaction::Update).await?;
    store_version(
        state,
        caller,
        Stored {
            id,
            patient,
            decision,
            resource,
            precondition,
            based_on: None,
            prefer: http::Prefer::of(req).return_,
        },
    )
    .await
}

/// The consent `raw_id` names, and the caller's permission to write it; a refusal is recorded
/// and answered (a 404 to whoever may not even see the consent).
pub(super) async fn authorised(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
    interaction: Interaction,
) -> Result<(Uuid, ConsentRow, PatientRef, Decision), ConsentError> {
    let (id, existing_row, patient) = existing(state, caller, interaction, raw_id).await?;
    let decision = access::write(caller, interaction, &patient);
    if !decision.permitted() {
        // Someone who may not even see the consent learns nothing about it.
        let consent = format!("Consent/{id}");
        let sees = access::see(
            caller,
            Interaction::Read,
            &consent,
            &patient,
            &existing_row.actors,
        );
        let error = if sees.permitted() {
            ConsentError::forbidden(decision.explanation.clone())
        } else {
            ConsentError::not_found(raw_id)
        };
        return Err(refuse(state, caller, interaction, &decision, Some(&patient), error).await);
    }
    // Preconditions and the rest are checked only once access is decided.
    Ok((id, existing_row, patient, decision))
}

/// A new version to store.
pub(super) struct Stored {
    pub id: Uuid,
    pub patient: PatientRef,
    /// The permission to write it.
    pub decision: Decision,
    pub resource: ConsentResource,
    /// `If-Match`.
    pub precondition: Option<VersionId>,
    /// The version the new one was made from (a PATCH): another current version is a 409.
    pub based_on: Option<VersionId>,
    pub prefer: http::Return,
}

/// Stores a new version of a consent whose write is decided: its patient unchanged, its
/// preconditions checked under the row's lock, the change and the access event in the same
/// transaction.
pub(super) async fn store_version(
    state: &AppState,
    caller: &Caller,
    new: Stored,
) -> Result<HttpResponse, ConsentError> {
    let Stored {
        id,
        patient,
        decision,
        resource,
        precondition,
        based_on,
        prefer,
    } = new;
    let interaction = Interaction::Update;
    if resource.patient() != &patient {
        return Err(ConsentError::unprocessable(vec![(
            "Consent.patient".into(),
            "a consent's patient cannot change; revoke it and record a new one".into(),
        )]));
    }
    let event = decision.event(
        caller,
        interaction,
        Touched::new(CONSENT, Some(&patient)).count(1),
    );
    let streams = state.streams.clone();
    let log = state.log.clone();
    let now = now_millis();
    let mut conn = state.pool.get().await?;
    let row = conn
        .transaction::<ConsentRow, ConsentError, _>(async move |conn| {
            let current = store::find_for_update(conn, id)
                .await?
                .ok_or_else(|| ConsentError::not_found(&id.to_string()))?;
            let version = row_version(current.version_id)?;
            check_precondition(precondition, version)?;
            if based_on.is_some_and(|b| b != version) {
                return Err(FhirError::Conflict(format!(
                    "the consent changed to version {version} while it was being patched; patch again"
                ))
                .into());
            }
            let version = version.next();
            let resource = resource.stamp(id, version, now);
            let row = ConsentRow {
                id,
                patient: current.patient,
                status: resource.status().to_string(),
                version_id: version.get(),
                last_updated: now,
                deleted: false,
                resource: resource.json().clone(),
                actors: resource.named_actors(),
            };
            store::replace(conn, &row).await?;
            let change = change_event(&streams, &row, resource.in_force())?;
            outbox::enqueue_many(conn, &[change]).await?;
            log.enqueue(conn, &[event]).await?;
            Ok(row)
        })
        .await?;
    state.log.wake();
    state.metrics.written.with_label_values(&["update"]).inc();
    tracing::info!(consent = %id, version = row.version_id, status = %row.status, "consent updated");
    let version = row_version(row.version_id)?;
    Ok(resource_response(
        StatusCode::OK,
        id,
        version,
        row.last_updated,
        &row.resource,
        Some((&state.public_url, prefer)),
    ))
}
