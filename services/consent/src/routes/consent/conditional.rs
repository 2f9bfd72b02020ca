//! `PUT /fhir/Consent?params` and `DELETE /fhir/Consent?params`: the search decides which
//! consent (strict, restricted to what the caller may see, as records matches conditions):
//! none → a conditional update creates (under the same condition, so two such requests make
//! one consent) and a conditional delete answers 204; one → updated or deleted as by id;
//! several → 412.

use actix_web::{web, HttpRequest, HttpResponse};
use custodian_access::Caller;
use custodian_fhir::FhirError;
use uuid::Uuid;

use super::{
    create::{create_with, parse_condition},
    delete::delete_by_id,
    json_body, known,
    update::update_by_id,
};
use crate::{domain::ConsentResource, error::ConsentError, routes::AppState};

/// The one consent the request's query matches, none, or a 412 for several.
async fn matched(
    req: &HttpRequest,
    state: &AppState,
    caller: &Caller,
) -> Result<Option<Uuid>, ConsentError> {
    let (_, query) = parse_condition(state, caller, req.query_string()).await?;
    let mut conn = state.pool.get().await?;
    let found = query
        .page(&mut conn, 0, 2)
        .await
        .map_err(ConsentError::Database)?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => Uuid::parse_str(&one.resource_id)
            .map(Some)
            .map_err(|e| ConsentError::Unexpected(e.to_string())),
        _ => Err(
            FhirError::PreconditionFailed("the condition matches several consents".into()).into(),
        ),
    }
}

/// Conditional update.
#[utoipa::path(
    put,
    path = "/fhir/Consent",
    tag = "Consent",
    params(("search" = Option<String>, Query, description = "Search parameters of Consent naming the one to update")),
    request_body(content = Object, content_type = "application/fhir+json", description = "The new version (its id, if any, must be the match's)"),
    responses(
        (status = 200, description = "The one match, updated", body = Object, content_type = "application/fhir+json"),
        (status = 201, description = "No match: created", body = Object, content_type = "application/fhir+json"),
        (status = 400, description = "No condition, or not a search of Consent", body = Object, content_type = "application/fhir+json"),
        (status = 412, description = "Several matches", body = Object, content_type = "application/fhir+json"),
    ),
    security(("smart" = []))
)]
pub async fn conditional_update(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsentError> {
    let caller = known(&state, caller);
    let mut resource = ConsentResource::parse(json_body(&req, &body)?)?;
    match matched(&req, &state, &caller).await? {
        Some(id) => {
            if resource.id_in_body().is_none() {
                resource = resource.with_id(id);
            }
            update_by_id(&req, &state, &caller, &id.to_string(), resource).await
        }
        None => {
            if resource.id_in_body().is_some() {
                return Err(ConsentError::bad_request(
                    "nothing matches and consent ids are assigned by the server: send it without an id",
                ));
            }
            create_with(&req, &state, &caller, resource, Some(req.query_string())).await
        }
    }
}

/// Conditional delete (single: several matches are a 412).
#[utoipa::path(
    delete,
    path = "/fhir/Consent",
    tag = "Consent",
    params(("search" = Option<String>, Query, description = "Search parameters of Consent naming the one to delete")),
    responses(
        (status = 200, description = "The one match, deleted (revoked)", body = Object, content_type = "application/fhir+json"),
        (status = 204, description = "No match"),
        (status = 400, description = "No condition, or not a search of Consent", body = Object, content_type = "application/fhir+json"),
        (status = 412, description = "Several matches", body = Object, content_type = "application/fhir+json"),
    ),
    security(("smart" = []))
)]
pub async fn conditional_delete(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsentError> {
    let caller = known(&state, caller);
    match matched(&req, &state, &caller).await? {
        Some(id) => delete_by_id(&req, &state, &caller, &id.to_string()).await,
        None => Ok(HttpResponse::NoContent().finish()),
    }
}
