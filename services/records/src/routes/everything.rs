//! `Patient/{id}/$everything` (GET, or POST with a `Parameters` body): the patient's
//! compartment, each resource decided on its own facts (Bundle `searchset`). A patient the
//! caller may not see answers like an unknown one.
//!
//! Parameters (patient-operation-everything.html): `_since` (resources last updated at or
//! after it), `_type` (comma-separated, repeatable), `_count` (page size). Pages are keyset
//! pages over the compartment in (type, id) order: `_cursor=Type/id` is the last resource a
//! page consumed. A page holds `_count` resources the caller may see; hidden ones are passed
//! over (their denials recorded on the page that passed them), and a `next` link is given only
//! when one more resource the caller may see follows, so links tell nothing about hidden data.
//! `start` and `end` (care dates) keep resources whose `date` parameter (the data period
//! consents name) overlaps them, and those without one (the Patient, a Condition ...).
//! Unknown parameters are ignored and named in an `outcome` entry (refused under
//! `Prefer: handling=strict`).
//! Events: one per (type, patient, basis, consents) on the page, as searches have.

use std::collections::HashMap;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use custodian_access::{
    absent_event, Caller, Decision, Interaction, PatientRef, Touched, Visibility,
};
use custodian_fhir::{
    bundle::{page_size, page_url, Ignored, DEFAULT_COUNT},
    dates::parse_range,
    http::{Handling, Prefer},
    FhirError,
};

use super::{
    bundle::{raw, Bundle, Entry, Link, Search},
    http, parameters,
    read::{decide_current, version_subject},
    search::{decide_row, Tally},
};
use crate::{
    access::{custodians_of, hidden, not_known, refused, stored_patient, Subject},
    domain::{is_valid_id, ResourceType},
    error::RecordsError,
    state::AppState,
    store::{self, CareDates, CompartmentPage, Current},
};

/// What an `$everything` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Asked {
    since: Option<DateTime<Utc>>,
    types: Option<Vec<String>>,
    count: usize,
    /// `start` and `end` (care dates), as given and as the range they cover.
    start: Option<(String, DateTime<Utc>)>,
    end: Option<(String, DateTime<Utc>)>,
    /// Where the page starts (`_cursor`, from a `next` link): see [`instance_cursor`] and
    /// [`type_cursor`].
    cursor: Option<String>,
    ignored: Vec<Ignored>,
}

impl Asked {
    /// Parses the operation's parameters (from the URL, or a `Parameters` body as text).
    pub fn parse(pairs: &[(String, String)], handling: Handling) -> Result<Self, FhirError> {
        let mut asked = Asked {
            since: None,
            types: None,
            count: DEFAULT_COUNT,
            start: None,
            end: None,
            cursor: None,
            ignored: Vec::new(),
        };
        for (name, value) in pairs {
            match name.as_str() {
                "_since" => {
                    let (start, _) = parse_range(value).ok_or_else(|| {
                        FhirError::BadRequest(format!("_since={value} is not an instant"))
                    })?;
                    asked.since = Some(start);
                }
                "_type" => {
                    let types = asked.types.get_or_insert_with(Vec::new);
                    for t in value.split(',').map(str::trim) {
                        let t = ResourceType::parse(t)
                            .map_err(|e| FhirError::BadRequest(format!("_type={value}: {e}")))?;
                        if !types.iter().any(|x| x == t.as_str()) {
                            types.push(t.as_str().to_string());
                        }
                    }
                    types.sort();
                }
                "_count" => {
                    asked.count = page_size(value)?;
                    if asked.count == 0 {
                        return Err(FhirError::BadRequest(
                            "_count=0 is not supported by $everything: ask for at least one resource a page".into(),
                        ));
                    }
                }
                "start" | "end" => {
                    let (from, to) = parse_range(value).ok_or_else(|| {
                        FhirError::BadRequest(format!("{name}={value} is not a date"))
                    })?;
                    if name == "start" {
                        asked.start = Some((value.clone(), from));
                    } else {
                        asked.end = Some((value.clone(), to));
                    }
                }
                "_cursor" => asked.cursor = Some(value.clone()),
                "_format" => {}
                other => {
                    let reason = "not a parameter of $everything";
                    if handling == Handling::Strict {
                        return Err(FhirError::BadRequest(format!("{other}: {reason}")));
                    }
                    if !asked.ignored.iter().any(|i| i.name == other) {
                        asked.ignored.push(Ignored {
                            name: other.to_string(),
                            reason: reason.to_string(),
                        });
                    }
                }
            }
        }
        Ok(asked)
    }

