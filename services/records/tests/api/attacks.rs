//! What an attacker with a valid account tries against records, by every route to the same
//! data (issue 5's list): each must be closed.

use serde_json::{json, Value};

use crate::helpers::{condition, patient_resource, register, spawn_app, weight, TestApp};

/// An Observation of `patient` written with `token`: its path and stored body.
async fn observation(app: &TestApp, token: &str, patient: &str, kg: &str) -> (String, Value) {
    let obs = app
        .send_json(
            "POST",
            "/fhir/Observation",
            token,
            &weight(&format!("Patient/{patient}"), kg),
            &[],
        )
        .await;
    assert_eq!(obs.status, 201, "{}", obs.text());
    let stored = obs.json();
    let path = format!("/fhir/Observation/{}", stored["id"].as_str().unwrap());
    (path, stored)
}

fn total(bundle: &Value) -> u64 {
    bundle["total"].as_u64().unwrap_or(u64::MAX)
}

#[actix_web::test]
async fn a_deleted_id_cannot_be_reused_to_reach_its_earlier_versions() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    register(&app, &h1, "alice").await;
    register(&app, &h2, "mallory").await;
    let obs = app
        .send_json(
            "POST",
            "/fhir/Observation",
            &h1,
            &weight("Patient/alice", "60"),
            &[],
        )
        .await;
    let id = obs.json()["id"].as_str().unwrap().to_string();
    let path = format!("/fhir/Observation/{id}");
    assert_eq!(app.delete(&path, &h1, &[]).await.status, 200);

    // Hospital2 re-creates the id in its own patient's record: refused (it may not even see it).
    let mut body: Value = serde_json::from_str(&weight("Patient/mallory", "1")).unwrap();
    body["id"] = json!(id);
    assert_eq!(app.put(&path, &h2, &body, &[]).await.status, 404);
    // Nor as a Group, outside any compartment.
    let group = json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"text": "x"}, "subject": {"reference": "Group/g1"}});
    assert_eq!(app.put(&path, &h2, &group, &[]).await.status, 404);
    // The custodian may re-create it, in Alice's record only.
    assert_eq!(app.put(&path, &h1, &body, &[]).await.status, 409);
    let mut again: Value = serde_json::from_str(&weight("Patient/alice", "61")).unwrap();
    again["id"] = json!(id);
    assert_eq!(app.put(&path, &h1, &again, &[]).await.status, 201);
    // Alice's earlier versions stay out of Hospital2's reach by every route.
    assert_eq!(
        app.get(&format!("{path}/_history/1"), &h2, &[])
            .await
            .status,
        404
    );
    assert_eq!(
        app.get(&format!("{path}/_history"), &h2, &[]).await.status,
        404
    );
    assert_eq!(
        app.get(&format!("{path}/_history/1"), &h1, &[])
            .await
            .status,
        200
    );
    let history = app.get(&format!("{path}/_history"), &h1, &[]).await.json();
    assert_eq!(total(&history), 3, "{history}");
    app.cleanup().await;
}

