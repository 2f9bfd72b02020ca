//! `/fhir/AuditEvent`: the log as FHIR R4 AuditEvents, searched, paged, read and guarded.

use std::collections::HashSet;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use chrono::{DateTime, Utc};
use custodian_auth::Role;
use custodian_events::{AccessAction, AccessEvent, AccessOutcome};
use diesel::{sql_query, QueryableByName};
use diesel_async::{async_connection_wrapper::AsyncConnectionWrapper, AsyncPgConnection};
use diesel_migrations::MigrationHarness;
use ledger::tree::{leaf_hash, verify_inclusion};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{event, spawn_app, Response, TestApp, PUBLIC_URL};

const LEAF_EXTENSION: &str = "https://custodian.local/fhir/StructureDefinition/ledger-leaf";

fn at(time: &str) -> DateTime<Utc> {
    time.parse().expect("time")
}

/// The value of one of the ledger-leaf extension's parts.
fn leaf_part<'a>(resource: &'a Value, part: &str) -> &'a Value {
    let leaf = resource["extension"]
        .as_array()
        .expect("extensions")
        .iter()
        .find(|e| e["url"] == LEAF_EXTENSION)
        .expect("the ledger-leaf extension");
    let part = leaf["extension"]
        .as_array()
        .expect("parts")
        .iter()
        .find(|e| e["url"] == part)
        .unwrap_or_else(|| panic!("no {part}"));
    part.as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.starts_with("value")))
        .map(|(_, v)| v)
        .expect("a value")
}

fn event_id(resource: &Value) -> String {
    resource["id"].as_str().expect("id").to_string()
}

/// A path on the test server from a link the server gave (built on `PUBLIC_URL`).
fn path_of(link: &str) -> String {
    link.strip_prefix(PUBLIC_URL)
        .unwrap_or_else(|| panic!("{link} is not under {PUBLIC_URL}"))
        .to_string()
}

fn assert_fhir(res: &Response, status: u16) -> Value {
    assert_eq!(res.status, status, "{}", res.body);
    assert!(
        res.content_type.starts_with("application/fhir+json"),
        "{}",
        res.content_type
    );
    res.json()
}

fn assert_outcome(res: &Response, status: u16) {
    let body = assert_fhir(res, status);
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    assert!(custodian_fhir::validate_resource(&body).is_ok());
}

/// One page: the searchset checked (valid R4, every entry a valid AuditEvent), its matches'
/// event ids in order, and its `next` link.
fn page(res: &Response) -> (Vec<String>, Option<String>, Value) {
    let bundle = assert_fhir(res, 200);
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "searchset");
    assert!(
        custodian_fhir::validate_resource(&bundle).is_ok(),
        "{:?}",
        custodian_fhir::validate_resource(&bundle)
    );
    let mut ids = Vec::new();
    for entry in bundle["entry"].as_array().expect("entry") {
        if entry["search"]["mode"] != "match" {
            continue;
        }
        let resource = &entry["resource"];
        assert_eq!(resource["resourceType"], "AuditEvent");
        assert_eq!(
            entry["fullUrl"],
            format!(
                "{PUBLIC_URL}/fhir/AuditEvent/{}",
                resource["id"].as_str().unwrap()
            )
        );
        assert!(
            custodian_fhir::validate_resource(resource).is_ok(),
            "{:?}",
            custodian_fhir::validate_resource(resource)
        );
        ids.push(event_id(resource));
    }
    let next = bundle["link"]
        .as_array()
        .expect("link")
        .iter()
        .find(|l| l["relation"] == "next")
        .map(|l| path_of(l["url"].as_str().expect("url")));
    (ids, next, bundle)
}

/// Every match of a search, following `next` links; panics on a repeated entry.
async fn all_pages(app: &TestApp, path: &str, token: &str) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut next = Some(path.to_string());
    while let Some(path) = next {
        let (page_ids, following, _) = page(&app.get(&path, Some(token)).await);
        pages += 1;
        ids.extend(page_ids);
        next = following;
        assert!(pages < 100, "paging does not end");
    }
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an entry came twice: {ids:?}");
    (ids, pages)
}