    /// The parameters of this page's links (without the cursor).
    fn link_params(&self) -> Vec<(String, String)> {
        let mut params = Vec::new();
        if let Some(since) = self.since {
            params.push((
                "_since".to_string(),
                custodian_fhir::dates::format_instant(since),
            ));
        }
        if let Some(types) = &self.types {
            params.push(("_type".to_string(), types.join(",")));
        }
        for (name, given) in [("start", &self.start), ("end", &self.end)] {
            if let Some((raw, _)) = given {
                params.push((name.to_string(), raw.clone()));
            }
        }
        params.push(("_count".to_string(), self.count.to_string()));
        params
    }
}

/// Everything in a patient's record that the caller may see.
#[utoipa::path(
    get,
    path = "/fhir/Patient/{id}/$everything",
    tag = "fhir",
    params(
        ("id" = String, Path),
        ("_since" = Option<String>, Query, description = "Only resources last updated at or after this instant"),
        ("_type" = Option<String>, Query, description = "Only these resource types (comma-separated)"),
        ("start" = Option<String>, Query, description = "Care dates from (resources whose date parameter ends before it are left out)"),
        ("end" = Option<String>, Query, description = "Care dates until (resources whose date parameter starts after it are left out)"),
        ("_count" = Option<usize>, Query, description = "Page size (default 50)"),
        ("_cursor" = Option<String>, Query, description = "Where the page starts (from a next link)")
    ),
    responses(
        (status = 200, description = "searchset Bundle of what the caller may see, paged"),
        (status = 400, description = "Malformed parameter"),
        (status = 404, description = "Unknown patient, or one the caller may not see"),
        (status = 410, description = "Deleted patient")
    ),
    security(("smart" = []))
)]
pub async fn everything(
    req: HttpRequest,
    path: web::Path<String>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let pairs = query_pairs(&req);
    let result = match Asked::parse(&pairs, Prefer::of(&req).handling) {
        Ok(asked) => handle(&path, asked, caller, &state).await,
        Err(e) => Err(e.into()),
    };
    super::observe(&state, "everything", "Patient", &result);
    result
}

/// `$everything` with its parameters in a `Parameters` body (and the URL).
#[utoipa::path(
    post,
    path = "/fhir/Patient/{id}/$everything",
    tag = "fhir",
    params(("id" = String, Path)),
    request_body(content = serde_json::Value, content_type = "application/fhir+json", description = "Parameters: _since (valueInstant), _type (valueCode, repeatable), start and end (valueDate), _count (valueInteger)"),
    responses(
        (status = 200, description = "searchset Bundle of what the caller may see, paged"),
        (status = 400, description = "Malformed Parameters"),
        (status = 404, description = "Unknown patient, or one the caller may not see")
    ),
    security(("smart" = []))
)]
pub async fn everything_post(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let asked = (|| {
        http::require_json(&req)?;
        let mut pairs = query_pairs(&req);
        for p in parameters::parse(&body)? {
            let text = p.as_text()?;
            pairs.push((p.name, text));
        }
        Asked::parse(&pairs, Prefer::of(&req).handling)
    })();
    let result = match asked {
        Ok(asked) => handle(&path, asked, caller, &state).await,
        Err(e) => Err(e.into()),
    };
    super::observe(&state, "everything", "Patient", &result);
    result
}

fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

/// A position in a compartment: the last (type, id) a page consumed.
type Position = (String, String);

