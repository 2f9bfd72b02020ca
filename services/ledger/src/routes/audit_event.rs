//! `GET /fhir/AuditEvent` (search) and `GET /fhir/AuditEvent/{id}` (read): the log as FHIR R4
//! `AuditEvent`s, one per leaf. The id is the access event's id: stable, unique in the log (an
//! event is appended once), and what anomaly's `DetectedIssue.implicated` names; the leaf index
//! is in the ledger-leaf extension.
//!
//! Who sees what is the ledger's one rule ([`Viewer`]), as for `/ledger/accesses`: auditors and
//! administrators every entry, a patient the entries about her (naming another patient is
//! refused), a practitioner the entries where they were the actor. Answers are FHIR: a
//! searchset Bundle, an `AuditEvent`, or an `OperationOutcome` with the error's status.
//!
//! Reading this view is not itself logged as an access event, as `/ledger/accesses` is not:
//! the log holds accesses to clinical data, and the audit trail is not clinical data; an event
//! per read of the log would also make every audit read grow the log it reads.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_access::{reference::is_fhir_id, Caller};
use custodian_events::AccessEvent;
use custodian_fhir::{bundle::Entry, http::Prefer, FhirError, FHIR_JSON};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{
    audit_search,
    domain::{
        audit_event::{audit_event, LeafInfo},
        audit_search::{AuditSearch, Cursor},
        Viewer,
    },
    routes::b64,
    service::LedgerService,
};

/// The public base URL links are built on (`PUBLIC_URL`, the gateway's address).
#[derive(Debug, Clone)]
pub struct PublicUrl(pub String);

fn db<E: std::fmt::Display>(e: E) -> FhirError {
    FhirError::Internal(format!("database: {e}"))
}

fn viewer(caller: &Caller) -> Result<Viewer, FhirError> {
    Viewer::of(caller).map_err(|d| FhirError::Forbidden(d.explanation))
}

fn resource(index: i64, leaf_hash: &[u8], payload: &str, base: &str) -> Result<Value, FhirError> {
    let event = AccessEvent::parse(payload)
        .map_err(|e| FhirError::Internal(format!("leaf {index} does not parse: {e}")))?;
    let hash = b64(leaf_hash);
    Ok(audit_event(
        &event,
        LeafInfo {
            index: index as u64,
            leaf_hash_base64: &hash,
        },
        base,
    ))
}

fn search_url(base: &str, params: &[(String, String)], cursor: Option<Cursor>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    if let Some(cursor) = cursor {
        query.append_pair("_cursor", &cursor.encode());
    }
    let query = query.finish();
    if query.is_empty() {
        format!("{base}/fhir/AuditEvent")
    } else {
        format!("{base}/fhir/AuditEvent?{query}")
    }
}

fn fhir_json(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(FHIR_JSON)
        .body(body.to_string())
}

