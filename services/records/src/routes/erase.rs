//! `POST /fhir/Patient/{id}/$erase`: a patient's right to erasure (GDPR art. 17), in two steps.
//!
//! 1. Without `confirm`, it answers 200 with a `Parameters` saying what would be erased (her
//!    live resources per type) and a confirmation code bound to her, to the requester and to a
//!    short expiry: an HMAC under a key derived from the records key, so no state is kept.
//! 2. With `confirm=<code>` (query, or a `confirm` parameter in a `Parameters` body) it erases,
//!    in one transaction with the access event that proves it ([`store::erase`]): her data key
//!    is destroyed, her resources deleted and her index rows purged. It cannot be undone.
//!
//! Who may erase is the kernel's decision ([`custodian_access::Kernel::decide_erasure`]): the
//! patient herself, or an administrator. Anyone else gets the answer a write they may not make
//! gets: 403 when they may see her, the 404 of an unknown id when not.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use custodian_access::{absent_event, Caller, Interaction, PatientRef, Touched};
use custodian_fhir::{FhirError, OperationOutcome};
use diesel_async::AsyncConnection;
use serde_json::{json, Value};

use super::{http, read::decide_current};
use crate::{
    access::{hidden, not_known, refused},
    crypto::{same_mac, RecordCipher},
    domain::resource::now_millis,
    error::RecordsError,
    relationships,
    state::AppState,
    store,
};

/// How long a confirmation code stays valid.
pub const CONFIRMATION_SECONDS: i64 = 300;

/// The definition URL of the operation (ours).
pub const DEFINITION: &str = "https://custodian.health/fhir/OperationDefinition/Patient-erase";

/// The confirmation code for erasing `patient` by `requester` (the token's `sub`), valid until
/// `expires` (Unix seconds): `<expires>.<hex HMAC>`.
pub fn confirmation_code(
    cipher: &RecordCipher,
    patient: &str,
    requester: &str,
    expires: i64,
) -> Result<String, RecordsError> {
    let mac = cipher.mac(
        "erase-confirmation",
        &confirmation_message(patient, requester, expires),
    )?;
    Ok(format!("{expires}.{}", hex::encode(mac)))
}

fn confirmation_message(patient: &str, requester: &str, expires: i64) -> Vec<u8> {
    // Lengths first: no two (patient, requester) pairs give the same message.
    format!(
        "{}:{patient}\n{}:{requester}\n{expires}",
        patient.len(),
        requester.len()
    )
    .into_bytes()
}

/// Whether `code` confirms erasing `patient` by `requester` at `now`.
fn confirms(
    cipher: &RecordCipher,
    code: &str,
    patient: &str,
    requester: &str,
    now: DateTime<Utc>,
) -> Result<bool, RecordsError> {
    let Some((expires, mac)) = code.trim().split_once('.') else {
        return Ok(false);
    };
    let (Ok(expires), Ok(mac)) = (expires.parse::<i64>(), hex::decode(mac)) else {
        return Ok(false);
    };
    let now = now.timestamp();
    if expires < now || expires > now + CONFIRMATION_SECONDS {
        return Ok(false);
    }
    let expected = cipher.mac(
        "erase-confirmation",
        &confirmation_message(patient, requester, expires),
    )?;
    Ok(same_mac(&expected, &mac))
}

/// The `confirm` code of the request: its query, or its `Parameters` body.
fn confirmation(req: &HttpRequest, body: &[u8]) -> Result<Option<String>, FhirError> {
    let query = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|e| FhirError::BadRequest(format!("the query does not parse: {e}")))?;
    let mut found: Vec<String> = query
        .0
        .into_iter()
        .filter(|(k, _)| k == "confirm")
        .map(|(_, v)| v)
        .collect();
    if !body.iter().all(u8::is_ascii_whitespace) {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| FhirError::BadRequest(format!("the body is not valid JSON: {e}")))?;
        if value.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
            return Err(FhirError::BadRequest(
                "the body of $erase, when given, is a Parameters resource".into(),
            ));
        }
        for p in value
            .get("parameter")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if p.get("name").and_then(Value::as_str) == Some("confirm") {
                let code = p
                    .get("valueString")
                    .or_else(|| p.get("valueCode"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        FhirError::BadRequest("the confirm parameter is a valueString".into())
                    })?;
                found.push(code.to_string());
            }
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(FhirError::BadRequest(
            "give one confirm code, not several".into(),
        )),
    }
}