/// `_cursor` of a patient's `$everything`: `Type/id`.
fn instance_cursor(raw: &str) -> Result<Position, FhirError> {
    raw.split_once('/')
        .filter(|(t, id)| ResourceType::parse(t).is_ok() && is_valid_id(id))
        .map(|(t, id)| (t.to_string(), id.to_string()))
        .ok_or_else(|| {
            FhirError::BadRequest(format!(
                "_cursor={raw} is not a position of a page (Type/id)"
            ))
        })
}

/// `_cursor` of the type-level `$everything`: `patient` (from the start of her compartment)
/// or `patient/Type/id`.
fn type_cursor(raw: &str) -> Result<(String, Option<Position>), FhirError> {
    let bad = || {
        FhirError::BadRequest(format!(
            "_cursor={raw} is not a position of a page (patient id, or patient id/Type/id)"
        ))
    };
    let (patient, rest) = match raw.split_once('/') {
        Some((p, rest)) => (p, Some(instance_cursor(rest).map_err(|_| bad())?)),
        None => (raw, None),
    };
    if !is_valid_id(patient) {
        return Err(bad());
    }
    Ok((patient.to_string(), rest))
}

/// `start`/`end` as the range of care dates a page is restricted to.
fn care_dates(asked: &Asked) -> Option<CareDates> {
    let (start, end) = (asked.start.as_ref(), asked.end.as_ref());
    (start.is_some() || end.is_some()).then(|| (start.map(|s| s.1), end.map(|e| e.1)))
}

/// How filling a page from one compartment ended.
enum Filled {
    /// The page is full and one more resource the caller may see follows; the position of
    /// the last resource consumed from this compartment (None: none was).
    Full(Option<Position>),
    /// The compartment has nothing more.
    Exhausted,
}

/// Fills `entries` from a patient's compartment after `after`, up to `asked.count` resources
/// the caller may see, each decided on its own facts. Hidden resources passed over are
/// recorded in `tally` (they are consumed); a visible resource beyond the page is decided but
/// neither returned nor recorded: the next page starts with it.
#[allow(clippy::too_many_arguments)]
async fn fill(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    patient: &str,
    asked: &Asked,
    mut after: Option<Position>,
    entries: &mut Vec<Entry>,
    tally: &mut Tally,
) -> Result<Filled, RecordsError> {
    let mut consumed: Option<Position> = None;
    loop {
        let limit = asked.count.saturating_sub(entries.len()) + 1;
        let rows = store::compartment_page(
            conn,
            &CompartmentPage {
                patient_ref: patient,
                types: asked.types.as_deref(),
                since: asked.since,
                after: after.as_ref().map(|(t, id)| (t.as_str(), id.as_str())),
                care: care_dates(asked),
                limit: i64::try_from(limit).unwrap_or(i64::MAX),
            },
        )
        .await?;
        let exhausted = rows.len() < limit;
        let Some((t, id, _)) = rows.last() else {
            return Ok(Filled::Exhausted);
        };
        after = Some((t.clone(), id.clone()));
        // The rows come in type order: decrypt and decide one type's run at a time.
        let mut runs: Vec<(String, Vec<(String, Current)>)> = Vec::new();
        for (t, id, row) in rows {
            match runs.last_mut() {
                Some((last, run)) if *last == t => run.push((id, row)),
                _ => runs.push((t, vec![(id, row)])),
            }
        }
        for (t, run) in runs {
            let versions: Vec<(String, i64)> =
                run.iter().map(|(id, c)| (id.clone(), c.version)).collect();
            let mut bodies = store::current_bodies(conn, &state.cipher, &t, &versions).await?;
            let patients: Vec<PatientRef> = run
                .iter()
                .filter_map(|(_, c)| stored_patient(c.patient_ref.as_deref()))
                .collect();
            let custodians: HashMap<_, _> =
                custodians_of(conn, &patients.iter().collect::<Vec<_>>()).await?;
            for (id, current) in run {
                let Some(json) = bodies.remove(&id) else {
                    consumed = Some((t.clone(), id));
                    continue;
                };
                let (subject, decision) = decide_row(
                    Interaction::Search,
                    state,
                    conn,
                    caller,
                    &t,
                    &id,
                    &current,
                    &json,
                    &custodians,
                )
                .await?;
                if decision.permitted() {
                    if entries.len() >= asked.count {
                        return Ok(Filled::Full(consumed));
                    }
                    tally.permit(&subject, &decision);
                    entries.push(Entry {
                        full_url: state.full_url(&t, &id),
                        resource: raw(json),
                        search: Some(Search { mode: "match" }),
                        request: None,
                        response: None,
                    });
                } else {
                    tally.deny(&subject, &decision);
                }
                consumed = Some((t.clone(), id));
            }
        }
        if exhausted {
            return Ok(Filled::Exhausted);
        }
    }
}

