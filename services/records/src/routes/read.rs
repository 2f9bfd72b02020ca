//! `GET /fhir/{type}/{id}` (read) and `GET /fhir/{type}/{id}/_history/{vid}` (vread).
//!
//! Each version is decided on its own compartment and facts. A caller who may not see it gets
//! the same 404 as for an id that does not exist; the ledger gets the denial with its reason.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_access::{absent_event, Caller, Decision, Interaction, OrganizationRef};
use custodian_events::AccessEvent;
use custodian_fhir::{
    elements::{self, Summary},
    FhirError,
};

use super::http;
use crate::{
    access::{custodian_of, hidden, not_known, stored_patient, InstanceFacts, Subject},
    domain::VersionId,
    error::RecordsError,
    state::AppState,
    store::{self, Current, StoredVersion},
};
use custodian_fhir::exact_numbers;

/// Read the current version of a resource.
#[utoipa::path(
    get,
    path = "/fhir/{type}/{id}",
    tag = "fhir",
    params(("type" = String, Path), ("id" = String, Path)),
    responses(
        (status = 200, description = "The resource; ETag and Last-Modified set"),
        (status = 304, description = "If-None-Match names the current version, or it was not modified since If-Modified-Since"),
        (status = 404, description = "Unknown resource, or one the caller may not see (OperationOutcome)"),
        (status = 410, description = "Deleted")
    ),
    security(("smart" = []))
)]
pub async fn read(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let (raw_type, raw_id) = path.into_inner();
    let result = match Subset::parse(req.query_string()) {
        Ok(subset) => {
            handle(
                &raw_type,
                &raw_id,
                None,
                subset,
                Some(&req),
                &caller,
                &state,
            )
            .await
        }
        Err(e) => Err(e.into()),
    };
    super::observe(&state, "read", &raw_type, &result);
    result
}

/// Read one version of a resource.
#[utoipa::path(
    get,
    path = "/fhir/{type}/{id}/_history/{vid}",
    tag = "fhir",
    params(("type" = String, Path), ("id" = String, Path), ("vid" = String, Path)),
    responses(
        (status = 200, description = "That version"),
        (status = 404, description = "Unknown resource or version, or one the caller may not see"),
        (status = 410, description = "That version is a deletion")
    ),
    security(("smart" = []))
)]
pub async fn vread(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let (raw_type, raw_id, raw_version) = path.into_inner();
    let result = match (
        VersionId::parse(&raw_version),
        Subset::parse(req.query_string()),
    ) {
        (Ok(v), Ok(subset)) => {
            handle(&raw_type, &raw_id, Some(v), subset, None, &caller, &state).await
        }
        (Err(e), _) => Err(FhirError::NotFound(e.to_string()).into()),
        (_, Err(e)) => Err(e.into()),
    };
    super::observe(&state, "vread", &raw_type, &result);
    result
}

/// `_summary` and `_elements` of a read (other parameters are ignored, as `_format` is).
#[derive(Debug, Default)]
pub struct Subset {
    summary: Option<Summary>,
    elements: Option<Vec<String>>,
}

impl Subset {
    pub(super) fn parse(query: &str) -> Result<Self, FhirError> {
        let mut subset = Self::default();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "_summary" => {
                    subset.summary = Some(Summary::parse(&v).ok_or_else(|| {
                        FhirError::BadRequest(format!(
                            "_summary={v} is not true, text, data, count or false"
                        ))
                    })?)
                }
                "_elements" => {
                    let names: Vec<String> = v
                        .split(',')
                        .map(str::trim)
                        .filter(|e| !e.is_empty())
                        .map(str::to_string)
                        .collect();
                    if names
                        .iter()
                        .any(|e| !e.chars().all(|c| c.is_ascii_alphanumeric()))
                    {
                        return Err(FhirError::BadRequest(format!(
                            "_elements={v} is not a list of element names"
                        )));
                    }
                    subset.elements = Some(names);
                }
                _ => {}
            }
        }
        Ok(subset)
    }

    /// The body to return: `json` itself unless a subset was asked for.
    pub(super) fn apply(&self, json: String) -> Result<String, RecordsError> {
        let summary = self
            .summary
            .filter(|s| !matches!(s, Summary::False | Summary::Count));
        if summary.is_none() && self.elements.is_none() {
            return Ok(json);
        }
        // Numbers kept as stored (`exact_numbers`): a subset must not turn 60.50 into 60.5.
        let value = exact_numbers::parse(json.as_bytes())
            .map_err(|e| RecordsError::Internal(format!("a stored resource: {e}")))?;
        let subset = elements::subset(&value, summary, self.elements.as_deref());
        exact_numbers::to_string(&subset).map_err(|e| RecordsError::Internal(e.to_string()))
    }
}

/// The subject of one stored version: its own compartment (or, for a row from before versions
/// kept one, the resource's), that patient's custodian, and the facts of its body. `compartment`
/// is the compartment row (patient, custodian) when it was read with the version: the custodian
/// is then not looked up again.
pub async fn version_subject(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    resource_type: &str,
    id: &str,
    current: &Current,
    version: &StoredVersion,
    compartment: Option<(String, Option<String>)>,
) -> Result<Subject, RecordsError> {
    let patient = stored_patient(
        version
            .patient_ref
            .as_deref()
            .or(current.patient_ref.as_deref()),
    );
    let custodian = match (&patient, compartment) {
        (Some(p), Some((of, custodian))) if of == p.as_str() => {
            custodian.and_then(|c| OrganizationRef::parse(&c).ok())
        }
        (Some(p), _) => custodian_of(conn, p).await?,
        (None, _) => None,
    };
    let (instance, confidentiality) = match &version.json {
        Some(json) => {
            let value: serde_json::Value =
                serde_json::from_str(json).map_err(|e| RecordsError::Internal(e.to_string()))?;
            (
                Some(InstanceFacts::of(
                    state.registry,
                    &state.public_url,
                    resource_type,
                    &value,
                )),
                crate::domain::compartment::confidentiality_of(&value),
            )
        }
        None => (None, current.confidentiality.clone()),
    };
    Subject {
        resource_type: resource_type.to_string(),
        id: Some(id.to_string()),
        patient,
        custodian,
        confidentiality,
        instance,
    }
    .with_referrers(conn, state)
    .await
}

