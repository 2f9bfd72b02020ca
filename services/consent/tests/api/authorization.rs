//! Who sees and who writes consents: the patient her own; the actors a consent names; an
//! administrator writes on a patient's behalf but lists nothing; an auditor sees nothing here.
//! A consent the caller may not see answers exactly like one that does not exist.

use actix_web::http::StatusCode;
use custodian_auth::Role;
use custodian_events::{AccessAction, AccessOutcome};

use crate::helpers::{alice_consent, consent_for, permitting, spawn_app, Response, TestApp};

/// The 404 of an id that does not exist, for comparison.
async fn unknown(app: &TestApp, token: &str) -> Response {
    app.get_consent(token, &uuid::Uuid::new_v4().to_string())
        .await
}

fn same_answer(hidden: &Response, unknown: &Response, id: &str, unknown_id: &str) {
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.body);
    assert_eq!(hidden.status, unknown.status);
    assert_eq!(hidden.body["resourceType"], "OperationOutcome");
    assert_eq!(
        hidden.body["issue"][0]["code"],
        unknown.body["issue"][0]["code"]
    );
    assert_eq!(
        hidden.body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .replace(id, "ID"),
        unknown.body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .replace(unknown_id, "ID"),
    );
}

#[actix_web::test]
async fn another_patient_learns_nothing_about_alices_consent() {
    let app = spawn_app().await;
    let bob = app.patient_token("Patient/bob");
    let created = app.create_alice_consent().await;
    let id = created["id"].as_str().unwrap().to_string();

    let create = app.post_consent(&bob, &alice_consent()).await;
    assert_eq!(create.status, StatusCode::FORBIDDEN);
    assert_eq!(create.body["issue"][0]["code"], "forbidden");

    let missing_id = uuid::Uuid::new_v4().to_string();
    let missing = app.get_consent(&bob, &missing_id).await;
    let read = app.get_consent(&bob, &id).await;
    same_answer(&read, &missing, &id, &missing_id);
    for path in [
        format!("/fhir/Consent/{id}/_history/1"),
        format!("/fhir/Consent/{id}/_history"),
        format!("/consent/Consent/{id}"),
    ] {
        assert_eq!(
            app.get(&path, Some(&bob)).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let mut revoked = created.clone();
    revoked["status"] = "inactive".into();
    assert_eq!(
        app.put_consent(&bob, &id, &revoked, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete_consent(&bob, &id).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/fhir/Consent?patient=Patient/alice", Some(&bob))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // Searching without a patient finds only Bob's own (none).
    let own = app.get("/fhir/Consent", Some(&bob)).await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.body["total"], 0);

    // Alice's consent is untouched and only her creation was published.
    assert_eq!(
        app.get_consent(&app.patient_token("Patient/alice"), &id)
            .await
            .body["status"],
        "active"
    );
    assert_eq!(app.consent_changes(2).await.len(), 1);
    // Every refusal is on the record, naming Alice, so she sees it in her history.
    let events = app.access_events(12).await;
    let refusals = events
        .iter()
        .filter(|e| {
            e.outcome == AccessOutcome::Deny && e.patient.as_deref() == Some("Patient/alice")
        })
        .count();
    assert_eq!(refusals, 8, "{events:?}");
    app.finish().await;
}

#[actix_web::test]
async fn the_actors_a_consent_names_see_it_and_nobody_else_on_staff_does() {
    let app = spawn_app().await;
    // The fixture: Alice permits Organization/h1 (and, below, denies research).
    let created = app.create_alice_consent().await;
    let id = created["id"].as_str().unwrap().to_string();
    let mut revoked = created.clone();
    revoked["status"] = "inactive".into();

    let named = [
        (
            "a practitioner of h1",
            app.practitioner_token("Organization/h1"),
        ),
        (
            "a service of h1",
            app.service_token(Some("Organization/h1")),
        ),
    ];
    for (who, token) in &named {
        let read = app.get_consent(token, &id).await;
        assert_eq!(read.status, StatusCode::OK, "{who}: {}", read.body);
        assert_eq!(read.body["status"], "active");
        let search = app.get("/fhir/Consent?patient=alice", Some(token)).await;
        assert_eq!(search.body["total"], 1, "{who}");
        let all = app.get("/fhir/Consent", Some(token)).await;
        assert_eq!(all.body["total"], 1, "{who}");
        // They may see it but not change it.
        assert_eq!(
            app.post_consent(token, &alice_consent()).await.status,
            StatusCode::FORBIDDEN,
            "{who}"
        );
        assert_eq!(
            app.put_consent(token, &id, &revoked, None).await.status,
            StatusCode::FORBIDDEN,
            "{who}"
        );
        assert_eq!(
            app.delete_consent(token, &id).await.status,
            StatusCode::FORBIDDEN,
            "{who}"
        );
    }

    let strangers = [
        (
            "a practitioner of h2",
            app.practitioner_token("Organization/h2"),
        ),
        (
            "a service of h2",
            app.service_token(Some("Organization/h2")),
        ),
        ("a service of no organisation", app.service_token(None)),
        ("an administrator", app.token(Role::Admin)),
        ("an auditor", app.token(Role::Auditor)),
    ];
    for (who, token) in &strangers {
        let missing = unknown(&app, token).await;
        let read = app.get_consent(token, &id).await;
        assert_eq!(read.status, StatusCode::NOT_FOUND, "{who}: {}", read.body);
        assert_eq!(read.status, missing.status, "{who}");
        for path in [
            format!("/fhir/Consent/{id}/_history/1"),
            format!("/fhir/Consent/{id}/_history"),
        ] {
            assert_eq!(
                app.get(&path, Some(token)).await.status,
                StatusCode::NOT_FOUND,
                "{who} {path}"
            );
        }
        for path in [
            "/fhir/Consent",
            "/fhir/Consent?patient=Patient/alice",
            "/consent/Consent?status=active",
        ] {
            let search = app.get(path, Some(token)).await;
            assert_eq!(
                search.status,
                StatusCode::OK,
                "{who} {path}: {}",
                search.body
            );
            assert_eq!(search.body["total"], 0, "{who} {path}");
            // No entries: the element is absent (FHIR JSON has no empty arrays).
            assert!(search.body.get("entry").is_none(), "{who} {path}");
        }
    }
    assert_eq!(
        app.consent_changes(2).await.len(),
        1,
        "refused writes publish nothing"
    );
    app.finish().await;
}

#[actix_web::test]
async fn a_practitioner_of_an_organisation_no_consent_names_lists_none_of_many() {
    let app = spawn_app().await;
    let admin = app.token(Role::Admin);
    for patient in ["Patient/p1", "Patient/p2", "Patient/p3"] {
        let created = app.post_consent(&admin, &consent_for(patient)).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    }
    let by_practitioner = app
        .post_consent(&admin, &permitting("Patient/p4", "Practitioner/dr-who"))
        .await;
    assert_eq!(
        by_practitioner.status,
        StatusCode::CREATED,
        "{}",
        by_practitioner.body
    );

    let stranger = app.practitioner_token("Organization/h9");
    let listed = app.get("/fhir/Consent?_count=1", Some(&stranger)).await;
    assert_eq!(listed.body["total"], 0, "{}", listed.body);
    assert!(!listed.body["link"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["relation"] == "next"));

    // h1 is named by three consents: counts and pages cover exactly those.
    let h1 = app.practitioner_token("Organization/h1");
    let page = app
        .get("/fhir/Consent?_count=2&_total=accurate", Some(&h1))
        .await;
    assert_eq!(page.body["total"], 3);
    assert_eq!(page.body["entry"].as_array().unwrap().len(), 2);
    assert!(page.body["link"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["relation"] == "next"));
    let rest = app.get("/fhir/Consent?_count=2&_offset=2", Some(&h1)).await;
    assert_eq!(rest.body["entry"].as_array().unwrap().len(), 1);

    // A practitioner named by his own reference sees that consent, whatever his organisation.
    let who = app.practitioner_as("Organization/elsewhere", "Practitioner/dr-who");
    let his = app.get("/fhir/Consent", Some(&who)).await;
    assert_eq!(his.body["total"], 1);
    assert_eq!(
        his.body["entry"][0]["resource"]["patient"]["reference"],
        "Patient/p4"
    );

    // The broad search by h1 is one event per patient returned.
    let events = app.access_events(9).await;
    let searches: Vec<_> = events
        .iter()
        .filter(|e| e.action == AccessAction::Search && e.outcome == AccessOutcome::Permit)
        .filter(|e| e.actor.organization.as_deref() == Some("Organization/h1"))
        .collect();
    assert_eq!(searches.len(), 3, "{searches:?}");
    app.finish().await;
}

#[actix_web::test]
async fn a_nested_provision_makes_its_actor_a_reader_too() {
    let app = spawn_app().await;
    let mut consent = alice_consent();
    consent["provision"]["provision"][0]["actor"] = serde_json::json!([{
        "role": {"coding": [{"code": "PRCP"}]},
        "reference": {"reference": "Organization/h3"}
    }]);
    let created = app
        .post_consent(&app.patient_token("Patient/alice"), &consent)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let h3 = app.practitioner_token("Organization/h3");
    assert_eq!(app.get_consent(&h3, id).await.status, StatusCode::OK);
    app.finish().await;
}

#[actix_web::test]
async fn an_admin_records_for_any_patient_but_does_not_list() {
    let app = spawn_app().await;
    let admin = app.token(Role::Admin);
    let created = app
        .post_consent(&admin, &consent_for("Patient/carol"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["patient"]["reference"], "Patient/carol");
    let id = created.body["id"].as_str().unwrap();
    assert_eq!(
        app.get("/fhir/Consent", Some(&admin)).await.body["total"],
        0
    );
    assert_eq!(
        app.get_consent(&admin, id).await.status,
        StatusCode::NOT_FOUND
    );
    // It may still revoke on Carol's behalf.
    let mut revoked = created.body.clone();
    revoked["status"] = "inactive".into();
    let updated = app.put_consent(&admin, id, &revoked, Some("W/\"1\"")).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(app.delete_consent(&admin, id).await.status, StatusCode::OK);
    app.finish().await;
}

#[actix_web::test]
async fn scopes_bound_every_interaction() {
    let app = spawn_app().await;
    let created = app.create_alice_consent().await;
    let id = created["id"].as_str().unwrap();
    // Alice with a token that reads only her observations sees no consent and writes none.
    let narrow = app.scoped_token(
        Role::Patient,
        Some("Patient/alice"),
        "patient/Observation.rs",
    );
    assert_eq!(
        app.get_consent(&narrow, id).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/fhir/Consent", Some(&narrow)).await.body["total"],
        0
    );
    assert_eq!(
        app.post_consent(&narrow, &alice_consent()).await.status,
        StatusCode::FORBIDDEN
    );
    // Read-only consent scope: reads, no writes.
    let read_only = app.scoped_token(Role::Patient, Some("Patient/alice"), "patient/Consent.rs");
    assert_eq!(app.get_consent(&read_only, id).await.status, StatusCode::OK);
    assert_eq!(
        app.post_consent(&read_only, &alice_consent()).await.status,
        StatusCode::FORBIDDEN
    );
    app.finish().await;
}

#[actix_web::test]
async fn requests_without_a_valid_token_are_401() {
    let app = spawn_app().await;
    let no_token = app.get("/fhir/Consent", None).await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    no_token.outcome();
    let forged = app.get("/fhir/Consent", Some("not.a.jwt")).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    app.finish().await;
}

/// A consent naming two hospitals and excluding a practitioner: each hospital sees only what
/// applies to it (read, vread, history, search); nobody named learns whom else she trusts;
/// Alice sees it whole.
#[actix_web::test]
async fn a_named_actor_sees_only_its_own_provisions() {
    let app = spawn_app().await;
    let mut consent = alice_consent();
    consent["provision"] = serde_json::json!({
        "type": "permit",
        "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
        "provision": [
            {"type": "permit", "actor": [
                {"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}]}, "reference": {"reference": "Organization/h1"}}]},
            {"type": "permit", "actor": [
                {"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}]}, "reference": {"reference": "Organization/h2"}}],
             "provision": [{"type": "deny", "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Condition"}]}]}
        ]
    });
    let alice = app.patient_token("Patient/alice");
    let created = app.post_consent(&alice, &consent).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();

    let whole = app.get_consent(&alice, &id).await;
    assert!(whole.body.to_string().contains("Organization/h2"));
    assert!(whole.body["meta"].get("security").is_none());

    let h1 = app.practitioner_token("Organization/h1");
    let h2 = app.practitioner_token("Organization/h2");
    for (token, mine, other) in [
        (&h1, "Organization/h1", "Organization/h2"),
        (&h2, "Organization/h2", "Organization/h1"),
    ] {
        let views = [
            app.get_consent(token, &id).await.body,
            app.get(&format!("/fhir/Consent/{id}/_history/1"), Some(token))
                .await
                .body,
            app.get(&format!("/fhir/Consent/{id}/_history"), Some(token))
                .await
                .body["entry"][0]["resource"]
                .clone(),
            app.get("/fhir/Consent?patient=alice", Some(token))
                .await
                .body["entry"][0]["resource"]
                .clone(),
        ];
        for view in views {
            let text = view.to_string();
            assert_eq!(view["resourceType"], "Consent", "{text}");
            assert!(text.contains(mine), "{mine} should see itself: {text}");
            assert!(!text.contains(other), "{mine} learned of {other}: {text}");
            assert_eq!(view["meta"]["security"][0]["code"], "REDACTED");
            assert_eq!(view["provision"]["purpose"][0]["code"], "TREAT");
        }
    }
    // h2's exception (no Condition) applies to h2 and stays in its view.
    let h2_view = app.get_consent(&h2, &id).await.body;
    assert_eq!(
        h2_view["provision"]["provision"][0]["provision"][0]["class"][0]["code"],
        "Condition"
    );
}