async fn search(app: &TestApp, query: &str, token: &str) -> HashSet<String> {
    let (ids, _) = all_pages(app, &format!("/fhir/AuditEvent?{query}"), token).await;
    ids.into_iter().collect()
}

fn ids<'a>(events: impl IntoIterator<Item = &'a AccessEvent>) -> HashSet<String> {
    events.into_iter().map(|e| e.id.to_string()).collect()
}

/// Publishes the events and waits until the ledger holds them all.
async fn log(app: &mut TestApp, events: &[AccessEvent]) {
    for e in events {
        app.publish(e).await;
    }
    app.wait_for_metric("ledger_appends_total", events.len() as f64)
        .await;
}

#[actix_web::test]
async fn every_search_parameter_selects_what_the_spec_says() {
    let mut app = spawn_app().await;
    let (doctor, _) = app.issuer.practitioner("Organization/h1");
    let doctor_ref = doctor.practitioner.clone().unwrap();
    let mut events = Vec::new();
    let mut add = |patient: &str, actor: &str, action, outcome, time: &str| {
        let mut e = event(Some(patient), actor);
        e.action = action;
        e.outcome = outcome;
        e.time = at(time);
        if actor == doctor.sub {
            e.actor.practitioner = Some(doctor_ref.clone());
        }
        events.push(e);
    };
    use AccessAction::*;
    use AccessOutcome::*;
    add(
        "Patient/alice",
        &doctor.sub,
        Read,
        Permit,
        "2026-10-31T23:59:59.999Z",
    );
    add(
        "Patient/alice",
        &doctor.sub,
        Search,
        Permit,
        "2026-11-01T00:00:00Z",
    );
    add("Patient/alice", "u2", Update, Deny, "2026-11-15T12:30:00Z");
    add("Patient/bob", "u2", Create, Permit, "2026-11-15T12:30:30Z");
    add(
        "Patient/bob",
        &doctor.sub,
        Delete,
        Error,
        "2026-11-30T23:59:59Z",
    );
    add(
        "Patient/carol",
        "u3",
        Export,
        Permit,
        "2026-12-01T00:00:00Z",
    );
    add(
        "Patient/carol",
        "u3",
        BreakGlass,
        Deny,
        "2027-01-02T08:00:00Z",
    );
    let mut login = event(None, "u3");
    login.action = Login;
    login.time = at("2026-11-20T08:00:00Z");
    events.push(login);
    log(&mut app, &events).await;
    let e = |n: &[usize]| ids(n.iter().map(|i| &events[*i]));
    let auditor = app.auditor();

    let by_practitioner = format!("agent={doctor_ref}");
    let by_user = format!("agent={}", doctor.sub);
    let mixed = format!("agent=u2,{doctor_ref}&patient=alice");
    let cases: Vec<(&str, HashSet<String>)> = vec![
        ("", e(&[0, 1, 2, 3, 4, 5, 6, 7])),
        ("patient=Patient/alice", e(&[0, 1, 2])),
        ("patient=alice", e(&[0, 1, 2])),
        ("patient=alice,bob", e(&[0, 1, 2, 3, 4])),
        ("patient=alice&patient=bob", e(&[])),
        ("patient=nobody", e(&[])),
        (&by_practitioner, e(&[0, 1, 4])),
        (&by_user, e(&[0, 1, 4])),
        ("agent=User/u2", e(&[2, 3])),
        ("agent=u2,u3", e(&[2, 3, 5, 6, 7])),
        (&mixed, e(&[0, 1, 2])),
        ("action=R", e(&[0])),
        ("action=E", e(&[1, 5, 6, 7])),
        ("action=C,U", e(&[2, 3])),
        ("action=http://hl7.org/fhir/audit-event-action|D", e(&[4])),
        ("outcome=0", e(&[0, 1, 3, 5, 7])),
        ("outcome=4", e(&[2, 6])),
        ("outcome=8", e(&[4])),
        ("outcome=12", e(&[])),
        ("outcome=4&action=U", e(&[2])),
        // Precision: the month, the day, the minute, the second.
        ("date=2026-11", e(&[1, 2, 3, 4, 7])),
        ("date=eq2026-11-15", e(&[2, 3])),
        ("date=2026-11-15T12:30Z", e(&[2, 3])),
        ("date=2026-11-15T12:30:00Z", e(&[2])),
        ("date=2026-11-15T13:30:00%2B01:00", e(&[2])),
        ("date=2026", e(&[0, 1, 2, 3, 4, 5, 7])),
        ("date=ne2026-11", e(&[0, 5, 6])),
        ("date=lt2026-11", e(&[0])),
        ("date=eb2026-11", e(&[0])),
        ("date=le2026-11", e(&[0, 1, 2, 3, 4, 7])),
        ("date=gt2026-11", e(&[5, 6])),
        ("date=sa2026-11", e(&[5, 6])),
        ("date=ge2026-11", e(&[1, 2, 3, 4, 5, 6, 7])),
        ("date=ge2026-11-15&date=lt2026-12", e(&[2, 3, 4, 7])),
        ("date=2026-11&patient=bob&outcome=8", e(&[4])),
    ];
    for (query, want) in cases {
        assert_eq!(search(&app, query, &auditor).await, want, "{query}");
    }

    // The default order is the log's, newest first; `_sort` orders by `recorded`.
    let (order, _) = all_pages(&app, "/fhir/AuditEvent", &auditor).await;
    let appended: Vec<String> = events.iter().rev().map(|e| e.id.to_string()).collect();
    assert_eq!(order, appended);
    let mut by_time: Vec<&AccessEvent> = events.iter().collect();
    by_time.sort_by_key(|e| e.time);
    let (ascending, _) = all_pages(&app, "/fhir/AuditEvent?_sort=date", &auditor).await;
    assert_eq!(
        ascending,
        by_time.iter().map(|e| e.id.to_string()).collect::<Vec<_>>()
    );
    let (descending, _) = all_pages(&app, "/fhir/AuditEvent?_sort=-date", &auditor).await;
    assert_eq!(
        descending,
        by_time
            .iter()
            .rev()
            .map(|e| e.id.to_string())
            .collect::<Vec<_>>()
    );
    app.finish().await;
}

