//! The access policy as a table: caller x consent x interaction x resource type x purpose x
//! scope, each row one request against the real service, with the status it must get.

use serde_json::{json, Value};

use crate::helpers::{
    condition, consent_change, patient_resource, spawn_app_with, weight, TestApp,
};

fn actor(reference: &str) -> Value {
    json!({"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
           "reference": {"reference": reference}})
}

fn token(
    app: &TestApp,
    role: custodian_auth::Role,
    org: Option<&str>,
    practitioner: Option<&str>,
    scope: Option<&str>,
    patient: Option<&str>,
) -> String {
    let mut c = app.issuer.claims(role);
    c.organization = org.map(str::to_string);
    c.practitioner = practitioner.map(str::to_string);
    c.patient = patient.map(str::to_string);
    if let Some(s) = scope {
        c.scope = s.to_string();
    }
    app.issuer.token(&c)
}

#[actix_web::test]
async fn the_policy_table() {
    use custodian_auth::Role::*;
    // Alice (held by H1) lets H2 read her Observations for treatment, nothing else.
    // Carol (held by H1) denies one clinician of H1, Practitioner/dr-x.
    // Dan (held by H1) lets anyone use his data for research, but not his restricted records.
    let consents = vec![
        consent_change(
            "Consent/alice",
            "Patient/alice",
            1,
            json!({
                "type": "permit", "actor": [actor("Organization/h2")],
                "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]}],
                "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
                "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Observation"}]
            }),
        ),
        consent_change(
            "Consent/carol",
            "Patient/carol",
            1,
            json!({
                "type": "deny", "actor": [actor("Practitioner/dr-x")]
            }),
        ),
        consent_change(
            "Consent/dan",
            "Patient/dan",
            1,
            json!({
                "type": "permit",
                "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"}],
                "provision": [{"type": "deny", "securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}]
            }),
        ),
    ];
    let app = spawn_app_with(consents).await;
    let h1 = token(
        &app,
        Practitioner,
        Some("Organization/h1"),
        Some("Practitioner/dr-a"),
        None,
        None,
    );
    let dr_x = token(
        &app,
        Practitioner,
        Some("Organization/h1"),
        Some("Practitioner/dr-x"),
        None,
        None,
    );
    let h2 = token(
        &app,
        Practitioner,
        Some("Organization/h2"),
        Some("Practitioner/dr-b"),
        None,
        None,
    );
    let h2_search_only = token(
        &app,
        Practitioner,
        Some("Organization/h2"),
        Some("Practitioner/dr-b"),
        Some("user/Observation.s"),
        None,
    );
    let h3 = token(
        &app,
        Practitioner,
        Some("Organization/h3"),
        Some("Practitioner/dr-c"),
        None,
        None,
    );
    let h1_service = token(&app, Service, Some("Organization/h1"), None, None, None);
    let alice = token(&app, Patient, None, None, None, Some("alice"));
    let admin = token(&app, Admin, None, None, None, None);
    let auditor = token(&app, Auditor, None, None, None, None);

    let mut ids = std::collections::HashMap::new();
    for p in ["alice", "carol", "dan"] {
        let r = app
            .put(
                &format!("/fhir/Patient/{p}"),
                &h1,
                &patient_resource(p, "Doe", p),
                &[],
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let o = app
            .send_json(
                "POST",
                "/fhir/Observation",
                &h1,
                &weight(&format!("Patient/{p}"), "70"),
                &[],
            )
            .await;
        ids.insert(
            format!("{p}-obs"),
            o.json()["id"].as_str().unwrap().to_string(),
        );
        let c = app
            .post(
                "/fhir/Condition",
                &h1,
                &condition(&format!("Patient/{p}"), "44054006"),
            )
            .await;
        ids.insert(
            format!("{p}-cond"),
            c.json()["id"].as_str().unwrap().to_string(),
        );
    }
    let mut restricted: Value = serde_json::from_str(&weight("Patient/dan", "71")).unwrap();
    restricted["meta"] = json!({"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]});
    let r = app.post("/fhir/Observation", &h1, &restricted).await;
    ids.insert(
        "dan-obs-r".into(),
        r.json()["id"].as_str().unwrap().to_string(),
    );

    // (who, token, purpose, method, path, expected status)
    let read = |key: &str| {
        let t = if key.ends_with("cond") {
            "Condition"
        } else {
            "Observation"
        };
        format!("/fhir/{t}/{}", ids[key])
    };
    let cases: Vec<(&str, &str, &str, &str, String, u16)> = vec![
        // The custodian treats without a permit; not for marketing.
        ("h1", &h1, "TREAT", "GET", read("alice-obs"), 200),
        ("h1", &h1, "TREAT", "GET", read("alice-cond"), 200),
        ("h1", &h1, "HMARKT", "GET", read("alice-obs"), 404),
        ("h1", &h1, "HOPERAT", "GET", read("alice-cond"), 200),
        (
            "h1 service",
            &h1_service,
            "TREAT",
            "GET",
            read("alice-obs"),
            200,
        ),
        // Alice's permit: H2, Observations, treatment, read only.
        ("h2", &h2, "TREAT", "GET", read("alice-obs"), 200),
        ("h2", &h2, "TREAT", "GET", read("alice-cond"), 404),
        ("h2", &h2, "HRESCH", "GET", read("alice-obs"), 404),
        (
            "h2",
            &h2,
            "TREAT",
            "GET",
            "/fhir/Observation?patient=alice".into(),
            200,
        ),
        ("h2", &h2, "TREAT", "POST", "/fhir/Observation".into(), 403),
        (
            "h2 search-only scope",
            &h2_search_only,
            "TREAT",
            "GET",
            read("alice-obs"),
            404,
        ),
        (
            "h2 search-only scope",
            &h2_search_only,
            "TREAT",
            "GET",
            "/fhir/Observation?patient=alice".into(),
            200,
        ),
        ("h3", &h3, "TREAT", "GET", read("alice-obs"), 404),
        // Carol denies one clinician of her own custodian; his colleagues still treat her.
        ("dr-x", &dr_x, "TREAT", "GET", read("carol-obs"), 404),
        ("h1", &h1, "TREAT", "GET", read("carol-obs"), 200),
        ("dr-x", &dr_x, "TREAT", "GET", read("alice-obs"), 200),
        // Dan: research by anyone, except his restricted data.
        ("h3", &h3, "HRESCH", "GET", read("dan-obs"), 200),
        ("h3", &h3, "HRESCH", "GET", read("dan-obs-r"), 404),
        ("h3", &h3, "TREAT", "GET", read("dan-obs"), 404),
        // Patients, administrators, auditors.
        ("alice", &alice, "TREAT", "GET", read("alice-obs"), 200),
        ("alice", &alice, "TREAT", "GET", read("carol-obs"), 404),
        (
            "alice",
            &alice,
            "TREAT",
            "POST",
            "/fhir/Observation".into(),
            403,
        ),
        ("admin", &admin, "TREAT", "GET", read("alice-obs"), 404),
        ("auditor", &auditor, "TREAT", "GET", read("alice-obs"), 404),
        (
            "auditor",
            &auditor,
            "TREAT",
            "GET",
            "/fhir/Observation".into(),
            403,
        ),
    ];
    let mut failures = Vec::new();
    for (who, token, purpose, method, path, expected) in &cases {
        let status = match *method {
            "GET" => {
                app.get(path, token, &[("X-Purpose-Of-Use", purpose)])
                    .await
                    .status
            }
            _ => {
                app.send_json(
                    method,
                    path,
                    token,
                    &weight("Patient/alice", "1"),
                    &[("X-Purpose-Of-Use", purpose)],
                )
                .await
                .status
            }
        };
        if status.as_u16() != *expected {
            failures.push(format!(
                "{who} {purpose} {method} {path}: {status}, expected {expected}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // Searches agree with reads: H2's treatment search finds Alice's Observation only.
    let found = app.get("/fhir/Observation", &h2, &[]).await.json();
    assert_eq!(found["total"], 1, "{found}");
    // Dan's consent turns on a label of each resource: a search compiles it into the query, so
    // it finds what reads by id, decided on each resource's own labels, find (his one
    // unlabelled Observation).
    let research = app
        .get(
            "/fhir/Observation?patient=dan",
            &h3,
            &[("X-Purpose-Of-Use", "HRESCH")],
        )
        .await
        .json();
    assert_eq!(research["total"], 1, "{research}");
    app.cleanup().await;
}
