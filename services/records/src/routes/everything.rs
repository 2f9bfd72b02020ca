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
//! `start` and `end` (care dates) are not supported: ignored and named in an `outcome` entry
//! (or refused under `Prefer: handling=strict`), as unknown parameters are.
//! Events: one per (type, patient, basis, consents) on the page, as searches have.

use std::collections::HashMap;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use custodian_access::{absent_event, Caller, Interaction, PatientRef};
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
    access::{custodians_of, hidden, not_known, stored_patient},
    domain::{is_valid_id, ResourceType},
    error::RecordsError,
    state::AppState,
    store::{self, CompartmentPage, Current},
};

/// What an `$everything` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Asked {
    since: Option<DateTime<Utc>>,
    types: Option<Vec<String>>,
    count: usize,
    /// The last (type, id) the previous page consumed.
    cursor: Option<(String, String)>,
    ignored: Vec<Ignored>,
}

impl Asked {
    /// Parses the operation's parameters (from the URL, or a `Parameters` body as text).
    pub fn parse(pairs: &[(String, String)], handling: Handling) -> Result<Self, FhirError> {
        let mut asked = Asked {
            since: None,
            types: None,
            count: DEFAULT_COUNT,
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
                "_cursor" => {
                    let cursor = value
                        .split_once('/')
                        .filter(|(t, id)| ResourceType::parse(t).is_ok() && is_valid_id(id))
                        .ok_or_else(|| {
                            FhirError::BadRequest(format!(
                                "_cursor={value} is not a position of a page (Type/id)"
                            ))
                        })?;
                    asked.cursor = Some((cursor.0.to_string(), cursor.1.to_string()));
                }
                "_format" => {}
                other => {
                    let reason = match other {
                        "start" | "end" => "care date ranges are not supported by $everything",
                        _ => "not a parameter of $everything",
                    };
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
        ("_count" = Option<usize>, Query, description = "Page size (default 50)"),
        ("_cursor" = Option<String>, Query, description = "Where the page starts (from a next link)")
    ),
    responses(
        (status = 200, description = "searchset Bundle of what the caller may see, paged"),
        (status = 400, description = "Malformed parameter"),
        (status = 404, description = "Unknown patient, or one the caller may not see"),
        (status = 410, description = "Deleted patient")
    ),
    security(("bearer" = []))
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
    request_body(content = serde_json::Value, content_type = "application/fhir+json", description = "Parameters: _since (valueInstant), _type (valueCode, repeatable), _count (valueInteger)"),
    responses(
        (status = 200, description = "searchset Bundle of what the caller may see, paged"),
        (status = 400, description = "Malformed Parameters"),
        (status = 404, description = "Unknown patient, or one the caller may not see")
    ),
    security(("bearer" = []))
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

/// One page: up to `count` resources the caller may see, the position of the last resource
/// it consumed, and whether another visible resource follows.
struct Page {
    entries: Vec<Entry>,
    tally: Tally,
    next: Option<(String, String)>,
}

async fn page(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    patient: &str,
    asked: &Asked,
) -> Result<Page, RecordsError> {
    let mut entries = Vec::new();
    let mut tally = Tally::default();
    let mut after = asked.cursor.clone();
    let mut consumed: Option<(String, String)> = None;
    loop {
        let limit = asked.count - entries.len() + 1;
        let rows = store::compartment_page(
            conn,
            &CompartmentPage {
                patient_ref: patient,
                types: asked.types.as_deref(),
                since: asked.since,
                after: after.as_ref().map(|(t, id)| (t.as_str(), id.as_str())),
                limit: i64::try_from(limit).unwrap_or(i64::MAX),
            },
        )
        .await?;
        let exhausted = rows.len() < limit;
        let Some((t, id, _)) = rows.last() else {
            break;
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
                let (subject, decision) =
                    decide_row(state, conn, caller, &t, &id, &current, &json, &custodians).await?;
                if decision.permitted() {
                    if entries.len() == asked.count {
                        // One more the caller may see: the next page starts with it. It is
                        // neither returned nor recorded here.
                        return Ok(Page {
                            entries,
                            tally,
                            next: consumed,
                        });
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
            break;
        }
    }
    Ok(Page {
        entries,
        tally,
        next: None,
    })
}

async fn handle(
    raw_id: &str,
    asked: Asked,
    caller: Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let id = http::parse_id(raw_id)?;
    let mut conn = state.connection().await?;
    let Some(current) = store::current(&mut conn, "Patient", id.as_str(), false).await? else {
        state
            .record(
                &mut conn,
                &[absent_event(&caller, Interaction::Search, "Patient")],
            )
            .await?;
        return Err(not_known("Patient", id.as_str()).into());
    };
    // The Patient is decided on her own facts, as a read of her would be (a consent of hers
    // may depend on them); a deleted one at type level.
    let stored = store::version(
        &mut conn,
        &state.cipher,
        "Patient",
        id.as_str(),
        current.version,
    )
    .await?;
    let (subject, decision) = match stored {
        Some(version) if version.json.is_some() => {
            let subject =
                version_subject(state, &mut conn, "Patient", id.as_str(), &current, &version)
                    .await?;
            let decision = state
                .kernel
                .decide(&caller, Interaction::Search, &subject.target())?;
            (subject, decision)
        }
        _ => {
            decide_current(
                state,
                &mut conn,
                &caller,
                "Patient",
                &current,
                Interaction::Search,
            )
            .await?
        }
    };
    if !decision.permitted() {
        let event = decision.event(&caller, Interaction::Search, subject.touched(0));
        state.record(&mut conn, &[event]).await?;
        return Err(hidden(state, &decision, "Patient", id.as_str()).into());
    }
    if current.deleted {
        let event = decision.failed_event(&caller, Interaction::Search, subject.touched(0));
        state.record(&mut conn, &[event]).await?;
        return Err(FhirError::Gone(format!("Patient/{id} was deleted")).into());
    }
    let patient = format!("Patient/{id}");
    let Page {
        mut entries,
        tally,
        next,
    } = page(state, &mut conn, &caller, &patient, &asked).await?;
    let mut events = if tally.is_empty() {
        // Nothing on this page: the operation itself is recorded.
        vec![decision.event(&caller, Interaction::Search, subject.touched(0))]
    } else {
        Vec::new()
    };
    events.extend(tally.events(&caller));
    state.record(&mut conn, &events).await?;

    let base = state.public_url.as_str();
    let path = format!("fhir/Patient/{id}/$everything");
    let with_cursor = |cursor: Option<&(String, String)>| {
        let mut params = asked.link_params();
        if let Some((t, id)) = cursor {
            params.push(("_cursor".to_string(), format!("{t}/{id}")));
        }
        page_url(base, &path, &params)
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
                ("_cursor", "Condition/c1"),
            ]),
            Handling::Lenient,
        )
        .unwrap();
        assert_eq!(
            asked.types.as_deref(),
            Some(&["Condition".to_string(), "Observation".to_string()][..])
        );
        assert_eq!(asked.count, 2);
        assert_eq!(asked.cursor, Some(("Condition".into(), "c1".into())));
        assert!(asked.since.is_some());
        for bad in [
            ("_type", "Nope"),
            ("_count", "-1"),
            ("_count", "0"),
            ("_since", "yesterday"),
            ("_cursor", "x"),
            ("_cursor", "Observation/a b"),
        ] {
            assert!(
                Asked::parse(&pairs(&[bad]), Handling::Lenient).is_err(),
                "{bad:?}"
            );
        }
        let lenient = Asked::parse(&pairs(&[("start", "2020")]), Handling::Lenient).unwrap();
        assert_eq!(lenient.ignored.len(), 1);
        assert!(Asked::parse(&pairs(&[("start", "2020")]), Handling::Strict).is_err());
        assert_eq!(
            Asked::parse(&[], Handling::Lenient).unwrap().count,
            DEFAULT_COUNT
        );
    }
}