#[actix_web::test]
async fn nobody_writes_into_a_record_they_do_not_hold() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    register(&app, &h1, "alice").await;
    // POST into Alice's record, PUT with a chosen id, a transaction entry, a service's token.
    let post = app
        .send_json(
            "POST",
            "/fhir/Observation",
            &h2,
            &weight("Patient/alice", "1"),
            &[],
        )
        .await;
    assert_eq!(post.status, 403);
    let mut chosen: Value = serde_json::from_str(&weight("Patient/alice", "1")).unwrap();
    chosen["id"] = json!("planted");
    assert_eq!(
        app.put("/fhir/Observation/planted", &h2, &chosen, &[])
            .await
            .status,
        403
    );
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": serde_json::from_str::<Value>(&weight("Patient/alice", "2")).unwrap(),
         "request": {"method": "POST", "url": "Observation"}}]});
    assert_eq!(app.post("/fhir", &h2, &tx).await.status, 403);
    let mut service = app.issuer.claims(custodian_auth::Role::Service);
    service.organization = Some("Organization/h2".into());
    let service = app.issuer.token(&service);
    assert_eq!(
        app.post(
            "/fhir/Condition",
            &service,
            &condition("Patient/alice", "1")
        )
        .await
        .status,
        403
    );
    // Data for a patient nobody here holds is refused too.
    assert_eq!(
        app.send_json(
            "POST",
            "/fhir/Observation",
            &h1,
            &weight("Patient/ghost", "1"),
            &[]
        )
        .await
        .status,
        403
    );
    // Registering a patient in another organisation's name, or taking over Alice's record.
    let mut foreign = patient_resource("eve", "Eve", "Eve");
    foreign["managingOrganization"] = json!({"reference": "Organization/h1"});
    assert_eq!(
        app.put("/fhir/Patient/eve", &h2, &foreign, &[])
            .await
            .status,
        403
    );
    let mut takeover = app.get("/fhir/Patient/alice", &h1, &[]).await.json();
    takeover["managingOrganization"] = json!({"reference": "Organization/h2"});
    assert_eq!(
        app.put("/fhir/Patient/alice", &h2, &takeover, &[])
            .await
            .status,
        404
    );
    let seen = app
        .get("/fhir/Observation?patient=alice", &h1, &[])
        .await
        .json();
    assert_eq!(total(&seen), 0, "nothing was planted: {seen}");
    app.cleanup().await;
}

#[actix_web::test]
async fn preconditions_are_no_oracle() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    register(&app, &h1, "alice").await;
    let (path, stored) = observation(&app, &h1, "alice", "60").await;
    // A wrong If-Match from someone who may not see it: the 404 of an unknown id, not a 412.
    for version in ["W/\"1\"", "W/\"7\""] {
        assert_eq!(
            app.put(&path, &h2, &stored, &[("If-Match", version)])
                .await
                .status,
            404
        );
        assert_eq!(
            app.delete(&path, &h2, &[("If-Match", version)])
                .await
                .status,
            404
        );
    }
    // The custodian gets the real answer.
    assert_eq!(
        app.put(&path, &h1, &stored, &[("If-Match", "W/\"7\"")])
            .await
            .status,
        412
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn counts_and_pages_cover_visible_data_only() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    register(&app, &h1, "alice").await;
    register(&app, &h2, "bob").await;
    for _ in 0..3 {
        app.post(
            "/fhir/Condition",
            &h1,
            &condition("Patient/alice", "44054006"),
        )
        .await;
    }
    for _ in 0..5 {
        app.post(
            "/fhir/Condition",
            &h2,
            &condition("Patient/bob", "44054006"),
        )
        .await;
    }
    let page = app
        .get(
            "/fhir/Condition?code=44054006&_count=2&_total=accurate",
            &h1,
            &[],
        )
        .await
        .json();
    assert_eq!(total(&page), 3, "{page}");
    assert_eq!(page["entry"].as_array().unwrap().len(), 2);
    let counted = app
        .get("/fhir/Condition?code=44054006&_summary=count", &h2, &[])
        .await
        .json();
    assert_eq!(total(&counted), 5);
    // _revinclude and _include bring nothing of the other hospital's patients.
    let rev = app
        .get("/fhir/Patient?_revinclude=Condition:subject", &h1, &[])
        .await
        .json();
    let subjects: Vec<&str> = rev["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["resource"]["subject"]["reference"].as_str())
        .collect();
    assert!(subjects.iter().all(|s| *s == "Patient/alice"), "{rev}");
    assert_eq!(total(&rev), 1);
    // $everything of a patient the caller may not see: as if she did not exist.
    assert_eq!(
        app.get("/fhir/Patient/bob/$everything", &h1, &[])
            .await
            .status,
        404
    );
    // POST _search is the same search.
    let posted = app
        .post_form("/fhir/Condition/_search", &h1, "code=44054006")
        .await
        .json();
    assert_eq!(total(&posted), 3);
    app.cleanup().await;
}

#[actix_web::test]
async fn malformed_input_is_a_400_never_a_panic() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    for query in [
        "/fhir/Observation?date=x%C3%A9",
        "/fhir/Observation?date=ge%C3%A9%C3%A9",
        "/fhir/Observation?value-quantity=%C3%A9%C3%A95",
        "/fhir/Observation?_count=-1",
        "/fhir/Observation?_sort=%C3%A9",
        "/fhir/Observation?code:nonsense=1",
    ] {
        let r = app.get(query, &h1, &[]).await;
        assert_eq!(r.status, 400, "{query}: {}", r.text());
        assert_eq!(r.json()["resourceType"], "OperationOutcome");
    }
    // Headers the kernel reads.
    let r = app
        .get(
            "/fhir/Observation",
            &h1,
            &[("X-Purpose-Of-Use", "not a code")],
        )
        .await;
    assert_eq!(r.status, 400);
    app.cleanup().await;
}

