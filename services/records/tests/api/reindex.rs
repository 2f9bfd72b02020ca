//! The search index rewritten for the running code: rows from older code (or none) are
//! replaced in the background, resumably, while searches keep answering.

use diesel_async::RunQueryDsl;

use crate::helpers::{condition, patient_resource, spawn_app};

#[actix_web::test]
async fn a_store_indexed_by_older_code_is_rewritten_in_batches_and_found_again() {
    let app = spawn_app().await;
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
    for _ in 0..3 {
        let c = app
            .post(
                "/fhir/Condition",
                &h1,
                &condition("Patient/alice", "44054006"),
            )
            .await;
        assert_eq!(c.status, 201, "{}", c.text());
    }
    let count = |query: &'static str| {
        let app = &app;
        let h1 = h1.clone();
        async move {
            app.get(&format!("{query}&_summary=count"), &h1, &[])
                .await
                .json()["total"]
                .as_u64()
        }
    };
    let by_code = "/fhir/Condition?code=http://snomed.info/sct|44054006";
    assert_eq!(count(by_code).await, Some(3));
    assert_eq!(count("/fhir/Patient?family=smith").await, Some(1));

    // As if written by older code: no rows, a stale row, and no record of this version.
    let pool = custodian_database::pool(&app.database_url, 2).unwrap();
    let mut conn = pool.get().await.unwrap();
    for sql in [
        "DELETE FROM search_index WHERE resource_type = 'Condition'",
        "UPDATE search_index SET value = 'jones' WHERE resource_type = 'Patient' AND param = 'family'",
        "DELETE FROM search_index_versions",
    ] {
        diesel::sql_query(sql).execute(&mut conn).await.unwrap();
    }
    assert_eq!(count(by_code).await, Some(0));
    assert_eq!(count("/fhir/Patient?family=jones").await, Some(1));

    let cipher = records::crypto::RecordCipher::from_hex(&app.key_hex).unwrap();
    let registry = custodian_fhir_search::Registry::global();
    let mut steps = 0;
    while let records::reindex::Step::Rewrote(n) =
        records::reindex::step(&mut conn, &cipher, registry)
            .await
            .unwrap()
    {
        assert!(n > 0);
        steps += 1;
        assert!(steps < 100, "the walk ends");
    }
    assert!(steps >= 1);
    assert_eq!(count(by_code).await, Some(3));
    assert_eq!(count("/fhir/Patient?family=smith").await, Some(1));
    assert_eq!(count("/fhir/Patient?family=jones").await, Some(0));
    // Done once: a further step does nothing, and the rows are what writes produce.
    assert_eq!(
        records::reindex::step(&mut conn, &cipher, registry)
            .await
            .unwrap(),
        records::reindex::Step::Done
    );
    drop(conn);
    app.cleanup().await;
}
