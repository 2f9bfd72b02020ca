//! `DELETE /fhir/{type}/{id}`: a deletion version; later reads answer 410.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_access::Caller;
use custodian_fhir::{FhirError, OperationOutcome};
use diesel_async::AsyncConnection;

use super::{
    apply::{self, Applied},
    http::{self, prefer_return, Return},
};
use crate::{
    access::{hidden, refused},
    domain::resource::now_millis,
    error::RecordsError,
    state::AppState,
};

/// Delete a resource.
#[utoipa::path(
    delete,
    path = "/fhir/{type}/{id}",
    tag = "fhir",
    params(("type" = String, Path), ("id" = String, Path)),
    responses(
        (status = 200, description = "Deleted (OperationOutcome); 204 with Prefer: return=minimal"),
        (status = 403, description = "Not permitted"),
        (status = 404, description = "Unknown resource"),
        (status = 412, description = "If-Match does not match")
    ),
    security(("smart" = []))
)]
pub async fn delete(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let (raw_type, raw_id) = path.into_inner();
    let result = handle(&req, &raw_type, &raw_id, caller, &state).await;
    super::observe(&state, "delete", &raw_type, &result);
    result
}

async fn handle(
    req: &HttpRequest,
    raw_type: &str,
    raw_id: &str,
    caller: Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let resource_type = http::parse_type(raw_type)?;
    let id = http::parse_id(raw_id)?;
    let expected = http::if_match(req)?;
    let now = now_millis();
    let mut conn = state.connection().await?;
    let applied = {
        let caller = &caller;
        let (resource_type, id) = (resource_type.as_str(), id.as_str());
        conn.transaction::<Applied, RecordsError, _>(async move |conn| {
            let applied =
                apply::delete(conn, state, caller, resource_type, id, expected, now).await?;
            if let Applied::Denied { event, .. } | Applied::Missing { event } = &applied {
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
    let done = |version: i64, message: &str| {
        let minimal = prefer_return(req) == Return::Minimal;
        let mut builder = http::fhir(if minimal {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::OK
        });
        builder.insert_header((actix_web::http::header::ETAG, http::etag(version)));
        if minimal {
            builder.finish()
        } else {
            builder.body(OperationOutcome::information(message).to_string())
        }
    };
    match applied {
        Applied::Written { version, .. } => {
            Ok(done(version, &format!("deleted {resource_type}/{id}")))
        }
        Applied::AlreadyDeleted { version } => Ok(done(
            version,
            &format!("{resource_type}/{id} was already deleted"),
        )),
        Applied::Missing { .. } => {
            Err(FhirError::NotFound(format!("{resource_type}/{id} is not known")).into())
        }
        Applied::Denied {
            decision,
            hidden: true,
            ..
        } => Err(hidden(state, &decision, resource_type.as_str(), id.as_str()).into()),
        Applied::Denied { decision, .. } => Err(refused(state, &decision).into()),
        Applied::Conflict(message) => Err(FhirError::Conflict(message).into()),
        Applied::Precondition(message) => Err(FhirError::PreconditionFailed(message).into()),
    }
}