/// The decision on a patient for her `$everything`: on her own facts, as a read of her would
/// be (a consent of hers may depend on them); a deleted one at type level. None when she does
/// not exist.
async fn decide_patient(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    id: &str,
) -> Result<Option<(Subject, Decision, bool)>, RecordsError> {
    let Some(current) = store::current(conn, "Patient", id, false).await? else {
        return Ok(None);
    };
    let stored = store::version(conn, &state.cipher, "Patient", id, current.version).await?;
    let (subject, decision) = match stored {
        Some(version) if version.json.is_some() => {
            let subject =
                version_subject(state, conn, "Patient", id, &current, &version, None).await?;
            let decision = state
                .kernel
                .decide(caller, Interaction::Search, &subject.target())?;
            (subject, decision)
        }
        _ => {
            decide_current(
                state,
                conn,
                caller,
                "Patient",
                &current,
                Interaction::Search,
            )
            .await?
        }
    };
    Ok(Some((subject, decision, current.deleted)))
}

/// The searchset of one page, its links carrying `cursor`s.
fn searchset(
    state: &AppState,
    path: &str,
    asked: &Asked,
    next: Option<String>,
    mut entries: Vec<Entry>,
) -> Result<HttpResponse, RecordsError> {
    let with_cursor = |cursor: Option<&String>| {
        let mut params = asked.link_params();
        if let Some(c) = cursor {
            params.push(("_cursor".to_string(), c.clone()));
        }
        page_url(&state.public_url, path, &params)
    };
    let mut link = vec![Link {
        relation: "self",
        url: with_cursor(asked.cursor.as_ref()),
    }];
    if let Some(next) = &next {
        link.push(Link {
            relation: "next",
            url: with_cursor(Some(next)),
        });
    }
    let whole = asked.cursor.is_none() && next.is_none();
    let visible = entries.len();
    entries.extend(Entry::ignored_parameters(&asked.ignored));
    let bundle = Bundle::new("searchset", visible, link, entries);
    // `total` only when this page is the whole answer (counting every page would decide all).
    let bundle = if whole {
        bundle
    } else {
        bundle.without_total()
    };
    let body = serde_json::to_string(&bundle).map_err(|e| RecordsError::Internal(e.to_string()))?;
    Ok(http::fhir(StatusCode::OK).body(body))
}

async fn handle(
    raw_id: &str,
    asked: Asked,
    caller: Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let id = http::parse_id(raw_id)?;
    let after = asked.cursor.as_deref().map(instance_cursor).transpose()?;
    let mut conn = state.connection().await?;
    let Some((subject, decision, deleted)) =
        decide_patient(state, &mut conn, &caller, id.as_str()).await?
    else {
        state
            .record(
                &mut conn,
                &[absent_event(&caller, Interaction::Search, "Patient")],
            )
            .await?;
        return Err(not_known("Patient", id.as_str()).into());
    };
    if !decision.permitted() {
        let event = decision.event(&caller, Interaction::Search, subject.touched(0));
        state.record(&mut conn, &[event]).await?;
        return Err(hidden(state, &decision, "Patient", id.as_str()).into());
    }
    if deleted {
        let event = decision.failed_event(&caller, Interaction::Search, subject.touched(0));
        state.record(&mut conn, &[event]).await?;
        return Err(FhirError::Gone(format!("Patient/{id} was deleted")).into());
    }
    let patient = format!("Patient/{id}");
    let mut entries = Vec::new();
    let mut tally = Tally::default();
    let filled = fill(
        state,
        &mut conn,
        &caller,
        &patient,
        &asked,
        after.clone(),
        &mut entries,
        &mut tally,
    )
    .await?;
    let next = match filled {
        Filled::Full(consumed) => consumed.or(after).map(|(t, id)| format!("{t}/{id}")),
        Filled::Exhausted => None,
    };
    let mut events = if tally.is_empty() {
        // Nothing on this page: the operation itself is recorded.
        vec![decision.event(&caller, Interaction::Search, subject.touched(0))]
    } else {
        Vec::new()
    };
    events.extend(tally.events(&caller));
    state.record(&mut conn, &events).await?;
    searchset(
        state,
        &format!("fhir/Patient/{id}/$everything"),
        &asked,
        next,
        entries,
    )
}