/// Decides the current row's compartment at type level (when there is no version to decide
/// on), so an absent version answers a hidden resource's 404.
pub async fn decide_current(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    resource_type: &str,
    current: &Current,
    interaction: Interaction,
) -> Result<(Subject, Decision), RecordsError> {
    let patient = stored_patient(current.patient_ref.as_deref());
    let custodian = match &patient {
        Some(p) => custodian_of(conn, p).await?,
        None => None,
    };
    let mut subject = Subject::of_type(resource_type, patient, custodian);
    subject.confidentiality = current.confidentiality.clone();
    let decision = state
        .kernel
        .decide(caller, interaction, &subject.target())?;
    Ok((subject, decision))
}

/// Reads version `version` (the current one when None) of a resource for `caller`: decided
/// on its own compartment and facts, the read recorded (also when refused); a hidden resource
/// is a 404 like an unknown one, a deletion a 410.
pub(super) async fn visible_version(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    rt: &str,
    id: &str,
    version: Option<VersionId>,
) -> Result<(StoredVersion, String), RecordsError> {
    let (read, event) = decide_version(state, conn, caller, rt, id, version).await?;
    state.record(conn, &[event]).await?;
    read
}

/// What a read of `rt/id` answers, and its event, not yet recorded: a read inside a
/// transaction Bundle records it with the transaction when it succeeds, and after the
/// rollback when it fails the transaction.
pub(super) async fn decide_version(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    rt: &str,
    id: &str,
    version: Option<VersionId>,
) -> Result<(Result<(StoredVersion, String), RecordsError>, AccessEvent), RecordsError> {
    // The current version (every plain read) comes in one statement with its key and custodian.
    let found = match version {
        None => store::read_current(conn, &state.cipher, rt, id)
            .await?
            .map(|read| (read.current, read.version, read.compartment)),
        Some(v) => match store::current(conn, rt, id, false).await? {
            Some(current) => {
                let stored = store::version(conn, &state.cipher, rt, id, v.get()).await;
                Some((current, stored, None))
            }
            None => None,
        },
    };
    let Some((current, stored, compartment)) = found else {
        let event = absent_event(caller, Interaction::Read, rt);
        return Ok((Err(not_known(rt, id).into()), event));
    };
    let wanted = version.map(|v| v.get()).unwrap_or(current.version);
    let stored = match stored {
        Ok(stored) => stored,
        Err(e) => {
            // A row that does not decrypt: decided at type level, recorded as an error.
            let (subject, decision) =
                decide_current(state, conn, caller, rt, &current, Interaction::Read).await?;
            let event = decision.failed_event(caller, Interaction::Read, subject.touched(0));
            return Ok((Err(e), event));
        }
    };
    let Some(stored) = stored else {
        let (subject, decision) =
            decide_current(state, conn, caller, rt, &current, Interaction::Read).await?;
        let event = decision.failed_event(caller, Interaction::Read, subject.touched(0));
        if !decision.permitted() {
            return Ok((Err(hidden(state, &decision, rt, id).into()), event));
        }
        let missing = FhirError::NotFound(format!("{rt}/{id} has no version {wanted}"));
        return Ok((Err(missing.into()), event));
    };
    let subject = version_subject(state, conn, rt, id, &current, &stored, compartment).await?;
    let decision = state
        .kernel
        .decide(caller, Interaction::Read, &subject.target())?;
    if !decision.permitted() {
        let event = decision.event(caller, Interaction::Read, subject.touched(0));
        return Ok((Err(hidden(state, &decision, rt, id).into()), event));
    }
    Ok(match stored.json.clone() {
        None => {
            let event = decision.failed_event(caller, Interaction::Read, subject.touched(0));
            let gone = FhirError::Gone(format!("{rt}/{id} was deleted"));
            (Err(gone.into()), event)
        }
        Some(json) => {
            let event = decision.event(caller, Interaction::Read, subject.touched(1));
            (Ok((stored, json)), event)
        }
    })
}

/// `preconditions`: a read's request, whose `If-None-Match` and `If-Modified-Since` are
/// answered (304) once access is decided; the read is recorded either way.
async fn handle(
    raw_type: &str,
    raw_id: &str,
    version: Option<VersionId>,
    subset: Subset,
    preconditions: Option<&HttpRequest>,
    caller: &Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let resource_type = http::parse_type(raw_type)?;
    let id = http::parse_id(raw_id)?;
    let (rt, id) = (resource_type.as_str(), id.as_str());
    let mut conn = state.connection().await?;
    let (stored, json) = visible_version(state, &mut conn, caller, rt, id, version).await?;
    // After the decision and its event: a 304 is a read, and an outsider learns nothing from
    // preconditions.
    if let Some(req) = preconditions {
        if let Some(current) = http::not_modified(req, stored.version, stored.last_updated) {
            return Ok(current);
        }
    }
    Ok(
        http::versioned(StatusCode::OK, stored.version, stored.last_updated)
            .body(subset.apply(json)?),
    )
}