/// Search the log as `AuditEvent`s.
#[utoipa::path(
    get,
    path = "/fhir/AuditEvent", operation_id = "search_audit_events",
    tag = "fhir",
    params(
        ("patient" = Option<String>, Query, description = "`Patient/<id>` or `<id>`; commas OR, repeats AND"),
        ("agent" = Option<String>, Query, description = "the user: `Practitioner/<id>`, `User/<id>` or the user id"),
        ("date" = Option<String>, Query, description = "`recorded`, with a prefix (eq ne lt gt le ge sa eb) and the value's precision; repeat for a range"),
        ("action" = Option<String>, Query, description = "C, R, U, D or E"),
        ("outcome" = Option<String>, Query, description = "0, 4, 8 or 12"),
        ("_count" = Option<i64>, Query, description = "page size (default 50; above 1000 lowered to 1000)"),
        ("_sort" = Option<String>, Query, description = "`date` or `-date` (default: newest appended first)"),
        ("_cursor" = Option<String>, Query, description = "from a `next` link"),
        ("Prefer" = Option<String>, Header, description = "`handling=strict` refuses unknown parameters (default: ignored and reported)"),
    ),
    security(("smart" = [])),
    responses(
        (status = 200, description = "searchset Bundle of AuditEvent (application/fhir+json)"),
        (status = 400, description = "OperationOutcome: a bad parameter"),
        (status = 401, description = "no valid token"),
        (status = 403, description = "OperationOutcome: not the caller's to see"),
    )
)]
pub async fn search(
    req: HttpRequest,
    caller: Caller,
    ledger: web::Data<LedgerService>,
    base: web::Data<PublicUrl>,
) -> Result<HttpResponse, FhirError> {
    let viewer = viewer(&caller)?;
    let pairs = form_urlencoded::parse(req.query_string().as_bytes()).into_owned();
    let search = AuditSearch::parse(pairs, Prefer::of(&req).handling)?;
    if let Viewer::Patient(own) = &viewer {
        if search.patients.iter().flatten().any(|asked| asked != own) {
            return Err(FhirError::Forbidden(
                "patients see only accesses to their own data".into(),
            ));
        }
    }

    let mut conn = ledger.pool().get().await.map_err(db)?;
    let mut rows = audit_search::search(&mut conn, &viewer, &search)
        .await
        .map_err(db)?;
    drop(conn);
    let next = if rows.len() as i64 > search.count {
        rows.truncate(search.count as usize);
        rows.last()
            .map(|r| Cursor::after(search.sort, r.idx, r.time))
    } else {
        None
    };

    let base = base.0.as_str();
    let mut entries = Vec::with_capacity(rows.len() + 1);
    for row in &rows {
        let resource = resource(row.idx, &row.leaf_hash, &row.payload, base)?;
        entries.push(json!({
            "fullUrl": format!("{base}/fhir/AuditEvent/{}", resource["id"].as_str().unwrap_or_default()),
            "resource": resource,
            "search": {"mode": "match"},
        }));
    }
    if let Some(ignored) = Entry::ignored_parameters(&search.ignored) {
        entries
            .push(serde_json::to_value(ignored).map_err(|e| FhirError::Internal(e.to_string()))?);
    }
    let mut link = vec![json!({
        "relation": "self",
        "url": search_url(base, &search.link_params, search.cursor),
    })];
    if let Some(after) = next {
        link.push(json!({
            "relation": "next",
            "url": search_url(base, &search.link_params, Some(after)),
        }));
    }
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": link,
        "entry": entries,
    });
    Ok(fhir_json(StatusCode::OK, &bundle))
}

/// One leaf as an `AuditEvent`; the id is the access event's.
#[utoipa::path(
    get,
    path = "/fhir/AuditEvent/{id}", operation_id = "read_audit_event",
    tag = "fhir",
    params(("id" = String, Path, description = "the access event's id (a UUID)")),
    security(("smart" = [])),
    responses(
        (status = 200, description = "AuditEvent (application/fhir+json)"),
        (status = 400, description = "OperationOutcome: not a FHIR id"),
        (status = 403, description = "OperationOutcome: not the caller's to see"),
        (status = 404, description = "OperationOutcome: no such entry"),
    )
)]
pub async fn read(
    caller: Caller,
    ledger: web::Data<LedgerService>,
    base: web::Data<PublicUrl>,
    id: web::Path<String>,
) -> Result<HttpResponse, FhirError> {
    let viewer = viewer(&caller)?;
    let id = id.into_inner();
    if !is_fhir_id(&id) {
        return Err(FhirError::BadRequest(format!(
            "{:?} is not a FHIR id",
            id.chars().take(80).collect::<String>()
        )));
    }
    let not_found = || FhirError::NotFound(format!("AuditEvent/{id} is not known"));
    // Every event id is a valid FHIR id; any other valid id names nothing.
    let event_id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let mut conn = ledger.pool().get().await.map_err(db)?;
    let row = audit_search::by_event_id(&mut conn, event_id)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    drop(conn);
    if !viewer.can_see(row.patient_ref.as_deref(), &row.actor_id) {
        return Err(FhirError::Forbidden(
            "this entry is not yours to see".into(),
        ));
    }
    let body = resource(row.idx, &row.leaf_hash, &row.payload, &base.0)?;
    Ok(fhir_json(StatusCode::OK, &body))
}

/// Anything but reading: the log is append-only, and only the ledger appends.
pub async fn not_allowed() -> Result<HttpResponse, FhirError> {
    Err(FhirError::MethodNotAllowed(
        "AuditEvent is read-only: the log is append-only".into(),
    ))
}