#[actix_web::test]
async fn pages_follow_next_links_without_duplicates_or_gaps() {
    let mut app = spawn_app().await;
    // Times out of append order, with ties, so date order and index order differ.
    let events: Vec<AccessEvent> = (0..23)
        .map(|i| {
            let mut e = event(
                Some(if i % 3 == 0 {
                    "Patient/alice"
                } else {
                    "Patient/bob"
                }),
                "u1",
            );
            e.time = at(&format!("2026-11-{:02}T10:00:00Z", 1 + (i * 7) % 11));
            e
        })
        .collect();
    log(&mut app, &events).await;
    let auditor = app.auditor();
    let everything = ids(&events);

    for query in [
        "_count=5",
        "_count=5&_sort=date",
        "_count=5&_sort=-date",
        "_count=1",
    ] {
        let (got, pages) = all_pages(&app, &format!("/fhir/AuditEvent?{query}"), &auditor).await;
        assert_eq!(got.len(), 23, "{query}");
        assert_eq!(
            got.into_iter().collect::<HashSet<_>>(),
            everything,
            "{query}"
        );
        let size: usize = query[7..].split('&').next().unwrap().parse().unwrap();
        assert_eq!(pages, 23_usize.div_ceil(size), "{query}");
    }
    let (alice, pages) = all_pages(
        &app,
        "/fhir/AuditEvent?patient=alice&_count=3&_sort=-date",
        &auditor,
    )
    .await;
    let want = ids(events.iter().step_by(3));
    assert_eq!(alice.into_iter().collect::<HashSet<_>>(), want);
    assert_eq!(pages, 3);

    // The next link keeps the filters and only adds the cursor.
    let (first, next, bundle) = page(
        &app.get("/fhir/AuditEvent?patient=alice&_count=2", Some(&auditor))
            .await,
    );
    assert_eq!(first.len(), 2);
    let next = next.expect("a next page");
    assert!(
        next.contains("patient=alice") && next.contains("_count=2"),
        "{next}"
    );
    assert_eq!(
        bundle["link"][0]["url"],
        format!("{PUBLIC_URL}/fhir/AuditEvent?patient=alice&_count=2")
    );

    // Entries appended while paging do not shift later pages: nothing twice, nothing lost.
    let (first, next, _) = page(&app.get("/fhir/AuditEvent?_count=10", Some(&auditor)).await);
    let late: Vec<AccessEvent> = (0..4).map(|_| event(Some("Patient/alice"), "u1")).collect();
    for e in &late {
        app.publish(e).await;
    }
    app.wait_for_metric("ledger_appends_total", 27.0).await;
    let (rest, _) = all_pages(&app, &next.expect("next"), &auditor).await;
    let seen: Vec<String> = first.into_iter().chain(rest).collect();
    assert_eq!(seen.len(), 23);
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), everything);
    app.finish().await;
}

