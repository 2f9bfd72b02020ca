//! `POST /fhir/{type}`: create with a server-assigned id (conditional with `If-None-Exist`:
//! `conditional.rs`).

use actix_web::{http::header, http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_access::Caller;
use custodian_fhir::FhirError;
use diesel_async::AsyncConnection;

use super::{
    apply::{self, Applied, WriteRequest},
    conditional::{self, Condition},
    http::{self, prefer_return},
    write::{parse_body, prepare},
};
use crate::{
    access::refused,
    domain::{resource::now_millis, ResourceId},
    error::RecordsError,
    state::AppState,
};

/// Create a resource.
#[utoipa::path(
    post,
    path = "/fhir/{type}",
    tag = "fhir",
    params(("type" = String, Path, description = "R4 resource type")),
    request_body(content = serde_json::Value, content_type = "application/fhir+json"),
    responses(
        (status = 200, description = "If-None-Exist matched one resource: it, and nothing created"),
        (status = 201, description = "Created; Location, ETag and Last-Modified set"),
        (status = 400, description = "Malformed JSON, resourceType mismatch, or an invalid If-None-Exist"),
        (status = 403, description = "Not permitted"),
        (status = 412, description = "If-None-Exist matched several resources"),
        (status = 415, description = "Not FHIR JSON"),
        (status = 422, description = "Not valid FHIR R4 (OperationOutcome lists every issue)")
    ),
    security(("smart" = []))
)]
pub async fn create(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let result = handle(&req, &path, &body, caller, &state).await;
    super::observe(&state, "create", &path, &result);
    result
}

async fn handle(
    req: &HttpRequest,
    raw_type: &str,
    body: &[u8],
    caller: Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let resource_type = http::parse_type(raw_type)?;
    http::require_json(req)?;
    let incoming = parse_body(body, &resource_type)?;
    if let Some(raw) = req.headers().get("if-none-exist") {
        let raw = raw.to_str().map_err(|_| {
            FhirError::BadRequest("If-None-Exist is not a visible ASCII query".into())
        })?;
        let condition = Condition::parse(resource_type.as_str(), raw)?;
        return conditional::create(req, &resource_type, &condition, &incoming, &caller, state)
            .await;
    }
    let id = ResourceId::generate();
    let now = now_millis();
    let prepared = prepare(state, &incoming, &resource_type, id.as_str(), now)?;
    let mut conn = state.connection().await?;
    let applied = {
        let (incoming, prepared, caller) = (&incoming, &prepared, &caller);
        let (resource_type, id) = (resource_type.as_str(), id.as_str());
        conn.transaction::<Applied, RecordsError, _>(async move |conn| {
            let applied = apply::create(
                conn,
                state,
                WriteRequest {
                    caller,
                    resource_type,
                    id,
                    incoming,
                    prepared,
                    expected: None,
                    now,
                },
            )
            .await?;
            if let Applied::Denied { event, .. } = &applied {
                state
                    .enqueue_events(conn, std::slice::from_ref(event))
                    .await?;
            }
            Ok(applied)
        })
        .await?
    };
    state.relay.wake();
    // Committed: this instance's replica follows at once (the others through the stream).
    state.relationships.committed(applied.memberships());
    let json = match applied {
        Applied::Written {
            json: Some(json), ..
        } => json,
        Applied::Denied { decision, .. } => return Err(refused(state, &decision).into()),
        Applied::Conflict(message) => return Err(FhirError::Conflict(message).into()),
        _ => return Err(RecordsError::Internal("create wrote no version".into())),
    };
    let builder = {
        let mut b = http::versioned(StatusCode::CREATED, 1, now);
        b.insert_header((
            header::LOCATION,
            format!(
                "{}/_history/1",
                state.full_url(resource_type.as_str(), id.as_str())
            ),
        ));
        b
    };
    Ok(http::write_body(
        builder,
        prefer_return(req),
        json,
        "created",
    ))
}
