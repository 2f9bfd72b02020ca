//! `PUT /fhir/{type}/{id}`: a new version, or a create with the client's id.

use actix_web::{http::header, http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_access::{Caller, Interaction};
use custodian_fhir::FhirError;
use diesel_async::AsyncConnection;

use super::{
    apply::{self, Applied, WriteRequest},
    http::{self, prefer_return},
    write::{parse_body, prepare},
};
use crate::{
    access::{hidden, refused},
    domain::resource::now_millis,
    error::RecordsError,
    state::AppState,
    store,
};

/// For `If-None-Match: *`, when the id has a live resource: the caller's right to update it is
/// decided first (a caller who may not learns nothing), then the 412.
async fn existing(
    conn: &mut diesel_async::AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    resource_type: &str,
    id: &str,
) -> Result<Option<Applied>, RecordsError> {
    let Some(current) = store::current(conn, resource_type, id, true).await? else {
        return Ok(None);
    };
    if current.deleted {
        return Ok(None);
    }
    let subject = apply::existing_subject(conn, state, resource_type, id, &current).await?;
    let decision = state
        .kernel
        .decide(caller, Interaction::Update, &subject.target())?;
    if !decision.permitted() {
        return apply::denied(state, caller, Interaction::Update, &subject, decision, true)
            .map(Some);
    }
    Ok(Some(Applied::Precondition(format!(
        "If-None-Match: * but {resource_type}/{id} exists"
    ))))
}

/// Update a resource (or create it with this id).
#[utoipa::path(
    put,
    path = "/fhir/{type}/{id}",
    tag = "fhir",
    params(("type" = String, Path), ("id" = String, Path)),
    request_body(content = serde_json::Value, content_type = "application/fhir+json"),
    responses(
        (status = 200, description = "Updated"),
        (status = 201, description = "Created with the client's id"),
        (status = 400, description = "Malformed, or body id differs from the URL"),
        (status = 403, description = "Not permitted"),
        (status = 412, description = "If-Match does not match the current version, or If-None-Match: * and it exists"),
        (status = 422, description = "Not valid FHIR R4")
    ),
    security(("smart" = []))
)]
pub async fn update(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let (raw_type, raw_id) = path.into_inner();
    let result = handle(&req, &raw_type, &raw_id, &body, caller, &state).await;
    super::observe(&state, "update", &raw_type, &result);
    result
}

async fn handle(
    req: &HttpRequest,
    raw_type: &str,
    raw_id: &str,
    body: &[u8],
    caller: Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let resource_type = http::parse_type(raw_type)?;
    let id = http::parse_id(raw_id)?;
    http::require_json(req)?;
    let expected = http::if_match(req)?;
    // `If-None-Match: *`: create only.
    let create_only = http::IfNoneMatch::of(req) == Some(http::IfNoneMatch::Any);
    let incoming = parse_body(body, &resource_type)?;
    match incoming.id() {
        None => {
            return Err(FhirError::BadRequest(
                "the resource must contain an id equal to the URL's".into(),
            )
            .into())
        }
        Some(body_id) if body_id != id.as_str() => {
            return Err(FhirError::BadRequest(format!(
                "the body's id {body_id:?} differs from the URL's {id:?}"
            ))
            .into())
        }
        Some(_) => {}
    }
    let now = now_millis();
    let prepared = prepare(state, &incoming, &resource_type, id.as_str(), now)?;
    let mut conn = state.connection().await?;
    let applied = {
        let (incoming, prepared, caller) = (&incoming, &prepared, &caller);
        let (resource_type, id) = (resource_type.as_str(), id.as_str());
        conn.transaction::<Applied, RecordsError, _>(async move |conn| {
            let exists = if create_only {
                existing(conn, state, caller, resource_type, id).await?
            } else {
                None
            };
            let applied = match exists {
                Some(refusal) => refusal,
                None => {
                    apply::update(
                        conn,
                        state,
                        WriteRequest {
                            caller,
                            resource_type,
                            id,
                            incoming,
                            prepared,
                            expected,
                            now,
                        },
                    )
                    .await?
                }
            };
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
    match applied {
        Applied::Denied {
            decision,
            hidden: true,
            ..
        } => Err(hidden(state, &decision, resource_type.as_str(), id.as_str()).into()),
        Applied::Denied { decision, .. } => Err(refused(state, &decision).into()),
        Applied::Conflict(message) => Err(FhirError::Conflict(message).into()),
        Applied::Precondition(message) => Err(FhirError::PreconditionFailed(message).into()),
        Applied::Written {
            version,
            created,
            json: Some(json),
            ..
        } => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut builder = http::versioned(status, version, now);
            builder.insert_header((
                header::LOCATION,
                format!(
                    "{}/_history/{version}",
                    state.full_url(resource_type.as_str(), id.as_str())
                ),
            ));
            Ok(http::write_body(
                builder,
                prefer_return(req),
                json,
                if created { "created" } else { "updated" },
            ))
        }
        _ => Err(RecordsError::Internal("update wrote no version".into())),
    }
}