#[actix_web::test]
async fn an_audit_event_is_read_by_event_id_and_leads_to_its_leaf_and_proof() {
    let mut app = spawn_app().await;
    let events: Vec<AccessEvent> = (0..5).map(|_| event(Some("Patient/alice"), "u1")).collect();
    log(&mut app, &events).await;
    let (_, checkpoint) = app.wait_for_checkpoint(5).await;
    let auditor = app.auditor();

    for (index, e) in events.iter().enumerate() {
        let res = app
            .get(&format!("/fhir/AuditEvent/{}", e.id), Some(&auditor))
            .await;
        let resource = assert_fhir(&res, 200);
        assert!(custodian_fhir::validate_resource(&resource).is_ok());
        assert_eq!(event_id(&resource), e.id.to_string());
        assert_eq!(resource["action"], "R");
        assert_eq!(resource["outcome"], "0");
        assert_eq!(resource["entity"][0]["what"]["reference"], "Patient/alice");
        assert_eq!(leaf_part(&resource, "index"), index);

        // The hash is the leaf's: the entry's payload hashes to it, and its proof verifies.
        let hash = STANDARD
            .decode(leaf_part(&resource, "leafHash").as_str().unwrap())
            .unwrap();
        let entry = app
            .get(
                &path_of(leaf_part(&resource, "entry").as_str().unwrap()),
                Some(&auditor),
            )
            .await
            .json();
        assert_eq!(
            hash,
            leaf_hash(entry["payload"].as_str().unwrap().as_bytes())
        );
        let proof = app
            .get(
                &path_of(leaf_part(&resource, "inclusionProof").as_str().unwrap()),
                Some(&auditor),
            )
            .await;
        assert_eq!(proof.status, 200, "{}", proof.body);
        let proof = proof.json();
        assert_eq!(proof["leaf_hash"], *leaf_part(&resource, "leafHash"));
        let size = proof["tree_size"].as_u64().unwrap();
        assert!(size >= checkpoint.tree_size);
        let root = STANDARD
            .decode(proof["root_hash"].as_str().unwrap())
            .unwrap();
        let path: Vec<Vec<u8>> = proof["inclusion_proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| STANDARD.decode(h.as_str().unwrap()).unwrap())
            .collect();
        verify_inclusion(index as u64, size, &hash, &path, &root).unwrap();
    }

    // The same resource through search and read.
    let (_, _, bundle) = page(&app.get("/fhir/AuditEvent?_count=1", Some(&auditor)).await);
    let read = app
        .get(
            &format!("/fhir/AuditEvent/{}", events[4].id),
            Some(&auditor),
        )
        .await
        .json();
    assert_eq!(bundle["entry"][0]["resource"], read);

    let unknown = format!("/fhir/AuditEvent/{}", Uuid::new_v4());
    assert_outcome(&app.get(&unknown, Some(&auditor)).await, 404);
    assert_outcome(&app.get("/fhir/AuditEvent/4", Some(&auditor)).await, 404);
    assert_outcome(&app.get("/fhir/AuditEvent/abc", Some(&auditor)).await, 404);
    assert_outcome(
        &app.get("/fhir/AuditEvent/99999999999999999999", Some(&auditor))
            .await,
        404,
    );
    assert_outcome(
        &app.get("/fhir/AuditEvent/a%20b", Some(&auditor)).await,
        400,
    );
    let res = app
        .client
        .delete(format!("{}/fhir/AuditEvent/{}", app.address, events[0].id))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 405);
    let res = app
        .client
        .post(format!("{}/fhir/AuditEvent", app.address))
        .bearer_auth(&auditor)
        .send_body("{}")
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 405);
    app.finish().await;
}

