//! `POST /fhir/Consent`

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_auth::Authenticated;
use custodian_events::{outbox, AccessAction, AccessOutcome};
use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::{access_event, change_event, json_body, refuse, resource_response};
use crate::{
    domain::{audit::RequestContext, resource::now_millis, Caller, ConsentResource, VersionId},
    error::ConsentError,
    routes::AppState,
    store::{self, ConsentRow},
};

/// Records a new consent. The server assigns the id; the consent's rules reach records through
/// the consent stream.
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
        (status = 422, description = "Not a valid R4 Consent, or provisions the policy cannot read", body = Object, content_type = "application/fhir+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    req: HttpRequest,
    auth: Authenticated,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsentError> {
    let Authenticated(claims) = auth;
    let ctx = RequestContext::from_request(&req)?;
    let resource = ConsentResource::parse(json_body(&req, &body)?)?;
    if let Err(e) = Caller::new(&claims).may_write(resource.patient()) {
        return Err(refuse(
            &state,
            &ctx,
            &claims,
            Some(resource.patient()),
            AccessAction::Create,
            e,
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
    };
    let event = ctx.event(
        &claims,
        Some(resource.patient()),
        AccessAction::Create,
        1,
        AccessOutcome::Permit,
    );
    let events = vec![
        change_event(&state.streams, &row, resource.rules()?)?,
        access_event(&state.streams, &event)?,
    ];
    let stored = row.clone();
    let mut conn = state.pool.get().await?;
    conn.transaction::<(), ConsentError, _>(async move |conn| {
        store::insert(conn, &stored).await?;
        outbox::enqueue_many(conn, &events).await?;
        Ok(())
    })
    .await?;
    state.relay.wake();
    state.metrics.written.with_label_values(&["create"]).inc();
    tracing::info!(consent = %id, "consent created");
    Ok(resource_response(
        StatusCode::CREATED,
        id,
        VersionId::FIRST,
        now,
        &row.resource,
        Some(&state.public_url),
    ))
}
