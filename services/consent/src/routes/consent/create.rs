//! `POST /fhir/Consent`

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_access::{Caller, Interaction, Touched};
use custodian_events::outbox;
use custodian_fhir::{
    http::{self, Handling},
    FhirError,
};
use custodian_fhir_search::SearchQuery;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    change_event, existing, json_body, known, record, refuse, resource_response, row_version,
    search::{restrict, search_store},
};
use crate::{
    domain::{
        access,
        access::CONSENT,
        resource::{now_millis, shown},
        ConsentResource, PatientRef, VersionId,
    },
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
    params(
        ("X-Purpose-Of-Use" = Option<String>, Header, description = "PurposeOfUse code (TREAT by default)"),
        ("If-None-Exist" = Option<String>, Header, description = "Search parameters of Consent: create only when none the caller may see matches (one: 200 with it; several: 412)"),
    ),
    request_body(content = Object, content_type = "application/fhir+json", description = "A FHIR R4 Consent"),
    responses(
        (status = 200, description = "If-None-Exist matched one consent the caller may see: it, unchanged", body = Object, content_type = "application/fhir+json"),
        (status = 201, description = "Created; Location names the new version", body = Object, content_type = "application/fhir+json"),
        (status = 412, description = "If-None-Exist matched several consents", body = Object, content_type = "application/fhir+json"),
        (status = 400, description = "Not JSON, or not a Consent", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "No valid token", body = Object, content_type = "application/fhir+json"),
        (status = 403, description = "Not the consent's patient nor an administrator", body = Object, content_type = "application/fhir+json"),
        (status = 415, description = "Not JSON", body = Object, content_type = "application/fhir+json"),
        (status = 422, description = "Not a valid R4 Consent, or one the policy engine cannot enforce exactly (each issue's expression and location name the element)", body = Object, content_type = "application/fhir+json"),
    ),
    security(("smart" = []))
)]
pub async fn create(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsentError> {
    let resource = ConsentResource::parse(json_body(&req, &body)?)?;
    let condition = req
        .headers()
        .get("if-none-exist")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let caller = known(&state, caller);
    create_with(&req, &state, &caller, resource, condition.as_deref()).await
}

/// Creates `resource`, unless `condition` (`If-None-Exist`, or a conditional update's search)
/// matches a consent the caller may see.
pub(super) async fn create_with(
    req: &HttpRequest,
    state: &AppState,
    caller: &Caller,
    resource: ConsentResource,
    condition: Option<&str>,
) -> Result<HttpResponse, ConsentError> {
    let interaction = Interaction::Create;
    let decision = access::write(caller, interaction, resource.patient());
    if !decision.permitted() {
        let error = ConsentError::forbidden(decision.explanation.clone());
        return Err(refuse(
            state,
            caller,
            interaction,
            &decision,
            Some(resource.patient()),
            error,
        )
        .await);
    }
    // `If-None-Exist`: matched against what the caller may see, decided like a search (an
    // administrator sees no consent, so hers never match: a match would show her its body).
    let condition = match condition {
        Some(raw) => Some(parse_condition(state, caller, raw).await?),
        None => None,
    };
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
        caller,
        interaction,
        Touched::new(CONSENT, Some(resource.patient())).count(1),
    );
    let change = change_event(&state.streams, &row, resource.in_force())?;
    let stored = row.clone();
    let log = state.log.clone();
    let mut conn = state.pool.get().await?;
    let matched = conn
        .transaction::<Option<Uuid>, ConsentError, _>(async move |conn| {
            if let Some((raw, query)) = &condition {
                // Equal conditions take turns, so two such creates make one consent.
                diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind::<diesel::sql_types::Text, _>(format!("Consent?{raw}"))
                    .execute(conn)
                    .await?;
                let found = query.page(conn, 0, 2).await?;
                match found.as_slice() {
                    [] => {}
                    [one] => {
                        return Uuid::parse_str(&one.resource_id)
                            .map(Some)
                            .map_err(|e| ConsentError::Unexpected(e.to_string()))
                    }
                    _ => {
                        return Err(FhirError::PreconditionFailed(
                            "If-None-Exist matches several consents".into(),
                        )
                        .into())
                    }
                }
            }
            store::insert(conn, &stored).await?;
            outbox::enqueue_many(conn, &[change]).await?;
            log.enqueue(conn, &[event]).await?;
            Ok(None)
        })
        .await?;
    drop(conn);
    if let Some(existing) = matched {
        return matched_response(req, state, caller, existing).await;
    }
    state.log.wake();
    state.metrics.written.with_label_values(&["create"]).inc();
    tracing::info!(consent = %id, "consent created");
    Ok(resource_response(
        StatusCode::CREATED,
        id,
        VersionId::FIRST,
        now,
        &row.resource,
        Some((&state.public_url, http::Prefer::of(req).return_)),
    ))
}

/// `If-None-Exist` as a search of Consents, restricted to what the caller may see (strict: an
/// ignored parameter would widen the match); a refusal to search is the create's 403.
pub(super) async fn parse_condition(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<(String, SearchQuery), ConsentError> {
    let raw = raw.trim();
    let raw = raw.strip_prefix("Consent?").unwrap_or(raw).to_string();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .filter(|(name, _)| !matches!(name.as_str(), "_count" | "_format" | "_pretty"))
        .collect();
    if pairs.is_empty() {
        return Err(ConsentError::bad_request(
            "If-None-Exist names no search parameter",
        ));
    }
    let mut query = SearchQuery::parse(&search_store(), CONSENT, &pairs, Handling::Strict)?;
    let requested = query
        .named_patient
        .as_deref()
        .and_then(|p| PatientRef::parse(p).ok());
    let (visible, _) = match access::search(caller, requested.as_ref()) {
        Ok(found) => found,
        Err(refused) => {
            let error = ConsentError::forbidden(refused.explanation.clone());
            return Err(refuse(
                state,
                caller,
                Interaction::Search,
                &refused,
                requested.as_ref(),
                error,
            )
            .await);
        }
    };
    restrict(&mut query, &visible);
    Ok((raw, query))
}

/// The consent a conditional create matched: 200 with it as the caller may see it (recorded
/// as a read), as records answers a conditional create that matched.
async fn matched_response(
    req: &HttpRequest,
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<HttpResponse, ConsentError> {
    let (_, row, patient) = existing(state, caller, Interaction::Read, &id.to_string()).await?;
    let consent = format!("Consent/{id}");
    let decision = access::see(caller, Interaction::Read, &consent, &patient, &row.actors);
    record(
        state,
        &[decision.event(
            caller,
            Interaction::Read,
            Touched::new(CONSENT, Some(&patient)).count(1),
        )],
    )
    .await?;
    let shown = shown(&access::view(caller), &row.resource);
    Ok(resource_response(
        StatusCode::OK,
        id,
        row_version(row.version_id)?,
        row.last_updated,
        &shown,
        Some((&state.public_url, http::Prefer::of(req).return_)),
    ))
}