#[actix_web::test]
async fn scopes_narrow_what_a_token_may_do() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    register(&app, &h1, "alice").await;
    let (path, _) = observation(&app, &h1, "alice", "60").await;
    // A token of the same practitioner that may only read Observations.
    let mut narrow = app.issuer.claims(custodian_auth::Role::Practitioner);
    narrow.organization = Some("Organization/h1".into());
    narrow.scope = "user/Observation.r".into();
    let narrow = app.issuer.token(&narrow);
    assert_eq!(app.get(&path, &narrow, &[]).await.status, 200);
    // No `s`: no search; no `c`: no create; nothing of other types.
    assert_eq!(app.get("/fhir/Observation", &narrow, &[]).await.status, 403);
    assert_eq!(
        app.send_json(
            "POST",
            "/fhir/Observation",
            &narrow,
            &weight("Patient/alice", "1"),
            &[]
        )
        .await
        .status,
        403
    );
    assert_eq!(
        app.get("/fhir/Patient/alice", &narrow, &[]).await.status,
        404
    );
    // A token with no scope at all reads nothing.
    let mut none = app.issuer.claims(custodian_auth::Role::Practitioner);
    none.organization = Some("Organization/h1".into());
    none.scope = String::new();
    let none = app.issuer.token(&none);
    assert_eq!(app.get(&path, &none, &[]).await.status, 404);
    app.cleanup().await;
}

#[actix_web::test]
async fn data_naming_several_patients_needs_every_record() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    register(&app, &h1, "alice").await;
    register(&app, &h2, "bob").await;
    // A Group in Alice's record that would tell her readers Bob is a member.
    let group = json!({"resourceType": "Group", "type": "person", "actual": true,
        "member": [{"entity": {"reference": "Patient/alice"}}, {"entity": {"reference": "Patient/bob"}}]});
    assert_eq!(app.post("/fhir/Group", &h1, &group).await.status, 403);
    // A Patient linking to another organisation's patient.
    let mut linked = app.get("/fhir/Patient/alice", &h1, &[]).await.json();
    linked["link"] = json!([{"other": {"reference": "Patient/bob"}, "type": "seealso"}]);
    assert_eq!(
        app.put("/fhir/Patient/alice", &h1, &linked, &[])
            .await
            .status,
        403
    );
    // Within its own records, fine.
    register(&app, &h1, "carol").await;
    let ours = json!({"resourceType": "Group", "type": "person", "actual": true,
        "member": [{"entity": {"reference": "Patient/alice"}}, {"entity": {"reference": "Patient/carol"}}]});
    assert_eq!(app.post("/fhir/Group", &h1, &ours).await.status, 201);
    app.cleanup().await;
}

#[actix_web::test]
async fn break_glass_opens_emergency_reads_only() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    register(&app, &h1, "bob").await;
    let (path, stored) = observation(&app, &h1, "bob", "80").await;
    let glass = ("X-Break-Glass", "checking");
    // A write with the header learns no more than one without: as for an unknown id.
    assert_eq!(app.delete(&path, &h2, &[glass]).await.status, 404);
    assert_eq!(app.put(&path, &h2, &stored, &[glass]).await.status, 404);
    assert_eq!(
        app.delete("/fhir/Observation/does-not-exist", &h2, &[glass])
            .await
            .status,
        404
    );
    // Not for marketing, whatever the reason given.
    assert_eq!(
        app.get(&path, &h2, &[glass, ("X-Purpose-Of-Use", "HMARKT")])
            .await
            .status,
        404
    );
    // For emergency treatment, yes.
    assert_eq!(
        app.get(&path, &h2, &[glass, ("X-Purpose-Of-Use", "ETREAT")])
            .await
            .status,
        200
    );
    app.cleanup().await;
}