/// Everything of every patient the caller may see.
#[utoipa::path(
    get,
    path = "/fhir/Patient/$everything",
    tag = "fhir",
    params(
        ("_since" = Option<String>, Query, description = "Only resources last updated at or after this instant"),
        ("_type" = Option<String>, Query, description = "Only these resource types (comma-separated)"),
        ("start" = Option<String>, Query, description = "Care dates from (resources whose date parameter ends before it are left out)"),
        ("end" = Option<String>, Query, description = "Care dates until (resources whose date parameter starts after it are left out)"),
        ("_count" = Option<usize>, Query, description = "Page size (default 50)"),
        ("_cursor" = Option<String>, Query, description = "Where the page starts (from a next link)")
    ),
    responses(
        (status = 200, description = "searchset Bundle of what the caller may see of every patient it may see, paged by patient"),
        (status = 400, description = "Malformed parameter"),
        (status = 403, description = "The caller may not search patients at all")
    ),
    security(("smart" = []))
)]
pub async fn everything_all(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let pairs = query_pairs(&req);
    let result = match Asked::parse(&pairs, Prefer::of(&req).handling) {
        Ok(asked) => handle_all(asked, caller, &state).await,
        Err(e) => Err(e.into()),
    };
    super::observe(&state, "everything", "Patient", &result);
    result
}

/// How many patients one query of the type level reads.
const PATIENT_BATCH: i64 = 100;