#[actix_web::test]
async fn patients_see_their_own_practitioners_theirs_and_auditors_everything() {
    let mut app = spawn_app().await;
    let (doctor, doctor_token) = app.issuer.practitioner("Organization/h1");
    let (_, other_doctor_token) = app.issuer.practitioner("Organization/h1");
    let (_, alice) = app.issuer.patient("Patient/alice");
    let (_, bob) = app.issuer.patient("Patient/bob");
    let events = vec![
        event(Some("Patient/alice"), &doctor.sub),
        event(Some("Patient/alice"), "u2"),
        event(Some("Patient/bob"), &doctor.sub),
        event(Some("Patient/bob"), "u2"),
        event(None, &doctor.sub),
    ];
    log(&mut app, &events).await;
    let e = |n: &[usize]| ids(n.iter().map(|i| &events[*i]));

    assert_eq!(search(&app, "", &alice).await, e(&[0, 1]));
    assert_eq!(search(&app, "patient=alice", &alice).await, e(&[0, 1]));
    assert_eq!(
        search(&app, "patient=Patient/alice", &alice).await,
        e(&[0, 1])
    );
    assert_eq!(search(&app, "", &bob).await, e(&[2, 3]));
    assert_eq!(search(&app, "", &doctor_token).await, e(&[0, 2, 4]));
    assert_eq!(search(&app, "patient=bob", &doctor_token).await, e(&[2]));
    assert_eq!(search(&app, "agent=u2", &doctor_token).await, e(&[]));
    assert!(search(&app, "", &other_doctor_token).await.is_empty());
    assert_eq!(search(&app, "", &app.auditor()).await, e(&[0, 1, 2, 3, 4]));

    // A patient naming another patient is refused, as on /ledger/accesses.
    for query in ["patient=bob", "patient=alice,bob"] {
        assert_outcome(
            &app.get(&format!("/fhir/AuditEvent?{query}"), Some(&alice))
                .await,
            403,
        );
    }
    // Reads follow the same rule.
    let read = |n: usize| format!("/fhir/AuditEvent/{}", events[n].id);
    assert_eq!(app.get(&read(0), Some(&alice)).await.status, 200);
    assert_outcome(&app.get(&read(2), Some(&alice)).await, 403);
    assert_eq!(app.get(&read(2), Some(&doctor_token)).await.status, 200);
    assert_outcome(&app.get(&read(3), Some(&doctor_token)).await, 403);
    assert_outcome(&app.get(&read(0), Some(&other_doctor_token)).await, 403);

    // Services read no entries; a token is needed.
    let service = app.issuer.token(&app.issuer.claims(Role::Service));
    assert_outcome(&app.get("/fhir/AuditEvent", Some(&service)).await, 403);
    assert_eq!(app.get("/fhir/AuditEvent", None).await.status, 401);
    assert_eq!(app.get(&read(0), None).await.status, 401);

    // Reading the log adds nothing to it.
    let (_, before) = app.wait_for_checkpoint(5).await;
    assert_eq!(before.tree_size, 5);
    assert_eq!(app.metric("ledger_appends_total").await, Some(5.0));
    app.finish().await;
}

