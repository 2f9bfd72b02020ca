//! `POST /fhir/Consent`

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_access::{Caller, Interaction, Touched};
use custodian_events::outbox;
use custodian_fhir::http;
use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::{change_event, json_body, refuse, resource_response};
use crate::{
    domain::{access, access::CONSENT, resource::now_millis, ConsentResource, VersionId},
    error::ConsentError,
    routes::AppState,
    store::{self, ConsentRow},
};

/// Records a new consent. The server assigns the id; while it is active the typed consent
/// reaches records through the consent stream.
#[utoipa::path(
    post,
    path = "/fhir/Consent",
    tag = "Consent",
    params(("X-Purpose-Of-Use" = Option<String>, Header, description = "PurposeOfUse code (TREAT by default)")),
    request_body(content = Object, content_type = "application/fhir+json", description = "A FHIR R4 Consent"),
    responses(
        (status = 201, description = "Created; Location names the new version", body = Object, content_type = "application/fhir+json"),
        (status = 400, description = "Not JSON, or not a Consent", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "No valid token", body = Object, content_type = "application/fhir+json"),
        (status = 403, description = "Not the consent's patient nor an administrator", body = Object, content_type = "application/fhir+json"),
        (status = 415, description = "Not JSON", body = Object, content_type = "application/fhir+json"),
        (status = 422, description = "Not a valid R4 Consent, or one the policy engine cannot enforce exactly (each issue's expression and location name the element)", body = Object, content_type = "application/fhir+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsentError> {
    let interaction = Interaction::Create;
    let resource = ConsentResource::parse(json_body(&req, &body)?)?;
    let decision = access::write(&caller, interaction, resource.patient());
    if !decision.permitted() {
        let error = ConsentError::forbidden(decision.explanation.clone());
        return Err(refuse(
            &state,
            &caller,
            interaction,
            &decision,
            Some(resource.patient()),
            error,
        )
        .await);
    }
    let id = Uuid::new_v4();
    let now = now_millis();
    let resource = resource.stamp(id, VersionId::FIRST, now);
    let row = ConsentRow {
        id,
        patient: resource.patient().to_string(),
        status: resource.status().to_string(),
        version_id: VersionId::FIRST.get(),
        last_updated: now,
        deleted: false,
        resource: resource.json().clone(),
        actors: resource.named_actors(),
    };
    let event = decision.event(
        &caller,
        interaction,
        Touched::new(CONSENT, Some(resource.patient())).count(1),
    );
    let change = change_event(&state.streams, &row, resource.in_force())?;
    let stored = row.clone();
    let log = state.log.clone();
    let mut conn = state.pool.get().await?;
    conn.transaction::<(), ConsentError, _>(async move |conn| {
        store::insert(conn, &stored).await?;
        outbox::enqueue_many(conn, &[change]).await?;
        log.enqueue(conn, &[event]).await?;
        Ok(())
    })
    .await?;
    state.log.wake();
    state.metrics.written.with_label_values(&["create"]).inc();
    tracing::info!(consent = %id, "consent created");
    Ok(resource_response(
        StatusCode::CREATED,
        id,
        VersionId::FIRST,
        now,
        &row.resource,
        Some((&state.public_url, http::Prefer::of(&req).return_)),
    ))
}
