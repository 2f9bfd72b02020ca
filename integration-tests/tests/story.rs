//! The product's story, end to end, against the six services as real processes on real ports,
//! with the local PostgreSQL and Redis (issue #2), under the custodian rule (issue #5):
//! Hospital1 registers Alice and Bob, so it holds their records and treats them without a
//! consent; Alice's consent admits Hospital2; Bob gave none, so Hospital2 sees nothing of his
//! but by breaking the glass for him; Alice's revocation shuts Hospital2 out within a second.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::time::{Duration, Instant};

use awc::http::Method;
use integration_tests::{
    api::Gateway,
    demo::{self, DIABETES},
    suite::Suite,
    verify,
};
use serde_json::{json, Value};

async fn sleep(ms: u64) {
    actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
}

/// Polls `check` until it returns Some or `limit` passes.
async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        sleep(50).await;
    }
}

fn is_outcome(body: &Value) -> bool {
    body["resourceType"] == "OperationOutcome"
        && body["issue"].as_array().is_some_and(|i| !i.is_empty())
}

/// The ids of a searchset Bundle's entries.
fn entry_ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|x| x["resource"]["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The sum of a metric's samples whose labels include every `name="value"` of `labels`.
async fn metric(url: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = awc::Client::default()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("metrics answer")
        .body()
        .await
        .expect("metrics body");
    String::from_utf8_lossy(&text)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Checks every entry of a `/ledger/accesses` answer against its signed checkpoint with the
/// story's own verifier, and that a forged leaf does not verify.
fn verify_accesses(accesses: &Value, verifier_key: &str) {
    let checkpoint =
        verify::verify_checkpoint(accesses["checkpoint"].as_str().unwrap(), verifier_key)
            .expect("checkpoint signature verifies");
    assert_eq!(checkpoint.size, accesses["tree_size"].as_u64().unwrap());
    let entries = accesses["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    let proof_of = |entry: &Value| -> Vec<verify::Hash> {
        entry["inclusion_proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| verify::decode_hash(h.as_str().unwrap()).unwrap())
            .collect()
    };
    for entry in entries {
        let leaf = verify::decode_hash(entry["leaf_hash"].as_str().unwrap()).unwrap();
        assert_eq!(
            leaf,
            verify::leaf_hash(entry["payload"].as_str().unwrap().as_bytes()),
            "the leaf hash is not the hash of the payload"
        );
        assert!(
            verify::verify_inclusion(
                entry["index"].as_u64().unwrap(),
                checkpoint.size,
                &leaf,
                &proof_of(entry),
                &checkpoint.root
            ),
            "inclusion proof of entry {} does not verify",
            entry["index"]
        );
    }
    // A tampered leaf must not verify.
    let first = &entries[0];
    assert!(!verify::verify_inclusion(
        first["index"].as_u64().unwrap(),
        checkpoint.size,
        &verify::leaf_hash(b"forged"),
        &proof_of(first),
        &checkpoint.root
    ));
}

/// The events of a `/ledger/accesses` answer.
fn events(accesses: &Value) -> Vec<&Value> {
    accesses["entries"]
        .as_array()
        .map(|e| e.iter().map(|x| &x["event"]).collect())
        .unwrap_or_default()
}

/// Polls `/ledger/accesses{query}` as `token` until an event satisfies `wanted`.
async fn ledger_until(
    gw: &Gateway,
    token: &str,
    query: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Option<Value> {
    eventually(Duration::from_secs(10), || async {
        let r = gw
            .get(&format!("/ledger/accesses{query}"), Some(token))
            .await
            .ok()?;
        let body = r.json();
        events(&body).into_iter().any(&wanted).then_some(body)
    })
    .await
}

#[actix_web::test]
async fn the_story() {
    let suite = Suite::start().await;
    let gw = Gateway::new(suite.gateway_url());

    // 0. Discovery without a token.
    let metadata = gw
        .get("/fhir/metadata", None)
        .await
        .unwrap()
        .expect_status(200)
        .unwrap()
        .json();
    assert_eq!(metadata["resourceType"], "CapabilityStatement");
    assert_eq!(metadata["fhirVersion"], "4.0.1");
    let smart = gw
        .get("/fhir/.well-known/smart-configuration", None)
        .await
        .unwrap()
        .expect_status(200)
        .unwrap()
        .json();
    assert!(
        smart["token_endpoint"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/auth/token"),
        "{smart}"
    );
    let jwks = gw
        .get("/.well-known/jwks.json", None)
        .await
        .unwrap()
        .expect_status(200)
        .unwrap()
        .json();
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    let openapi = gw
        .get("/openapi.json", None)
        .await
        .unwrap()
        .expect_status(200)
        .unwrap()
        .json();
    assert!(
        openapi["paths"]
            .as_object()
            .is_some_and(|p| p.contains_key("/auth/token")),
        "merged OpenAPI lacks identity's paths"
    );

    // 1-3. The administrator registers the hospitals, practitioners, an auditor and the
    // patients' logins; Hospital1 registers Alice and Bob (so it holds their records) and
    // writes their data; Alice consents to Hospital2 reading hers for treatment.
    let demo = demo::seed(&gw, &suite.admin_password)
        .await
        .expect("demo data loads");
    let login = async |user: &demo::DemoUser| gw.login(&user.username, &user.password).await;
    let h1 = login(&demo.h1_practitioner).await.unwrap();
    let h2 = login(&demo.h2_practitioner).await.unwrap();
    let alice = login(&demo.alice).await.unwrap();
    let bob = login(&demo.bob).await.unwrap();
    let auditor = login(&demo.auditor).await.unwrap();
    let alice_id = demo.alice.patient.clone().unwrap();
    let bob_id = demo.bob.patient.clone().unwrap();
    let consent_ref = format!("Consent/{}", demo.alice_consent);

    // No token, no data.
    let observation_path = format!("/fhir/Observation/{}", demo.alice_observation);
    let bob_observation_path = format!("/fhir/Observation/{}", demo.bob_observation);
    let anonymous = gw.get(&observation_path, None).await.unwrap();
    assert_eq!(anonymous.status, 401);
    assert!(is_outcome(&anonymous.json()));

    // 4. Hospital1 holds both records: it reads Alice's and Bob's data for treatment without
    // a consent.
    let read = gw
        .get(&observation_path, Some(&h1))
        .await
        .unwrap()
        .expect_status(200)
        .unwrap();
    let body = read.json();
    assert_eq!(body["resourceType"], "Observation");
    assert_eq!(body["valueQuantity"]["value"], 142.0);
    assert_eq!(body["subject"]["reference"], alice_id.as_str());
    let bobs = gw
        .get(&bob_observation_path, Some(&h1))
        .await
        .unwrap()
        .expect_status(200)
        .unwrap()
        .json();
    assert_eq!(bobs["subject"]["reference"], bob_id.as_str());
    let disease_search = format!("/fhir/Condition?code={}", DIABETES.replace('|', "%7C"));
    let h1_search = gw
        .get(&disease_search, Some(&h1))
        .await
        .unwrap()
        .expect_status(200)
        .unwrap()
        .json();
    assert_eq!(h1_search["resourceType"], "Bundle");
    assert_eq!(h1_search["type"], "searchset");
    let ids = entry_ids(&h1_search);
    assert!(
        ids.contains(&demo.alice_condition) && ids.contains(&demo.bob_condition),
        "Hospital1 holds both records, yet its search returned {ids:?}"
    );
    assert_eq!(h1_search["total"], 2, "{h1_search}");

    // Hospital2's disease search finds Alice (her consent admits it, once it is in force in
    // records), never Bob, and its total counts only what it may see.
    let h2_search = eventually(Duration::from_secs(5), || async {
        let r = gw.get(&disease_search, Some(&h2)).await.ok()?;
        let body = r.json();
        (r.status == 200 && entry_ids(&body).contains(&demo.alice_condition)).then_some(body)
    })
    .await
    .expect("Hospital2's search finds Alice's Condition once her consent is in force");
    let ids = entry_ids(&h2_search);
    assert!(
        !ids.contains(&demo.bob_condition),
        "Bob gave no consent, yet his condition was returned to Hospital2"
    );
    assert_eq!(
        h2_search["total"], 1,
        "the total counts hidden data: {h2_search}"
    );
    assert_eq!(ids.len(), 1);

    // Hospital2 reads Alice's Observation; Bob's is, for it, exactly like an id that does
    // not exist.
    let h2_read = gw
        .get(&observation_path, Some(&h2))
        .await
        .unwrap()
        .expect_status(200)
        .unwrap()
        .json();
    assert_eq!(h2_read["valueQuantity"]["value"], 142.0);
    let hidden = gw.get(&bob_observation_path, Some(&h2)).await.unwrap();
    let absent = gw
        .get("/fhir/Observation/no-such-observation", Some(&h2))
        .await
        .unwrap();
    assert_eq!(hidden.status, 404, "{}", hidden.text);
    assert_eq!(absent.status, 404, "{}", absent.text);
    let (hidden, absent) = (hidden.json(), absent.json());
    assert!(is_outcome(&hidden), "{hidden}");
    assert_eq!(hidden["issue"][0]["code"], absent["issue"][0]["code"]);
    assert_eq!(
        hidden["issue"][0]["severity"],
        absent["issue"][0]["severity"]
    );
    assert!(
        !hidden.to_string().contains(&bob_id),
        "the 404 names the patient: {hidden}"
    );
    // A search naming Bob answers an empty Bundle.
    let named = gw
        .get(&format!("/fhir/Observation?patient={bob_id}"), Some(&h2))
        .await
        .unwrap()
        .expect_status(200)
        .unwrap()
        .json();
    assert_eq!(named["resourceType"], "Bundle");
    assert_eq!(named["total"], 0, "{named}");
    assert!(entry_ids(&named).is_empty());
    // Her consent lets Hospital2 read her record, not write into it.
    let planted = gw
        .post(
            "/fhir/Observation",
            Some(&h2),
            &json!({
                "resourceType": "Observation",
                "status": "final",
                "code": { "coding": [{ "system": "http://loinc.org", "code": "2339-0" }] },
                "subject": { "reference": alice_id },
                "valueQuantity": { "value": 99.0, "unit": "mg/dL" }
            }),
        )
        .await
        .unwrap();
    assert_eq!(planted.status, 403, "{}", planted.text);
    assert!(is_outcome(&planted.json()));

    // Alice reads her own record; Bob's is not there for her.
    gw.get(&format!("/fhir/{alice_id}"), Some(&alice))
        .await
        .unwrap()
        .expect_status(200)
        .unwrap();
    let not_hers = gw
        .get(&format!("/fhir/{bob_id}"), Some(&alice))
        .await
        .unwrap();
    assert_eq!(not_hers.status, 404, "{}", not_hers.text);
    // Consents are shown to the patient and to those they name, not to every practitioner.
    let listed = |token: String| {
        let gw = gw.clone();
        async move {
            let bundle = gw
                .get("/fhir/Consent", Some(&token))
                .await
                .unwrap()
                .expect_status(200)
                .unwrap()
                .json();
            entry_ids(&bundle)
        }
    };
    assert!(listed(alice.clone()).await.contains(&demo.alice_consent));
    assert!(
        listed(h2.clone()).await.contains(&demo.alice_consent),
        "Hospital2 does not list the consent that names it"
    );
    assert!(
        !listed(h1.clone()).await.contains(&demo.alice_consent),
        "Hospital1 lists a consent that does not name it"
    );

    // Break-the-glass: Hospital2 reads Bob's Observation in an emergency, stating why; one
    // patient at a time, never a broad search.
    let reason = "unconscious in the emergency department, no consent on file";
    let glass = [("X-Break-Glass", reason)];
    let broken = gw
        .send(Method::GET, &bob_observation_path, Some(&h2), &glass, None)
        .await
        .unwrap()
        .expect_status(200)
        .unwrap()
        .json();
    assert_eq!(broken["subject"]["reference"], bob_id.as_str());
    let broad = gw
        .send(
            Method::GET,
            "/fhir/Observation?code=2339-0&_count=500",
            Some(&h2),
            &[("X-Break-Glass", "everyone, just in case")],
            None,
        )
        .await
        .unwrap();
    assert_eq!(broad.status, 403, "{}", broad.text);
    assert!(is_outcome(&broad.json()));
    // Without the header, Bob's data is hidden again.
    assert_eq!(
        gw.get(&bob_observation_path, Some(&h2))
            .await
            .unwrap()
            .status,
        404
    );

    // 5. Every access reaches the ledger with what decided it; Alice asks who accessed her
    // data and verifies each entry's inclusion proof against the signed checkpoint.
    let key = gw
        .get("/ledger/key", None)
        .await
        .unwrap()
        .expect_status(200)
        .unwrap()
        .json();
    let verifier_key = key["verifier_key"]
        .as_str()
        .expect("verifier key")
        .to_string();
    let is_read_by = |e: &Value, organization: &str, basis: &str| {
        e["action"] == "read"
            && e["outcome"] == "permit"
            && e["actor"]["organization"] == organization
            && e["decision"]["basis"] == basis
    };
    let alice_accesses = eventually(Duration::from_secs(10), || async {
        let r = gw.get("/ledger/accesses", Some(&alice)).await.ok()?;
        let body = r.json();
        let list = events(&body);
        let custodian = list
            .iter()
            .any(|e| is_read_by(e, &demo.hospital1, "custodian"));
        let consented = list.iter().any(|e| {
            is_read_by(e, &demo.hospital2, "consent")
                && e["decision"]["consents"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c == consent_ref.as_str()))
        });
        // Hospital2's refused write came after its read: wait for it too, as the ledger
        // appends what reaches it in batches.
        let refused_write = list.iter().any(|e| {
            e["action"] == "create"
                && e["outcome"] == "deny"
                && e["actor"]["organization"] == demo.hospital2
        });
        (custodian && consented && refused_write).then_some(body)
    })
    .await
    .expect(
        "Hospital1's read (custodian), Hospital2's read (her consent) and its refused write \
         reach her history",
    );
    verify_accesses(&alice_accesses, &verifier_key);
    for event in events(&alice_accesses) {
        assert_eq!(
            event["patient"],
            alice_id.as_str(),
            "Alice sees only her own accesses"
        );
        assert!(event["request_id"].is_string(), "no request id: {event}");
    }

    // Bob sees Hospital2's refused read and its break-glass read, flagged, with the reason.
    let is_break_glass = |e: &Value| {
        e["outcome"] == "permit"
            && e["break_glass"] == true
            && e["actor"]["organization"] == demo.hospital2
            && e["decision"]["basis"] == "break-glass"
            && e["decision"]["break_glass_reason"] == reason
    };
    let is_refused_read = |e: &Value| {
        e["outcome"] == "deny"
            && e["actor"]["organization"] == demo.hospital2
            && e["decision"]["basis"] == "no-permit"
    };
    // Polled until both are there: neither is promised to land in the order it was made.
    let bob_accesses = eventually(Duration::from_secs(10), || async {
        let body = gw.get("/ledger/accesses", Some(&bob)).await.ok()?.json();
        let list = events(&body);
        (list.iter().any(|e| is_break_glass(e)) && list.iter().any(|e| is_refused_read(e)))
            .then_some(body)
    })
    .await
    .expect(
        "the break-glass read (flagged, with its reason) and Hospital2's refused read reach \
         Bob's history",
    );
    verify_accesses(&bob_accesses, &verifier_key);
    let bob_events = events(&bob_accesses);
    assert!(bob_events.iter().all(|e| e["patient"] == bob_id.as_str()));
    // The auditor sees the refused broad break-glass search (it names no patient).
    ledger_until(&gw, &auditor, "", |e| {
        e["outcome"] == "deny"
            && e["action"] == "search"
            && e["actor"]["id"] == demo.h2_practitioner.id.as_str()
            && e["decision"]["basis"] == "break-glass-refused"
    })
    .await
    .expect("the refused broad break-glass search is in the ledger");
    // Hospital2 cannot read Alice's access history: only its own accesses.
    let h2_ledger = gw
        .get(&format!("/ledger/accesses?patient={alice_id}"), Some(&h2))
        .await
        .unwrap();
    assert!(
        h2_ledger.status == 403
            || events(&h2_ledger.json())
                .iter()
                .all(|e| e["actor"]["organization"] == demo.hospital2),
        "{}",
        h2_ledger.text
    );
    // The break-glass raised an alert for review, without suspending the physician.
    let h2_alerts = eventually(Duration::from_secs(15), || async {
        let body = gw
            .get(
                &format!("/anomaly/alerts?user={}", demo.h2_practitioner.id),
                Some(&auditor),
            )
            .await
            .ok()?
            .json();
        let list = body.as_array().cloned()?;
        (!list.is_empty()).then_some(list)
    })
    .await
    .expect("the break-glass read raises an alert");
    assert!(
        h2_alerts
            .iter()
            .all(|a| a["user_id"] == demo.h2_practitioner.id.as_str() && a["suspended"] == false),
        "{h2_alerts:?}"
    );

    // 6. A burst of reads by one user across many unrelated patients raises an alert and
    // suspends that user; the user's next request is refused.
    let admin = gw.login("admin", &suite.admin_password).await.unwrap();
    let new_user = async |username: &str, organization: &str| {
        let password = format!("{username}-password-1");
        let body = json!({ "username": username, "password": password, "role": "practitioner", "organization": organization });
        let created = gw
            .post("/auth/admin/users", Some(&admin), &body)
            .await
            .unwrap()
            .expect_status(201)
            .unwrap()
            .json();
        (
            created["id"].as_str().unwrap().to_string(),
            gw.login(username, &password).await.unwrap(),
        )
    };
    let (snooper_id, snooper) = new_user("snooper", &demo.hospital2).await;
    // A registration clerk of Hospital1 enters twenty unrelated patients (creating is not
    // reading); Hospital1 holds them, and none has consented to Hospital2.
    let (_, registrar) = new_user("registrar", &demo.hospital1).await;
    let mut patients = Vec::new();
    for i in 0..20 {
        let patient =
            json!({ "resourceType": "Patient", "name": [{ "family": format!("Unrelated{i}") }] });
        let created = gw
            .post("/fhir/Patient", Some(&registrar), &patient)
            .await
            .unwrap()
            .expect_status(201)
            .unwrap()
            .json();
        assert_eq!(
            created["managingOrganization"]["reference"],
            demo.hospital1.as_str()
        );
        patients.push(created["id"].as_str().unwrap().to_string());
    }
    for id in &patients {
        let r = gw
            .get(&format!("/fhir/Patient/{id}"), Some(&snooper))
            .await
            .unwrap();
        // Hidden (404), or already refused because the snooper is suspended (403).
        assert!(
            r.status == 404 || (r.status == 403 && r.text.contains("suspended")),
            "unexpected {}: {}",
            r.status,
            r.text
        );
    }
    // The burst is scored as it reaches anomaly: an early alert (the first denials) may be
    // below the suspension threshold; the incident's later events must take it over.
    let alerts_of_snooper = || async {
        let body = gw
            .get(
                &format!("/anomaly/alerts?user={snooper_id}"),
                Some(&auditor),
            )
            .await
            .ok()?
            .json();
        body.as_array().cloned()
    };
    let suspending = eventually(Duration::from_secs(15), || async {
        let list = alerts_of_snooper().await?;
        list.iter()
            .any(|a| a["user_id"] == snooper_id.as_str() && a["suspended"] == true)
            .then_some(())
    })
    .await;
    let alerts = alerts_of_snooper().await.unwrap_or_default();
    assert!(!alerts.is_empty(), "the burst raises an alert");
    assert!(
        suspending.is_some(),
        "no alert suspends the snooper: {alerts:?}"
    );
    let refused = eventually(Duration::from_secs(10), || async {
        let r = gw
            .get(&format!("/fhir/Patient/{}", patients[0]), Some(&snooper))
            .await
            .ok()?;
        (r.status == 403 && r.text.contains("suspended")).then_some(r)
    })
    .await
    .expect("the suspended user's next request is refused");
    assert!(is_outcome(&refused.json()));
    let relogin = gw
        .token(&[
            ("grant_type", "password"),
            ("username", "snooper"),
            ("password", "snooper-password-1"),
        ])
        .await
        .unwrap();
    assert_eq!(relogin.status, 400, "a suspended user gets no new token");
    // The practitioners reading normally are not suspended.
    for token in [&h1, &h2] {
        gw.get(&observation_path, Some(token))
            .await
            .unwrap()
            .expect_status(200)
            .unwrap();
    }

    // 7. Alice revokes her consent; Hospital2's next read is refused within one second, while
    // Hospital1, which holds her record, still treats her.
    let consent_path = format!("/fhir/{consent_ref}");
    let mut consent = gw
        .get(&consent_path, Some(&alice))
        .await
        .unwrap()
        .expect_status(200)
        .unwrap()
        .json();
    consent["status"] = json!("inactive");
    gw.put(&consent_path, Some(&alice), &consent)
        .await
        .unwrap()
        .expect_status(200)
        .unwrap();
    let revoked_at = Instant::now();
    let refused_after = eventually(Duration::from_secs(1), || async {
        let r = gw.get(&observation_path, Some(&h2)).await.ok()?;
        (r.status == 404).then_some(revoked_at.elapsed())
    })
    .await;
    assert!(
        refused_after.is_some(),
        "Hospital2 could still read Alice's data a second after she revoked her consent"
    );
    let no_longer = gw.get(&disease_search, Some(&h2)).await.unwrap().json();
    assert_eq!(no_longer["total"], 0, "{no_longer}");
    gw.get(&observation_path, Some(&h1))
        .await
        .unwrap()
        .expect_status(200)
        .unwrap();
    ledger_until(&gw, &alice, "", |e| {
        e["action"] == "read"
            && e["outcome"] == "deny"
            && e["actor"]["organization"] == demo.hospital2
            && e["decision"]["basis"] == "no-permit"
    })
    .await
    .expect("Hospital2's refused read after the revocation is in Alice's history");

    // 8. Every service's /metrics shows requests; records its access decisions by effect and
    // basis; the ledger its size; anomaly its alerts.
    for service in integration_tests::suite::SERVICES {
        assert!(
            metric(&suite.url(service), "custodian_http_requests_total", &[]).await > 0.0,
            "{service} counts no requests"
        );
    }
    let records = suite.url("records");
    // Labels: effect (permit, deny, break_glass), basis (the event's `decision.basis`).
    let decisions = "custodian_access_decisions_total";
    for (effect, basis) in [
        ("permit", "custodian"),
        ("permit", "consent"),
        ("break_glass", "break-glass"),
        ("deny", "no-permit"),
        ("deny", "break-glass-refused"),
    ] {
        assert!(
            metric(&records, decisions, &[("effect", effect), ("basis", basis)]).await >= 1.0,
            "records counts no {effect} on basis {basis}"
        );
    }
    let entries = alice_accesses["entries"].as_array().unwrap().len();
    let size = eventually(Duration::from_secs(5), || async {
        let v = metric(&suite.url("ledger"), "custodian_ledger_tree_size", &[]).await;
        (v >= entries as f64).then_some(v)
    })
    .await;
    assert!(
        size.is_some(),
        "ledger_tree_size does not show the appended accesses"
    );
    assert!(metric(&suite.url("anomaly"), "custodian_anomaly_alerts_total", &[]).await >= 2.0);
}