/// The type level: the patients the kernel's scope admits, in id order, each decided as for
/// her own `$everything` (those it denies are recorded and passed over), then her compartment.
async fn handle_all(
    asked: Asked,
    caller: Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let start = asked.cursor.as_deref().map(type_cursor).transpose()?;
    let mut conn = state.connection().await?;
    let (scope, type_decision) = match state.kernel.visibility(&caller, "Patient")? {
        Visibility::Visible { scope, decision } => (scope, decision),
        Visibility::Denied(decision) => {
            let event = decision.event(&caller, Interaction::Search, Touched::new("Patient", None));
            state.record(&mut conn, &[event]).await?;
            return Err(refused(state, &decision).into());
        }
    };
    let excluded: Vec<String> = scope
        .excluded
        .iter()
        .map(|p| p.as_str().to_string())
        .collect();
    let named: Vec<String> = scope
        .included
        .iter()
        .chain(scope.conditional.iter().map(|c| &c.patient))
        .map(|p| p.as_str().to_string())
        .collect();
    let mut entries = Vec::new();
    let mut tally = Tally::default();
    // The cursor's patient, and where in her compartment the page starts.
    let (mut from, mut after) = match start {
        Some((patient, after)) => {
            let patient = format!("Patient/{patient}");
            (Some((patient.clone(), true)), after.map(|a| (patient, a)))
        }
        None => (None, None),
    };
    let mut next: Option<String> = None;
    'patients: loop {
        let patients = store::visible_patients(
            &mut conn,
            &store::VisiblePatients {
                custodian: scope.custodian.as_ref().map(|c| c.as_str()),
                excluded: &excluded,
                named: &named,
                from: from.as_ref().map(|(p, inclusive)| (p.as_str(), *inclusive)),
                limit: PATIENT_BATCH,
            },
        )
        .await?;
        let done = patients.len() < usize::try_from(PATIENT_BATCH).unwrap_or(usize::MAX);
        for patient in &patients {
            let Some(id) = patient.strip_prefix("Patient/") else {
                continue;
            };
            // Only in the cursor's patient (were she no longer visible, the next one starts
            // from her beginning).
            let resume = after
                .take()
                .filter(|(p, _)| p == patient)
                .map(|(_, position)| position);
            let Some((subject, decision, deleted)) =
                decide_patient(state, &mut conn, &caller, id).await?
            else {
                continue;
            };
            if !decision.permitted() {
                tally.deny(&subject, &decision);
                continue;
            }
            if deleted {
                continue;
            }
            let filled = fill(
                state,
                &mut conn,
                &caller,
                patient,
                &asked,
                resume.clone(),
                &mut entries,
                &mut tally,
            )
            .await?;
            if let Filled::Full(consumed) = filled {
                next = Some(match consumed.or(resume) {
                    Some((t, rid)) => format!("{id}/{t}/{rid}"),
                    None => id.to_string(),
                });
                break 'patients;
            }
        }
        match patients.last() {
            Some(last) if !done => from = Some((last.clone(), false)),
            _ => break,
        }
    }
    let mut events = if tally.is_empty() {
        vec![type_decision.event(&caller, Interaction::Search, Touched::new("Patient", None))]
    } else {
        Vec::new()
    };
    events.extend(tally.events(&caller));
    state.record(&mut conn, &events).await?;
    searchset(state, "fhir/Patient/$everything", &asked, next, entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
        raw.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parameters_of_everything() {
        let asked = Asked::parse(
            &pairs(&[
                ("_type", "Observation,Condition"),
                ("_type", "Observation"),
                ("_count", "2"),
                ("_since", "2020-01-01T00:00:00Z"),
            ]),
            Handling::Lenient,
        )
        .unwrap();
        assert_eq!(
            asked.types.as_deref(),
            Some(&["Condition".to_string(), "Observation".to_string()][..])
        );
        assert_eq!(asked.count, 2);
        assert_eq!(
            instance_cursor("Condition/c1").unwrap(),
            ("Condition".to_string(), "c1".to_string())
        );
        assert!(instance_cursor("x").is_err() && instance_cursor("Observation/a b").is_err());
        assert_eq!(type_cursor("alice").unwrap(), ("alice".to_string(), None));
        assert_eq!(
            type_cursor("alice/Condition/c1").unwrap().1,
            Some(("Condition".to_string(), "c1".to_string()))
        );
        assert!(type_cursor("a b").is_err() && type_cursor("alice/Nope/x").is_err());
        assert!(asked.since.is_some());
        for bad in [
            ("_type", "Nope"),
            ("_count", "-1"),
            ("_count", "0"),
            ("_since", "yesterday"),
        ] {
            assert!(
                Asked::parse(&pairs(&[bad]), Handling::Lenient).is_err(),
                "{bad:?}"
            );
        }
        let lenient = Asked::parse(&pairs(&[("nope", "2020")]), Handling::Lenient).unwrap();
        assert_eq!(lenient.ignored.len(), 1);
        assert!(Asked::parse(&pairs(&[("nope", "2020")]), Handling::Strict).is_err());
        let care = Asked::parse(
            &pairs(&[("start", "2020"), ("end", "2020-06")]),
            Handling::Strict,
        )
        .unwrap();
        let (start, end) = care_dates(&care).unwrap();
        assert_eq!(start.unwrap().to_rfc3339(), "2020-01-01T00:00:00+00:00");
        assert_eq!(end.unwrap().to_rfc3339(), "2020-07-01T00:00:00+00:00");
        assert!(Asked::parse(&pairs(&[("end", "June")]), Handling::Lenient).is_err());
        assert_eq!(
            Asked::parse(&[], Handling::Lenient).unwrap().count,
            DEFAULT_COUNT
        );
    }
}