/// `_revinclude` decides candidates before they count toward its limit: a thousand resources
/// the caller may not see, referencing the same page resource, do not crowd out the one it may.
#[actix_web::test]
async fn hidden_resources_do_not_crowd_out_visible_includes() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    register(&app, &h1, "alice").await;
    register(&app, &h2, "bob").await;
    let shared = app
        .put(
            "/fhir/Practitioner/dr-shared",
            &h1,
            &serde_json::json!({"resourceType": "Practitioner", "id": "dr-shared"}),
            &[],
        )
        .await;
    assert!(shared.status.is_success(), "{}", shared.text());
    let asserted = |patient: &str| {
        let mut c = condition(patient, "44054006");
        c["asserter"] = serde_json::json!({"reference": "Practitioner/dr-shared"});
        c
    };
    // Bob's thousand and one first (they come first in the table), then Alice's one.
    let entries: Vec<Value> = (0..1001)
        .map(|_| {
            serde_json::json!({
                "resource": asserted("Patient/bob"),
                "request": {"method": "POST", "url": "Condition"},
            })
        })
        .collect();
    let bundle =
        serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let written = app.post("/fhir", &h2, &bundle).await;
    assert_eq!(written.status, 200, "{}", written.text());
    let alices = app
        .post("/fhir/Condition", &h1, &asserted("Patient/alice"))
        .await;
    assert_eq!(alices.status, 201, "{}", alices.text());

    let found = app
        .get(
            "/fhir/Practitioner?_id=dr-shared&_revinclude=Condition:asserter",
            &h1,
            &[],
        )
        .await
        .json();
    let included: Vec<&Value> = found["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .collect();
    assert_eq!(included.len(), 1, "{found}");
    assert_eq!(
        included[0]["resource"]["subject"]["reference"],
        "Patient/alice"
    );
    // Bob's hospital sees a thousand of its thousand and one, and is told the list was cut short.
    let theirs = app
        .get(
            "/fhir/Practitioner?_id=dr-shared&_revinclude=Condition:asserter",
            &h2,
            &[],
        )
        .await
        .json();
    let entries = theirs["entry"].as_array().unwrap();
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["search"]["mode"] == "include")
            .count(),
        1000
    );
    let outcome = entries
        .iter()
        .find(|e| e["search"]["mode"] == "outcome")
        .expect("an outcome entry saying the includes were cut short");
    assert_eq!(outcome["resource"]["issue"][0]["code"], "incomplete");
    app.cleanup().await;
}

/// The audit trail is the ledger's: an AuditEvent written into records would be an audit
/// record anyone with write access could forge. Refused by every route, as Consent is.
#[actix_web::test]
async fn no_audit_event_can_be_forged_in_records() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    register(&app, &h1, "alice").await;
    let forged = json!({
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "recorded": "2026-12-01T00:00:00Z",
        "agent": [{"requestor": true, "who": {"reference": "Practitioner/nobody"}}],
        "source": {"observer": {"display": "records"}},
        "entity": [{"what": {"reference": "Patient/alice"}}]
    });
    let created = app.post("/fhir/AuditEvent", &h1, &forged).await;
    assert_eq!(created.status, 404, "{}", created.text());
    assert_eq!(created.json()["resourceType"], "OperationOutcome");
    assert!(created.text().contains("the ledger"), "{}", created.text());
    let put = app.put("/fhir/AuditEvent/forged", &h1, &forged, &[]).await;
    assert_eq!(put.status, 404, "{}", put.text());
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": forged, "request": {"method": "POST", "url": "AuditEvent"}}]});
    let refused = app.post("/fhir", &h1, &tx).await;
    assert!(
        refused.status.is_client_error(),
        "{}: {}",
        refused.status,
        refused.text()
    );
    // Nothing was stored: records does not even search the type.
    assert_eq!(app.get("/fhir/AuditEvent", &h1, &[]).await.status, 404);
    app.cleanup().await;
}