#[actix_web::test]
async fn bad_parameters_are_operation_outcomes_and_unknown_ones_follow_prefer() {
    let mut app = spawn_app().await;
    log(&mut app, &[event(Some("Patient/alice"), "u1")]).await;
    let auditor = app.auditor();
    for query in [
        "date=yesterday",
        "date=2026-13",
        "date=ap2026-11",
        "date=zz2026-11",
        "action=X",
        "action=r",
        "action=http://other.example|R",
        "outcome=1",
        "outcome=success",
        "patient=Practitioner/p1",
        "agent=Organization/o1",
        "_count=-1",
        "_sort=_lastUpdated",
        "_cursor=abc",
        "_sort=date&_cursor=5",
        "patient:missing=true",
    ] {
        assert_outcome(
            &app.get(&format!("/fhir/AuditEvent?{query}"), Some(&auditor))
                .await,
            400,
        );
    }

    // `_count` as every FHIR search takes it: 0 is an empty page, too many is lowered.
    for query in ["_count=0", "_count=100000"] {
        let answer = app
            .get(&format!("/fhir/AuditEvent?{query}"), Some(&auditor))
            .await;
        assert_eq!(answer.status, 200, "{query}");
    }

    // Unknown parameters: ignored and reported by default, refused when strict.
    let (ids, _, bundle) = page(
        &app.get(
            "/fhir/AuditEvent?entity-type=2&patient=alice",
            Some(&auditor),
        )
        .await,
    );
    assert_eq!(ids.len(), 1);
    let outcome = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["search"]["mode"] == "outcome")
        .expect("an outcome entry");
    assert_eq!(outcome["resource"]["resourceType"], "OperationOutcome");
    assert!(outcome["resource"]["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("entity-type"));
    assert_eq!(
        bundle["link"][0]["url"],
        format!("{PUBLIC_URL}/fhir/AuditEvent?patient=alice"),
        "the self link names what was used"
    );
    let mut res = app
        .client
        .get(format!("{}/fhir/AuditEvent?entity-type=2", app.address))
        .bearer_auth(&auditor)
        .insert_header(("Prefer", "handling=strict"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let body: Value = serde_json::from_slice(&res.body().await.unwrap()).unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome");
    app.finish().await;
}

#[derive(QueryableByName)]
struct Backfilled {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    idx: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    action: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    outcome: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    actor_practitioner: Option<String>,
}

#[actix_web::test]
async fn leaves_logged_before_the_search_columns_are_backfilled() {
    let url = format!(
        "postgres://postgres@127.0.0.1:5432/ledger_test_{}",
        Uuid::new_v4().simple()
    );
    custodian_database::ensure_database(&url)
        .await
        .expect("database created");
    let check = url.clone();
    tokio::task::spawn_blocking(move || {
        use diesel::RunQueryDsl;
        let mut conn =
            <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&check)
                .expect("connect");
        conn.run_pending_migrations(ledger::startup::MIGRATIONS)
            .expect("up");
        // Back to the schema before this migration (and any later one).
        while conn
            .applied_migrations()
            .expect("applied")
            .iter()
            .any(|v| v.to_string().replace('-', "").starts_with("20261201000003"))
        {
            conn.revert_last_migration(ledger::startup::MIGRATIONS)
                .expect("down");
        }
        let mut glass = event(Some("Patient/alice"), "u1");
        glass.action = AccessAction::BreakGlass;
        glass.outcome = AccessOutcome::Deny;
        glass.actor.practitioner = Some("Practitioner/p1".into());
        // A NUL escape, which PostgreSQL's jsonb refuses but the ledger accepted.
        glass.source.user_agent = Some("agent\u{0}x".into());
        let payloads = [
            serde_json::to_string(&event(None, "u2")).unwrap(),
            serde_json::to_string(&glass).unwrap(),
        ];
        assert!(payloads[1].contains("\\u0000"));
        for (idx, payload) in payloads.iter().enumerate() {
            sql_query(
                "INSERT INTO leaves (idx, event_id, leaf_hash, payload, patient_ref, actor_id, time) \
                 VALUES ($1, $2, $3, $4, NULL, 'u', now())",
            )
            .bind::<diesel::sql_types::BigInt, _>(idx as i64)
            .bind::<diesel::sql_types::Uuid, _>(Uuid::new_v4())
            .bind::<diesel::sql_types::Bytea, _>(leaf_hash(payload.as_bytes()).to_vec())
            .bind::<diesel::sql_types::Text, _>(payload)
            .execute(&mut conn)
            .expect("old-style insert");
        }
        conn.run_pending_migrations(ledger::startup::MIGRATIONS)
            .expect("up again");
        let rows: Vec<Backfilled> = sql_query(
            "SELECT idx, action, outcome, actor_practitioner FROM leaves ORDER BY idx",
        )
        .load(&mut conn)
        .expect("rows");
        let got: Vec<(i64, &str, &str, Option<&str>)> = rows
            .iter()
            .map(|r| {
                (
                    r.idx,
                    r.action.as_str(),
                    r.outcome.as_str(),
                    r.actor_practitioner.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (0, "read", "permit", None),
                (1, "break-glass", "deny", Some("Practitioner/p1")),
            ]
        );
    })
    .await
    .expect("migration checks");
    custodian_database::drop_database(&url)
        .await
        .expect("dropped");
}

/// Search latency over HTTP on a log of 20,000 leaves. Not a pass/fail test:
/// `cargo test -p ledger --test api audit_event_search_latency -- --ignored --nocapture`.
#[actix_web::test]
#[ignore]
async fn audit_event_search_latency() {
    use std::time::{Duration, Instant};
    let mut app = spawn_app().await;
    let n = 20_000u64;
    let stream = format!("{}:access", app.prefix);
    for chunk in 0..(n / 1000) {
        let mut pipe = redis::pipe();
        for i in chunk * 1000..(chunk + 1) * 1000 {
            let mut e = event(
                Some(&format!("Patient/p{}", i % 500)),
                &format!("u{}", i % 50),
            );
            e.time = at("2026-01-01T00:00:00Z") + chrono::Duration::minutes(i as i64 * 26);
            if i % 50 == 0 {
                e.outcome = AccessOutcome::Deny;
            }
            let json = serde_json::to_string(&e).unwrap();
            let command = pipe.cmd("XADD").arg(&stream).arg("*");
            for (name, value) in
                custodian_events::signing::test_fields(&stream, &e.id.to_string(), &json)
            {
                command.arg(name).arg(value);
            }
            command.ignore();
        }
        let _: () = pipe.query_async(&mut app.redis).await.unwrap();
    }
    app.wait_for_metric("ledger_appends_total", n as f64).await;
    let auditor = app.auditor();
    let (_, alice) = app.issuer.patient("Patient/p7");
    let queries: [(&str, &str); 6] = [
        ("first page, auditor", "/fhir/AuditEvent"),
        ("deep page (cursor)", "/fhir/AuditEvent?_cursor=1000"),
        ("patient", "/fhir/AuditEvent?patient=p7"),
        ("month, -date", "/fhir/AuditEvent?date=2026-06&_sort=-date"),
        ("outcome=4, agent", "/fhir/AuditEvent?outcome=4&agent=u0"),
        ("patient's own, 200", "/fhir/AuditEvent?_count=200"),
    ];
    for (name, path) in queries {
        let token = if name.starts_with("patient's") {
            &alice
        } else {
            &auditor
        };
        let mut times: Vec<Duration> = Vec::new();
        for _ in 0..50 {
            let started = Instant::now();
            let res = app.get(path, Some(token)).await;
            times.push(started.elapsed());
            assert_eq!(res.status, 200, "{}", res.body);
        }
        times.sort();
        println!(
            "{name:>22}: p50 {:.1?}, p95 {:.1?} ({} bytes)",
            times[25],
            times[47],
            app.get(path, Some(token)).await.body.len()
        );
    }
    app.finish().await;
}
