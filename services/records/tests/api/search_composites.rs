//! Composite search parameters over an element: every component must hold within one element
//! (`Observation.component`), never across two; and a resource the caller may not see is never
//! matched.
//!
//! Hospital 1 (h1) holds Alice's blood pressures, a weight and a smoking status; hospital 2
//! (h2) holds Hana's blood pressure, which h1 may not see.

use diesel::{sql_query, sql_types::BigInt, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{json, Value};

use crate::{
    helpers::{patient_resource, spawn_app},
    search_depth::{matches, observation, put, World},
};

const LOINC: &str = "http://loinc.org";

fn blood_pressure(id: &str, patient: &str, systolic: f64, diastolic: f64) -> Value {
    let mut o = observation(id, patient, "85354-9");
    let component = |code: &str, value: f64| {
        json!({
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "valueQuantity": {"value": value, "unit": "mmHg",
                              "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
        })
    };
    o["component"] = json!([
        component("8480-6", systolic),
        component("8462-4", diastolic)
    ]);
    o
}

async fn world() -> World {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    put(&app, &h1, patient_resource("alice", "Peterson", "Alice")).await;
    put(&app, &h2, patient_resource("hana", "Hidden", "Hana")).await;
    put(
        &app,
        &h1,
        blood_pressure("bp-high", "Patient/alice", 150.0, 95.0),
    )
    .await;
    // Systolic 120; 150 is the diastolic: no systolic component above 140.
    put(
        &app,
        &h1,
        blood_pressure("bp-cross", "Patient/alice", 120.0, 150.0),
    )
    .await;
    put(
        &app,
        &h1,
        blood_pressure("bp-normal", "Patient/alice", 118.0, 76.0),
    )
    .await;
    put(
        &app,
        &h2,
        blood_pressure("bp-hidden", "Patient/hana", 170.0, 100.0),
    )
    .await;
    let mut weight = observation("weight", "Patient/alice", "29463-7");
    weight["valueQuantity"] =
        json!({"value": 60, "system": "http://unitsofmeasure.org", "code": "kg"});
    put(&app, &h1, weight).await;
    let mut smoking = observation("smoking", "Patient/alice", "72166-2");
    smoking["component"] = json!([{
        "code": {"coding": [{"system": LOINC, "code": "63640-3"}]},
        "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "8517006"}]}
    }]);
    put(&app, &h1, smoking).await;
    World { app, h1, h2 }
}

async fn found(w: &World, token: &str, query: &str) -> Vec<String> {
    // Strict: an ignored parameter would be a 400, not every Observation.
    let r = w
        .app
        .get(
            &format!("/fhir/Observation?{query}"),
            token,
            &[("Prefer", "handling=strict")],
        )
        .await;
    assert_eq!(r.status, 200, "{query}: {}", r.text());
    matches(&r.json())
}

#[actix_web::test]
async fn components_match_within_one_element() {
    let w = world().await;
    let (h1, h2) = (w.h1.as_str(), w.h2.as_str());

    // The same element: systolic above 140 is bp-high only, not bp-cross (whose 150 is the
    // diastolic's), nor Hana's (hidden from h1).
    assert_eq!(
        found(
            &w,
            h1,
            "component-code-value-quantity=http://loinc.org|8480-6$gt140"
        )
        .await,
        ["bp-high"]
    );
    assert_eq!(
        found(&w, h1, "component-code-value-quantity=8462-4$gt140").await,
        ["bp-cross"]
    );
    // With the unit; a wrong unit matches nothing.
    assert_eq!(
        found(
            &w,
            h1,
            "component-code-value-quantity=8480-6$gt140|http://unitsofmeasure.org|mm%5BHg%5D"
        )
        .await,
        ["bp-high"]
    );
    assert!(
        found(&w, h1, "component-code-value-quantity=8480-6$gt140||kg")
            .await
            .is_empty()
    );
    // `,` ORs whole values.
    assert_eq!(
        found(
            &w,
            h1,
            "component-code-value-quantity=8480-6$gt140,8462-4$lt80"
        )
        .await,
        ["bp-high", "bp-normal"]
    );
    // Repeated, the parameter ANDs: a systolic above 140 and a diastolic below 100.
    assert_eq!(
        found(
            &w,
            h1,
            "component-code-value-quantity=8480-6$gt140&component-code-value-quantity=8462-4$lt100"
        )
        .await,
        ["bp-high"]
    );
    // Combo: the Observation's own code and value, or one component's.
    assert_eq!(
        found(&w, h1, "combo-code-value-quantity=29463-7$gt50").await,
        ["weight"]
    );
    assert_eq!(
        found(
            &w,
            h1,
            "combo-code-value-quantity=8480-6$ge118,29463-7$lt50"
        )
        .await,
        ["bp-cross", "bp-high", "bp-normal"]
    );
    // The panel's code is not a component's: no element has both.
    assert!(found(&w, h1, "combo-code-value-quantity=85354-9$gt0")
        .await
        .is_empty());
    assert_eq!(
        found(
            &w,
            h1,
            "component-code-value-concept=http://loinc.org|63640-3$http://snomed.info/sct|8517006"
        )
        .await,
        ["smoking"]
    );
    assert!(found(&w, h1, "component-code-value-concept=8480-6$8517006")
        .await
        .is_empty());

    // Hana's blood pressure: never matched for h1, found by its custodian.
    assert!(found(&w, h1, "component-code-value-quantity=8480-6$gt160")
        .await
        .is_empty());
    assert!(found(
        &w,
        h1,
        "combo-code-value-quantity=8480-6$gt160,8462-4$eq100"
    )
    .await
    .is_empty());
    assert_eq!(
        found(&w, h2, "component-code-value-quantity=8480-6$gt160").await,
        ["bp-hidden"]
    );

    // Malformed values, modifiers and sorting are a 400.
    for query in [
        "component-code-value-quantity=8480-6",
        "component-code-value-quantity=8480-6$high",
        "component-code-value-quantity:missing=true",
        "_sort=component-code-value-quantity",
    ] {
        let r = w
            .app
            .get(&format!("/fhir/Observation?{query}"), h1, &[])
            .await;
        assert_eq!(r.status, 400, "{query}: {}", r.text());
    }

    // `$meta-add` rewrites the index in place (no new version): the element rows stay.
    let tag = json!({"resourceType": "Parameters", "parameter": [{"name": "meta",
        "valueMeta": {"tag": [{"system": "urn:custodian:test", "code": "reviewed"}]}}]});
    let r = w
        .app
        .post("/fhir/Observation/bp-high/$meta-add", h1, &tag)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        found(
            &w,
            h1,
            "component-code-value-quantity=8480-6$gt140&_tag=urn:custodian:test|reviewed"
        )
        .await,
        ["bp-high"]
    );

    // What the rows cost: a blood pressure of two components has 8 composite rows (a code and
    // a value for each component, in component- and combo-code-value-quantity).
    let mut conn = AsyncPgConnection::establish(&w.app.database_url)
        .await
        .unwrap();
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        total: i64,
        #[diesel(sql_type = BigInt)]
        tagged: i64,
    }
    let count: Count = sql_query(
        "SELECT count(*) AS total, count(element) AS tagged FROM search_index \
         WHERE resource_type = 'Observation' AND resource_id = 'bp-high'",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(count.tagged, 8);
    eprintln!(
        "bp-high: {} index rows, {} of them element composites'",
        count.total, count.tagged
    );
    w.app.cleanup().await;
}
