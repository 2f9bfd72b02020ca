use serde_json::{json, Value};

use crate::helpers::{condition, consent_change, patient_resource, permit, spawn_app_with, weight};

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|x| x["resource"]["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[actix_web::test]
async fn condition_search_returns_only_consenting_patients() {
    // Hospital2 holds all three records; Alice and Bob admit Hospital1, Carol does not.
    let app = spawn_app_with(vec![
        permit("Consent/a", "Patient/alice", "Organization/h1", 1),
        permit("Consent/b", "Patient/bob", "Organization/h1", 1),
    ])
    .await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    for (id, family) in [("alice", "Smith"), ("bob", "Jones"), ("carol", "Brown")] {
        let r = app
            .put(
                &format!("/fhir/Patient/{id}"),
                &h2,
                &patient_resource(id, family, "X"),
                &[],
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    for p in ["Patient/alice", "Patient/bob", "Patient/carol"] {
        assert_eq!(
            app.post("/fhir/Condition", &h2, &condition(p, "44054006"))
                .await
                .status,
            201
        );
    }
    assert_eq!(
        app.post(
            "/fhir/Condition",
            &h2,
            &condition("Patient/alice", "38341003")
        )
        .await
        .status,
        201
    );

    let found = app
        .get(
            "/fhir/Condition?code=http://snomed.info/sct|44054006",
            &h1,
            &[],
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.text());
    let b = found.json();
    assert_eq!(b["resourceType"], "Bundle");
    assert_eq!(b["type"], "searchset");
    assert_eq!(b["total"], 2, "carol has no consent: {b}");
    let subjects: Vec<&str> = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["subject"]["reference"].as_str().unwrap())
        .collect();
    assert!(subjects.contains(&"Patient/alice") && subjects.contains(&"Patient/bob"));
    assert!(!subjects.contains(&"Patient/carol"));
    assert_eq!(b["entry"][0]["search"]["mode"], "match");
    assert!(b["entry"][0]["fullUrl"]
        .as_str()
        .unwrap()
        .starts_with("http://gateway.test/fhir/Condition/"));
    assert_eq!(b["link"][0]["relation"], "self");

    // Code without system, OR values, subject and patient forms.
    assert_eq!(
        app.get("/fhir/Condition?code=44054006", &h1, &[])
            .await
            .json()["total"],
        2
    );
    assert_eq!(
        app.get("/fhir/Condition?code=44054006,38341003", &h1, &[])
            .await
            .json()["total"],
        3
    );
    assert_eq!(
        app.get("/fhir/Condition?subject=Patient/alice", &h1, &[])
            .await
            .json()["total"],
        2
    );
    assert_eq!(
        app.get("/fhir/Condition?patient=alice&code=38341003", &h1, &[])
            .await
            .json()["total"],
        1
    );
    assert_eq!(
        app.get("/fhir/Condition?code=http://other|44054006", &h1, &[])
            .await
            .json()["total"],
        0
    );
    assert_eq!(
        app.get("/fhir/Condition?code=http://snomed.info/sct|", &h1, &[])
            .await
            .json()["total"],
        3
    );
    // Break-glass reaches Carol, one patient at a time; never by a broad search.
    assert_eq!(
        app.get(
            "/fhir/Condition?code=44054006&patient=carol",
            &h1,
            &[("X-Break-Glass", "emergency")]
        )
        .await
        .json()["total"],
        1
    );
    assert_eq!(
        app.get(
            "/fhir/Condition?code=44054006",
            &h1,
            &[("X-Break-Glass", "emergency")]
        )
        .await
        .status,
        403
    );
    // Without it, a search naming Carol is empty, as for a patient with no data.
    let carol = app.get("/fhir/Condition?patient=carol", &h1, &[]).await;
    assert_eq!(carol.status, 200);
    assert_eq!(carol.json()["total"], 0);
    // _include and _revinclude, filtered like the matches.
    let with_patients = app
        .get(
            "/fhir/Condition?code=44054006&_include=Condition:subject",
            &h1,
            &[],
        )
        .await;
    assert_eq!(with_patients.status, 200, "{}", with_patients.text());
    let b = with_patients.json();
    assert_eq!(b["total"], 2);
    let entries = b["entry"].as_array().unwrap();
    let included: Vec<&str> = entries
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .map(|e| e["resource"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(included.len(), 2, "{b}");
    assert!(
        included.contains(&"alice") && included.contains(&"bob") && !included.contains(&"carol")
    );
    let rev = app
        .get(
            "/fhir/Patient?_id=alice,carol&_revinclude=Condition:subject",
            &h1,
            &[],
        )
        .await
        .json();
    assert_eq!(rev["total"], 1);
    let conditions = rev["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Condition")
        .count();
    assert_eq!(conditions, 2, "{rev}");
    assert_eq!(
        app.get("/fhir/Condition?_include=Condition:code", &h1, &[])
            .await
            .status,
        400
    );

    // POST _search.
    let posted = app
        .post_form("/fhir/Condition/_search", &h1, "code=44054006")
        .await;
    assert_eq!(posted.status, 200, "{}", posted.text());
    assert_eq!(posted.json()["total"], 2);
    app.cleanup().await;
}

#[actix_web::test]
async fn string_date_token_quantity_and_paging() {
    let app = spawn_app_with(vec![
        permit("Consent/a", "Patient/alice", "Organization/h1", 1),
        permit("Consent/m", "Patient/muller", "Organization/h1", 1),
    ])
    .await;
    let (_, h1) = app.practitioner("Organization/h1");
    app.put(
        "/fhir/Patient/alice",
        &h1,
        &patient_resource("alice", "Smith", "Alice"),
        &[],
    )
    .await;
    app.put(
        "/fhir/Patient/muller",
        &h1,
        &patient_resource("muller", "Müller", "Zoë"),
        &[],
    )
    .await;

    // Strings: starts-with, case and accent insensitive; :exact; :contains.
    assert_eq!(
        ids(&app.get("/fhir/Patient?name=mul", &h1, &[]).await.json()),
        vec!["muller"]
    );
    assert_eq!(
        ids(&app
            .get("/fhir/Patient?family=M%C3%9CLLER", &h1, &[])
            .await
            .json()),
        vec!["muller"]
    );
    assert_eq!(
        ids(&app.get("/fhir/Patient?given=zoe", &h1, &[]).await.json()),
        vec!["muller"]
    );
    assert_eq!(
        app.get("/fhir/Patient?family:exact=Muller", &h1, &[])
            .await
            .json()["total"],
        0
    );
    assert_eq!(
        app.get("/fhir/Patient?family:exact=M%C3%BCller", &h1, &[])
            .await
            .json()["total"],
        1
    );
    assert_eq!(
        ids(&app
            .get("/fhir/Patient?name:contains=mit", &h1, &[])
            .await
            .json()),
        vec!["alice"]
    );
    // Dates.
    assert_eq!(
        app.get("/fhir/Patient?birthdate=1980-02-01", &h1, &[])
            .await
            .json()["total"],
        2
    );
    assert_eq!(
        app.get("/fhir/Patient?birthdate=1980", &h1, &[])
            .await
            .json()["total"],
        2
    );
    assert_eq!(
        app.get("/fhir/Patient?birthdate=gt1980-02-01", &h1, &[])
            .await
            .json()["total"],
        0
    );
    assert_eq!(
        app.get("/fhir/Patient?birthdate=ge1980-02", &h1, &[])
            .await
            .json()["total"],
        2
    );
    assert_eq!(
        app.get("/fhir/Patient?birthdate=lt1980-02-01", &h1, &[])
            .await
            .json()["total"],
        0
    );
    assert_eq!(
        app.get("/fhir/Patient?birthdate=ne1980-02-01", &h1, &[])
            .await
            .json()["total"],
        0
    );
    // Tokens and _id.
    assert_eq!(
        app.get("/fhir/Patient?gender=female", &h1, &[])
            .await
            .json()["total"],
        2
    );
    assert_eq!(
        app.get("/fhir/Patient?gender=male", &h1, &[]).await.json()["total"],
        0
    );
    assert_eq!(
        ids(&app.get("/fhir/Patient?_id=alice", &h1, &[]).await.json()),
        vec!["alice"]
    );
    assert_eq!(
        app.get("/fhir/Patient?_lastUpdated=gt2000-01-01", &h1, &[])
            .await
            .json()["total"],
        2
    );
    assert_eq!(
        app.get("/fhir/Patient?_lastUpdated=lt2000-01-01", &h1, &[])
            .await
            .json()["total"],
        0
    );

    // Observations: date against dateTime, quantity, paging.
    for kg in ["60.5", "70", "80", "90"] {
        app.send_json(
            "POST",
            "/fhir/Observation",
            &h1,
            &weight("Patient/alice", kg),
            &[],
        )
        .await;
    }
    assert_eq!(
        app.get("/fhir/Observation?date=2020-03-04", &h1, &[])
            .await
            .json()["total"],
        4
    );
    assert_eq!(
        app.get("/fhir/Observation?date=ge2020-03-05", &h1, &[])
            .await
            .json()["total"],
        0
    );
    assert_eq!(
        app.get("/fhir/Observation?date=le2020-03", &h1, &[])
            .await
            .json()["total"],
        4
    );
    assert_eq!(
        app.get("/fhir/Observation?value-quantity=gt65", &h1, &[])
            .await
            .json()["total"],
        3
    );
    assert_eq!(
        app.get(
            "/fhir/Observation?value-quantity=60.5|http://unitsofmeasure.org|kg",
            &h1,
            &[]
        )
        .await
        .json()["total"],
        1
    );
    let page = app
        .get(
            "/fhir/Observation?subject=Patient/alice&_count=3&_sort=-_lastUpdated&_total=accurate",
            &h1,
            &[],
        )
        .await
        .json();
    assert_eq!(page["total"], 4);
    assert_eq!(page["entry"].as_array().unwrap().len(), 3);
    // Without `_total`: a total only when the first page holds every match (a page of a
    // broad search must not cost a count of all of it); `_summary=count` always counts.
    let default = app
        .get("/fhir/Observation?subject=Patient/alice&_count=3", &h1, &[])
        .await
        .json();
    assert!(default.get("total").is_none(), "{default}");
    let whole = app
        .get("/fhir/Observation?subject=Patient/alice&_count=4", &h1, &[])
        .await
        .json();
    assert_eq!(whole["total"], 4, "{whole}");
    let counted = app
        .get(
            "/fhir/Observation?subject=Patient/alice&_summary=count",
            &h1,
            &[],
        )
        .await
        .json();
    assert_eq!(counted["total"], 4, "{counted}");
    let next = page["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .expect("next link");
    let next_url = next["url"].as_str().unwrap();
    assert!(
        next_url.starts_with("http://gateway.test/fhir/Observation?"),
        "{next_url}"
    );
    let rest = app
        .get(&next_url.replace("http://gateway.test", ""), &h1, &[])
        .await
        .json();
    assert_eq!(rest["entry"].as_array().unwrap().len(), 1);
    assert!(!rest["link"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["relation"] == "next"));

    // :text on tokens (Coding.display, CodeableConcept.text).
    assert_eq!(
        app.get("/fhir/Observation?code:text=body", &h1, &[])
            .await
            .json()["total"],
        4
    );
    assert_eq!(
        app.get("/fhir/Observation?code:text=height", &h1, &[])
            .await
            .json()["total"],
        0
    );

    // Sorting by a parameter, :not, _summary=count.
    app.put(
        "/fhir/Patient/young",
        &h1,
        &{
            let mut p = patient_resource("young", "Young", "Yan");
            p["birthDate"] = "2001-06-01".into();
            p["gender"] = "male".into();
            p
        },
        &[],
    )
    .await;
    let (_, bg) = app.practitioner("Organization/h1");
    let sorted = app
        .get("/fhir/Patient?_sort=-birthdate", &bg, &[])
        .await
        .json();
    assert_eq!(ids(&sorted)[0], "young");
    let sorted = app
        .get("/fhir/Patient?_sort=birthdate,_id", &bg, &[])
        .await
        .json();
    assert_eq!(ids(&sorted), vec!["alice", "muller", "young"]);
    let not_male = app
        .get("/fhir/Patient?gender:not=male", &bg, &[])
        .await
        .json();
    assert_eq!(not_male["total"], 2);
    let counted = app
        .get("/fhir/Patient?_summary=count", &bg, &[])
        .await
        .json();
    assert_eq!(counted["total"], 3);
    assert!(counted.get("entry").is_none() || counted["entry"].as_array().unwrap().is_empty());

    // Unknown or unsupported parameters are 400 OperationOutcomes when handling is strict
    // (lenient handling: search_depth.rs).
    let unknown = app
        .get(
            "/fhir/Patient?colour=blue",
            &h1,
            &[("Prefer", "handling=strict")],
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json()["resourceType"], "OperationOutcome");
    assert_eq!(
        app.get("/fhir/Patient?birthdate=someday", &h1, &[])
            .await
            .status,
        400
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn patient_everything_honours_per_type_consent() {
    // Alice lets Hospital2 see her Patient and Observations only; Hospital1 holds her record.
    let consent = consent_change(
        "Consent/a",
        "Patient/alice",
        1,
        json!({
            "type": "permit",
            "actor": [{"role": {"coding": [{"code": "IRCP"}]}, "reference": {"reference": "Organization/h2"}}],
            "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Patient"},
                      {"system": "http://hl7.org/fhir/resource-types", "code": "Observation"}]
        }),
    );
    let app = spawn_app_with(vec![consent]).await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (claims, h2) = app.practitioner("Organization/h2");
    app.put(
        "/fhir/Patient/alice",
        &h1,
        &patient_resource("alice", "Smith", "Alice"),
        &[],
    )
    .await;
    app.send_json(
        "POST",
        "/fhir/Observation",
        &h1,
        &weight("Patient/alice", "60"),
        &[],
    )
    .await;
    app.send_json(
        "POST",
        "/fhir/Observation",
        &h1,
        &weight("Patient/alice", "61"),
        &[],
    )
    .await;
    app.post(
        "/fhir/Condition",
        &h1,
        &condition("Patient/alice", "44054006"),
    )
    .await;
    app.send_json(
        "POST",
        "/fhir/Observation",
        &h1,
        &weight("Patient/bob", "80"),
        &[],
    )
    .await;

    // The custodian sees all four.
    let resp = app.get("/fhir/Patient/alice/$everything", &h1, &[]).await;
    assert_eq!(resp.json()["total"], 4, "{}", resp.text());
    let resp = app.get("/fhir/Patient/alice/$everything", &h2, &[]).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let b = resp.json();
    assert_eq!(b["total"], 3, "{b}");
    let types: Vec<&str> = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    assert!(!types.contains(&"Condition"));
    assert_eq!(types.iter().filter(|t| **t == "Observation").count(), 2);
    let denied = app
        .wait_for_events(1, |e| {
            e.actor.id == claims.sub && e.outcome == custodian_events::AccessOutcome::Deny
        })
        .await;
    assert_eq!(denied[0].resource_type.as_deref(), Some("Condition"));
    // With break-glass, everything.
    let all = app
        .get(
            "/fhir/Patient/alice/$everything",
            &h2,
            &[("X-Break-Glass", "er")],
        )
        .await
        .json();
    assert_eq!(all["total"], 4);
    // A third hospital sees nothing, as if Alice were not there.
    let (_, h3) = app.practitioner("Organization/h3");
    assert_eq!(
        app.get("/fhir/Patient/alice/$everything", &h3, &[])
            .await
            .status,
        404
    );
    assert_eq!(
        app.get("/fhir/Patient/nobody/$everything", &h1, &[])
            .await
            .status,
        404
    );
    app.cleanup().await;
}

/// `_elements` and `_summary` subsets keep FHIR decimals as written (60.50, not 60.5).
#[actix_web::test]
async fn search_subsets_keep_decimals_as_written() {
    let app = crate::helpers::spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let r = app
        .put(
            "/fhir/Patient/alice",
            &h1,
            &patient_resource("alice", "Smith", "Alice"),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let obs = app
        .send_json(
            "POST",
            "/fhir/Observation",
            &h1,
            &weight("Patient/alice", "60.50"),
            &[],
        )
        .await;
    assert_eq!(obs.status, 201, "{}", obs.text());
    for query in ["_elements=valueQuantity", "_summary=data", "_summary=true"] {
        let found = app
            .get(
                &format!("/fhir/Observation?patient=alice&{query}"),
                &h1,
                &[],
            )
            .await;
        assert_eq!(found.status, 200, "{query}: {}", found.text());
        if query != "_summary=true" {
            assert!(
                found.text().contains("\"value\":60.50"),
                "{query}: {}",
                found.text()
            );
        }
        assert!(!found.text().contains("60.5,"), "{query}: {}", found.text());
    }
    app.cleanup().await;
}