fn counts_parameters(counts: &std::collections::BTreeMap<String, i64>) -> Vec<Value> {
    counts
        .iter()
        .map(|(t, n)| {
            json!({"name": "resources", "part": [
                {"name": "type", "valueCode": t},
                {"name": "count", "valueInteger": n}
            ]})
        })
        .collect()
}

/// Erase a patient's record (two steps: ask, then confirm).
#[utoipa::path(
    post,
    path = "/fhir/Patient/{id}/$erase",
    tag = "fhir",
    params(
        ("id" = String, Path),
        ("confirm" = Option<String>, Query, description = "The code the first step answered")
    ),
    request_body(content = Option<serde_json::Value>, content_type = "application/fhir+json",
        description = "Optional Parameters with a confirm parameter (valueString)"),
    responses(
        (status = 200, description = "Parameters: without confirm, what would be erased and the code to confirm with; with it, what was erased"),
        (status = 400, description = "The confirmation code is wrong or expired (nothing erased)"),
        (status = 403, description = "Not permitted (only the patient herself or an administrator)"),
        (status = 404, description = "Unknown patient, or one the caller may not see"),
        (status = 410, description = "Her record was already erased")
    ),
    security(("smart" = []))
)]
pub async fn erase(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let result = handle(&req, &path, &body, caller, &state).await;
    super::observe(&state, "erase", "Patient", &result);
    result
}

