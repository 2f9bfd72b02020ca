//! The product's story, end to end, against the six services as real processes on real ports,
//! with the local PostgreSQL and Redis (issue #2).

use std::time::{Duration, Instant};

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

async fn metric(url: &str, name: &str) -> f64 {
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
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
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

    // 1-3. The administrator registers the hospitals, practitioners and Alice; Hospital1 writes
    // her records; Alice consents to Hospital1 reading them for treatment.
    let demo = demo::seed(&gw, &suite.admin_password)
        .await
        .expect("demo data loads");
    let h1 = gw
        .login(
            &demo.h1_practitioner.username,
            &demo.h1_practitioner.password,
        )
        .await
        .unwrap();
    let h2 = gw
        .login(
            &demo.h2_practitioner.username,
            &demo.h2_practitioner.password,
        )
        .await
        .unwrap();
    let alice = gw
        .login(&demo.alice.username, &demo.alice.password)
        .await
        .unwrap();
    let auditor = gw
        .login(&demo.auditor.username, &demo.auditor.password)
        .await
        .unwrap();

    // No token, no data.
    let anonymous = gw
        .get(
            &format!("/fhir/Observation/{}", demo.alice_observation),
            None,
        )
        .await
        .unwrap();
    assert_eq!(anonymous.status, 401);
    assert!(is_outcome(&anonymous.json()));

    // 4. Hospital1 reads Alice's Observation; Hospital2 is refused with an OperationOutcome.
    let observation_path = format!("/fhir/Observation/{}", demo.alice_observation);
    let read = eventually(Duration::from_secs(5), || async {
        let r = gw.get(&observation_path, Some(&h1)).await.ok()?;
        (r.status == 200).then_some(r)
    })
    .await
    .expect("Hospital1 may read Alice's Observation once her consent is in force");
    let body = read.json();
    assert_eq!(body["resourceType"], "Observation");
    assert_eq!(body["valueQuantity"]["value"], 142.0);
    assert_eq!(
        body["subject"]["reference"],
        demo.alice.patient.clone().unwrap()
    );

    let denied = gw.get(&observation_path, Some(&h2)).await.unwrap();
    assert_eq!(denied.status, 403, "{}", denied.text);
    assert!(is_outcome(&denied.json()));

    // Hospital1's disease search sees only consenting patients: Alice, not Bob.
    let search = gw
        .get(
            &format!("/fhir/Condition?code={}", DIABETES.replace('|', "%7C")),
            Some(&h1),
        )
        .await
        .unwrap()
        .expect_status(200)
        .unwrap()
        .json();
    assert_eq!(search["resourceType"], "Bundle");
    assert_eq!(search["type"], "searchset");
    let ids: Vec<&str> = search["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|x| x["resource"]["id"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        ids.contains(&demo.alice_condition.as_str()),
        "Alice's condition missing from {ids:?}"
    );
    assert!(
        !ids.contains(&demo.bob_condition.as_str()),
        "Bob gave no consent, yet his condition was returned"
    );

    // Alice reads her own record; she cannot read Bob's.
    let alice_id = demo.alice.patient.clone().unwrap();
    gw.get(
        &format!("/{}", alice_id.replacen("Patient/", "fhir/Patient/", 1)),
        Some(&alice),
    )
    .await
    .unwrap()
    .expect_status(200)
    .unwrap();
    let not_hers = gw
        .get(&format!("/fhir/{}", demo.bob), Some(&alice))
        .await
        .unwrap();
    assert_eq!(not_hers.status, 403);

    // 5. Every access reaches the ledger; Alice asks who accessed her data and verifies each
    // entry's inclusion proof against the signed checkpoint.
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
    let accesses = eventually(Duration::from_secs(10), || async {
        let r = gw.get("/ledger/accesses", Some(&alice)).await.ok()?;
        let body = r.json();
        let entries = body["entries"].as_array()?;
        let permitted_h1 = entries.iter().any(|e| {
            e["event"]["action"] == "read"
                && e["event"]["outcome"] == "permit"
                && e["event"]["actor"]["organization"] == demo.hospital1
        });
        let denied_h2 = entries.iter().any(|e| {
            e["event"]["outcome"] == "deny" && e["event"]["actor"]["organization"] == demo.hospital2
        });
        (permitted_h1 && denied_h2).then_some(body)
    })
    .await
    .expect("Hospital1's read and Hospital2's denied read reach Alice's access history");
    let checkpoint =
        verify::verify_checkpoint(accesses["checkpoint"].as_str().unwrap(), &verifier_key)
            .expect("checkpoint signature verifies");
    assert_eq!(checkpoint.size, accesses["tree_size"].as_u64().unwrap());
    let entries = accesses["entries"].as_array().unwrap();
    for entry in entries {
        let leaf = verify::decode_hash(entry["leaf_hash"].as_str().unwrap()).unwrap();
        let proof: Vec<verify::Hash> = entry["inclusion_proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| verify::decode_hash(h.as_str().unwrap()).unwrap())
            .collect();
        assert!(
            verify::verify_inclusion(
                entry["index"].as_u64().unwrap(),
                checkpoint.size,
                &leaf,
                &proof,
                &checkpoint.root
            ),
            "inclusion proof of entry {} does not verify",
            entry["index"]
        );
        assert_eq!(
            entry["event"]["patient"],
            alice_id.as_str(),
            "Alice sees only her own accesses"
        );
    }
    // A tampered leaf must not verify.
    let first = &entries[0];
    let proof: Vec<verify::Hash> = first["inclusion_proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| verify::decode_hash(h.as_str().unwrap()).unwrap())
        .collect();
    assert!(!verify::verify_inclusion(
        first["index"].as_u64().unwrap(),
        checkpoint.size,
        &verify::leaf_hash(b"forged"),
        &proof,
        &checkpoint.root
    ));
    // Bob's accesses are not shown to Alice, and Hospital2 cannot read the ledger of Alice.
    let h2_ledger = gw
        .get(&format!("/ledger/accesses?patient={alice_id}"), Some(&h2))
        .await
        .unwrap();
    assert!(
        h2_ledger.status == 403
            || h2_ledger.json()["entries"].as_array().is_some_and(|e| e
                .iter()
                .all(|x| x["event"]["actor"]["organization"] == demo.hospital2))
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
    // A registration clerk enters twenty unrelated patients (creating is not reading).
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
        patients.push(created["id"].as_str().unwrap().to_string());
    }
    for id in &patients {
        let r = gw
            .get(&format!("/fhir/Patient/{id}"), Some(&snooper))
            .await
            .unwrap();
        assert!(
            r.status == 403 || r.status == 200,
            "unexpected {}",
            r.status
        );
    }
    let alerts = eventually(Duration::from_secs(15), || async {
        let body = gw.get("/anomaly/alerts", Some(&auditor)).await.ok()?.json();
        let list = body
            .as_array()
            .cloned()
            .or_else(|| body["alerts"].as_array().cloned())?;
        (!list.is_empty()).then_some(list)
    })
    .await
    .expect("the burst raises an alert");
    assert!(
        alerts.iter().any(|a| a["user_id"] == snooper_id.as_str()),
        "no alert names the snooper: {alerts:?}"
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
    // Hospital1's practitioner, reading normally, is not suspended.
    gw.get(&observation_path, Some(&h1))
        .await
        .unwrap()
        .expect_status(200)
        .unwrap();

    // 7. Alice revokes her consent; Hospital1's next read is denied within one second.
    let consent_path = format!("/fhir/Consent/{}", demo.alice_consent);
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
    let denied_after = eventually(Duration::from_secs(1), || async {
        let r = gw.get(&observation_path, Some(&h1)).await.ok()?;
        (r.status == 403).then_some(revoked_at.elapsed())
    })
    .await;
    assert!(
        denied_after.is_some(),
        "Hospital1 could still read Alice's data a second after she revoked her consent"
    );

    // 8. Every service's /metrics shows requests, consent decisions, ledger size and alerts.
    for service in integration_tests::suite::SERVICES {
        assert!(
            metric(&suite.url(service), "custodian_http_requests_total").await > 0.0,
            "{service} counts no requests"
        );
    }
    assert!(metric(&suite.url("records"), "custodian_consent_decisions_total").await >= 3.0);
    let size = eventually(Duration::from_secs(5), || async {
        let v = metric(&suite.url("ledger"), "custodian_ledger_tree_size").await;
        (v >= entries.len() as f64).then_some(v)
    })
    .await;
    assert!(
        size.is_some(),
        "ledger_tree_size does not show the appended accesses"
    );
    assert!(metric(&suite.url("anomaly"), "custodian_anomaly_alerts_total").await >= 1.0);
}
