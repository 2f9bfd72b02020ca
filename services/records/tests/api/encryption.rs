use diesel::{sql_query, sql_types::Bytea, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::helpers::{patient_resource, spawn_app};

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Bytea)]
    body: Vec<u8>,
}

#[actix_web::test]
async fn stored_resources_are_not_plaintext() {
    let app = spawn_app().await;
    let (_, token) = app.practitioner("Organization/h1");
    let mut patient = patient_resource("zed", "Quixotically", "Xanthippe");
    patient["telecom"] = serde_json::json!([{"system": "phone", "value": "+44 7700 900123"}]);
    assert_eq!(
        app.put("/fhir/Patient/zed", &token, &patient, &[])
            .await
            .status,
        201
    );
    // The custodian (the writer's organisation) updates: a second version.
    assert_eq!(
        app.put("/fhir/Patient/zed", &token, &patient, &[])
            .await
            .status,
        200
    );

    let mut conn = AsyncPgConnection::establish(&app.database_url)
        .await
        .unwrap();
    let rows: Vec<Row> = sql_query("SELECT body FROM resource_versions WHERE resource_id = 'zed'")
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert!(row.body.len() > 28, "nonce + tag + ciphertext");
        for needle in [
            "Xanthippe",
            "Quixotically",
            "7700 900123",
            "resourceType",
            "1980-02-01",
        ] {
            assert!(
                !row.body
                    .windows(needle.len())
                    .any(|w| w == needle.as_bytes()),
                "{needle} stored in plaintext"
            );
        }
    }
    assert_ne!(
        rows[0].body[..12],
        rows[1].body[..12],
        "fresh nonce per version"
    );
    // Moving a ciphertext to another row does not decrypt (AAD binds type/id/version).
    sql_query("UPDATE resource_versions SET body = (SELECT body FROM resource_versions WHERE resource_id = 'zed' AND version = 1) WHERE resource_id = 'zed' AND version = 2")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(app.get("/fhir/Patient/zed", &token, &[]).await.status, 500);
    app.cleanup().await;
}