async fn handle(
    req: &HttpRequest,
    raw_id: &str,
    body: &[u8],
    caller: Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let id = http::parse_id(raw_id)?;
    let confirm = confirmation(req, body)?;
    let patient = PatientRef::parse(&format!("Patient/{id}"))
        .map_err(|e| FhirError::BadRequest(e.to_string()))?;
    let now = now_millis();
    let mut conn = state.connection().await?;
    let Some(current) = store::current(&mut conn, "Patient", id.as_str(), false).await? else {
        state
            .record(
                &mut conn,
                &[absent_event(&caller, Interaction::Delete, "Patient")],
            )
            .await?;
        return Err(not_known("Patient", id.as_str()).into());
    };
    let touched = |count: u32| Touched::new("Patient", Some(&patient)).count(count);
    let decision = state.kernel.decide_erasure(&caller, &patient);
    if !decision.permitted() {
        // As for a write one may not make: 403 to whoever may see her, 404 to anyone else.
        let (_, read) = decide_current(
            state,
            &mut conn,
            &caller.without_break_glass(),
            "Patient",
            &current,
            Interaction::Read,
        )
        .await?;
        let event = decision.event(&caller, Interaction::Delete, touched(0));
        state.record(&mut conn, &[event]).await?;
        return Err(if read.permitted() {
            refused(state, &decision)
        } else {
            hidden(state, &decision, "Patient", id.as_str())
        }
        .into());
    }
    if store::erased(&mut conn, patient.as_str()).await? {
        let event = decision.failed_event(&caller, Interaction::Delete, touched(0));
        state.record(&mut conn, &[event]).await?;
        return Err(FhirError::Gone(format!("the record of Patient/{id} was erased")).into());
    }
    let requester = caller.claims.sub.as_str();
    let Some(code) = confirm else {
        // Step 1: what would be erased, and the code to confirm with. Telling the counts is an
        // access to her record: it is recorded.
        let counts = store::compartment_counts(&mut conn, patient.as_str()).await?;
        let expires = now.timestamp() + CONFIRMATION_SECONDS;
        let code = confirmation_code(&state.cipher, patient.as_str(), requester, expires)?;
        let event = decision.event(&caller, Interaction::Search, touched(0));
        state.record(&mut conn, &[event]).await?;
        let total: i64 = counts.values().sum();
        let expires_at = DateTime::<Utc>::from_timestamp(expires, 0).unwrap_or(now);
        let mut parameter = vec![
            json!({"name": "patient", "valueReference": {"reference": patient.as_str()}}),
            json!({"name": "total", "valueInteger": total}),
        ];
        parameter.extend(counts_parameters(&counts));
        parameter.push(json!({"name": "confirm", "valueString": code}));
        parameter.push(json!({"name": "expires", "valueInstant": expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}));
        parameter.push(
            json!({"name": "outcome", "resource": OperationOutcome::information(&format!(
                "erasing {} destroys the key of her record and deletes her {total} resources; it \
                 cannot be undone. To erase, POST again with confirm=<code> before {}",
                patient.as_str(),
                expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ))}),
        );
        let body = json!({"resourceType": "Parameters", "parameter": parameter});
        return Ok(http::fhir(StatusCode::OK).body(body.to_string()));
    };
    if !confirms(&state.cipher, &code, patient.as_str(), requester, now)? {
        let event = decision.failed_event(&caller, Interaction::Delete, touched(0));
        state.record(&mut conn, &[event]).await?;
        return Err(FhirError::BadRequest(
            "the confirmation code is wrong, expired or not yours: nothing was erased; ask \
             again without confirm for a new one"
                .into(),
        )
        .into());
    }
    let (erased, memberships) = {
        let (caller, patient, decision) = (&caller, &patient, &decision);
        conn.transaction::<_, RecordsError, _>(async move |conn| {
            // Serialises erasures of her record (and writes of her Patient).
            store::current(conn, "Patient", patient.id(), true).await?;
            if store::erased(conn, patient.as_str()).await? {
                return Err(FhirError::Gone(format!(
                    "the record of {} was erased",
                    patient.as_str()
                ))
                .into());
            }
            let erased = store::erase(conn, patient.as_str(), now).await?;
            // Bulk exports holding her data are sealed with the records key, not hers: gone too.
            crate::exports::delete_jobs_holding(conn, patient.as_str()).await?;
            let mut memberships = Vec::new();
            for (t, rid, version) in &erased.deleted {
                memberships.extend(
                    relationships::record(conn, &state.relationships, t, rid, *version, None)
                        .await?,
                );
            }
            let count = u32::try_from(erased.deleted.len()).unwrap_or(u32::MAX);
            let event = decision.event(
                caller,
                Interaction::Delete,
                Touched::new("Patient", Some(patient)).count(count),
            );
            state.enqueue_events(conn, &[event]).await?;
            Ok((erased, memberships))
        })
        .await?
    };
    state.relay.wake();
    state.relationships.committed(&memberships);
    let total = erased.deleted.len();
    let mut parameter = vec![
        json!({"name": "patient", "valueReference": {"reference": patient.as_str()}}),
        json!({"name": "total", "valueInteger": total}),
    ];
    parameter.extend(counts_parameters(&erased.counts));
    parameter.push(
        json!({"name": "outcome", "resource": OperationOutcome::information(&format!(
            "the record of {} was erased: her key is destroyed and her {total} resources deleted",
            patient.as_str()
        ))}),
    );
    let body = json!({"resourceType": "Parameters", "parameter": parameter});
    Ok(http::fhir(StatusCode::OK).body(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_bind_patient_requester_and_expiry() {
        let cipher = RecordCipher::new([3u8; 32]);
        let now = Utc::now();
        let expires = now.timestamp() + 60;
        let code = confirmation_code(&cipher, "Patient/a", "u1", expires).unwrap();
        assert!(confirms(&cipher, &code, "Patient/a", "u1", now).unwrap());
        assert!(!confirms(&cipher, &code, "Patient/b", "u1", now).unwrap());
        assert!(!confirms(&cipher, &code, "Patient/a", "u2", now).unwrap());
        assert!(!confirms(&RecordCipher::new([4u8; 32]), &code, "Patient/a", "u1", now).unwrap());
        let later = now + chrono::Duration::seconds(61);
        assert!(!confirms(&cipher, &code, "Patient/a", "u1", later).unwrap());
        let (_, mac) = code.split_once('.').unwrap();
        let forged = format!("{}.{mac}", expires + 10);
        assert!(!confirms(&cipher, &forged, "Patient/a", "u1", now).unwrap());
        for junk in ["", ".", "x.y", "1.zz", "99999999999999999999.00"] {
            assert!(!confirms(&cipher, junk, "Patient/a", "u1", now).unwrap());
        }
    }
}
