//! `ledger verify`: an intact log verifies from PostgreSQL and from HTTP; each kind of damage
//! done to single rows in PostgreSQL fails it and names the first bad leaf.
//!
//! Damage is done inside a transaction that is never committed, on the connection `verify`
//! reads through: each case sees the intact log plus its one change, and nothing else does.
//! The last case commits its change, for the real binary to find.

use std::process::Output;

use custodian_auth::Role;
use diesel::sql_query;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use ledger::verify::{
    http::HttpSource, postgres::PgSource, verify, Problem, Report, SourceError, Trust,
};

use crate::helpers::{event, spawn_app, TestApp};

/// Leaves appended one at a time, each covered by its own checkpoint.
const SINGLES: u64 = 8;
/// Then appended together: checkpoints cover several.
const BATCH: u64 = 5;
const TOTAL: u64 = SINGLES + BATCH;

/// An app whose log holds [`TOTAL`] leaves, all signed; and its verifier key.
async fn app_with_log() -> (TestApp, String) {
    let mut app = spawn_app().await;
    for i in 0..SINGLES {
        app.publish(&event(Some(&format!("Patient/p{i}")), "u1"))
            .await;
        let (_, cp) = app.wait_for_checkpoint(i + 1).await;
        assert_eq!(cp.tree_size, i + 1);
    }
    for i in SINGLES..TOTAL {
        app.publish(&event(Some(&format!("Patient/p{i}")), "u2"))
            .await;
    }
    app.wait_for_checkpoint(TOTAL).await;
    let key = app.verifier_key().await;
    (app, key)
}

fn trust(key: &str) -> Trust {
    Trust {
        log_keys: vec![key.to_string()],
        ..Trust::default()
    }
}

async fn connect(app: &TestApp) -> AsyncPgConnection {
    AsyncPgConnection::establish(&app.db_url)
        .await
        .expect("database connects")
}

async fn verify_pg(conn: &mut AsyncPgConnection, key: &str) -> Report {
    verify(&mut PgSource::new(conn, "test"), &trust(key))
        .await
        .expect("the database is readable")
}

/// `verify` of the log with `statements` applied in a transaction that is rolled back.
async fn damaged(app: &TestApp, key: &str, statements: &[&str]) -> Report {
    let mut conn = connect(app).await;
    conn.begin_test_transaction().await.expect("BEGIN");
    for statement in statements {
        sql_query(*statement)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let report = verify_pg(&mut conn, key).await;
    assert!(!report.ok, "{statements:?} went unnoticed");
    report
}

/// The leaf hash of a payload, in SQL: `SHA-256(0x00 || payload)`.
const SQL_LEAF_HASH: &str = "sha256(decode('00', 'hex') || convert_to(payload, 'UTF8'))";

#[actix_web::test]
async fn an_intact_log_verifies_and_every_kind_of_damage_names_its_first_bad_leaf() {
    let (app, key) = app_with_log().await;

    // Intact, from PostgreSQL.
    let report = verify_pg(&mut connect(&app).await, &key).await;
    assert!(report.ok, "{:?}", report.message);
    assert_eq!(report.leaves, TOTAL);
    assert_eq!(report.signed_size, Some(TOTAL));
    assert_eq!(report.unsigned_leaves, 0);
    // Size 0 (signed at first start), one per single, at least one for the batch.
    assert!(report.checkpoints > SINGLES + 1, "{}", report.checkpoints);
    assert_eq!(report.consistency_proofs, 0, "PostgreSQL serves no proofs");

    // Intact, from HTTP: the same, and the served consistency proofs verify.
    let mut http = HttpSource::new(&app.address, Some(app.auditor()));
    let over_http = verify(&mut http, &trust(&key)).await.unwrap();
    assert!(over_http.ok, "{:?}", over_http.message);
    assert_eq!(over_http.leaves, TOTAL);
    assert_eq!(over_http.checkpoints, report.checkpoints);
    // Every consecutive pair but the one from the empty tree (sizes 0 and 1).
    assert_eq!(over_http.consistency_proofs, report.checkpoints - 2);

    // A payload changed, its leaf hash left: that leaf.
    let report = damaged(
        &app,
        &key,
        &["UPDATE leaves SET payload = replace(payload, 'Patient/p2', 'Patient/px') WHERE idx = 2"],
    )
    .await;
    assert_eq!(report.problem, Some(Problem::LeafHashMismatch { index: 2 }));
    assert_eq!(report.first_bad_leaf, Some(2));
    assert_eq!(report.leaves, 2, "leaves before it were checked");

    // A payload changed and its leaf hash recomputed: the root of the checkpoint signed
    // right after it no longer matches, and leaves up to the one before matched.
    let change_4 =
        "UPDATE leaves SET payload = replace(payload, 'Patient/p4', 'Patient/px') WHERE idx = 4";
    let rehash_4 = format!("UPDATE leaves SET leaf_hash = {SQL_LEAF_HASH} WHERE idx = 4");
    let report = damaged(&app, &key, &[change_4, &rehash_4]).await;
    assert_eq!(
        report.problem,
        Some(Problem::RootMismatch {
            checkpoint: 5,
            first: 4
        })
    );
    assert_eq!(report.first_bad_leaf, Some(4));

    // The same inside the batch: the bad leaf is within the range the checkpoint covers.
    let change_10 =
        "UPDATE leaves SET payload = replace(payload, 'Patient/p10', 'Patient/px') WHERE idx = 10";
    let rehash_10 = format!("UPDATE leaves SET leaf_hash = {SQL_LEAF_HASH} WHERE idx = 10");
    let report = damaged(&app, &key, &[change_10, &rehash_10]).await;
    match report.problem {
        Some(Problem::RootMismatch { checkpoint, first }) => {
            assert!(first <= 10 && 10 < checkpoint, "[{first}, {checkpoint})");
            assert!(first >= SINGLES, "leaves signed one by one matched");
        }
        other => panic!("{other:?}"),
    }

    // A leaf deleted: the gap.
    let report = damaged(&app, &key, &["DELETE FROM leaves WHERE idx = 3"]).await;
    assert_eq!(report.problem, Some(Problem::Gap { index: 3, next: 4 }));
    assert_eq!(report.first_bad_leaf, Some(3));

    // The last leaf deleted: the latest checkpoint covers a leaf that is gone.
    let report = damaged(
        &app,
        &key,
        &[&format!("DELETE FROM leaves WHERE idx = {}", TOTAL - 1)],
    )
    .await;
    assert_eq!(
        report.problem,
        Some(Problem::MissingLeaves {
            index: TOTAL - 1,
            checkpoint: TOTAL
        })
    );

    // A leaf inserted at 5 (the later ones moved up, indices dense, hash consistent): the
    // checkpoint of size 6 no longer matches.
    let insert = format!(
        "INSERT INTO leaves (idx, event_id, leaf_hash, payload, patient_ref, actor_id, time) \
         SELECT 5, gen_random_uuid(), {SQL_LEAF_HASH}, payload, 'Patient/forged', 'u9', now() \
         FROM (SELECT '{{\"forged\":true,\"action\":\"read\",\"outcome\":\"permit\"}}'::text AS payload) AS forged"
    );
    let report = damaged(
        &app,
        &key,
        &[
            // Two steps: the primary key is checked row by row.
            "UPDATE leaves SET idx = idx + 1000000 WHERE idx >= 5",
            "UPDATE leaves SET idx = idx - 999999 WHERE idx >= 1000000",
            &insert,
        ],
    )
    .await;
    assert_eq!(
        report.problem,
        Some(Problem::RootMismatch {
            checkpoint: 6,
            first: 5
        })
    );
    assert_eq!(report.first_bad_leaf, Some(5));

    // Two leaves swapped (each still hashing right, indices dense): the first of them.
    let report = damaged(
        &app,
        &key,
        &[
            "UPDATE leaves SET idx = idx + 1000000 WHERE idx IN (1, 6)",
            "UPDATE leaves SET idx = CASE idx WHEN 1000001 THEN 6 ELSE 1 END WHERE idx >= 1000000",
        ],
    )
    .await;
    assert_eq!(
        report.problem,
        Some(Problem::RootMismatch {
            checkpoint: 2,
            first: 1
        })
    );
    assert_eq!(report.first_bad_leaf, Some(1));

    // A checkpoint's note altered (its root replaced): its signature fails.
    let report = damaged(
        &app,
        &key,
        &[&format!(
            "UPDATE checkpoints SET note = replace(note, encode(root_hash, 'base64'), '{}') \
             WHERE tree_size = 5",
            "A".repeat(43) + "="
        )],
    )
    .await;
    assert!(
        matches!(
            report.problem,
            Some(Problem::BadSignature { checkpoint: 5, .. })
        ),
        "{:?}",
        report.problem
    );
    assert_eq!(report.first_bad_leaf, None, "no leaf is at fault");
    assert_eq!(report.leaves, 5, "the leaves it covers were fine");

    // A checkpoint's root column altered: it disagrees with the signed note.
    let report = damaged(
        &app,
        &key,
        &["UPDATE checkpoints SET root_hash = sha256('x'::bytea) WHERE tree_size = 3"],
    )
    .await;
    assert!(
        matches!(
            report.problem,
            Some(Problem::CheckpointMismatch { checkpoint: 3, .. })
        ),
        "{:?}",
        report.problem
    );

    // A checkpoint deleted is not damage: the others still cover the same leaves.
    let mut conn = connect(&app).await;
    conn.begin_test_transaction().await.unwrap();
    sql_query("DELETE FROM checkpoints WHERE tree_size = 4")
        .execute(&mut conn)
        .await
        .unwrap();
    let report = verify_pg(&mut conn, &key).await;
    assert!(report.ok, "{:?}", report.message);
    drop(conn);

    // Damage committed is seen over HTTP as well.
    let mut conn = connect(&app).await;
    sql_query("UPDATE leaves SET payload = payload || ' ' WHERE idx = 7")
        .execute(&mut conn)
        .await
        .unwrap();
    let over_http = verify(&mut http, &trust(&key)).await.unwrap();
    assert_eq!(
        over_http.problem,
        Some(Problem::LeafHashMismatch { index: 7 })
    );

    app.finish().await;
}

#[actix_web::test]
async fn verify_refuses_untrusted_keys_and_unreadable_sources() {
    let (app, key) = app_with_log().await;
    let other = ledger::signing::NoteSigner::from_raw(
        crate::helpers::ORIGIN,
        &ledger::signing::generate_private_key().unwrap(),
    )
    .unwrap()
    .verifier_key();
    let report = verify_pg(&mut connect(&app).await, &other).await;
    assert!(
        matches!(
            report.problem,
            Some(Problem::BadSignature { checkpoint: 0, .. })
        ),
        "{:?}",
        report.problem
    );
    // A token that does not see every entry cannot read the leaves.
    let practitioner = app.issuer.token(&app.issuer.claims(Role::Practitioner));
    let mut http = HttpSource::new(&app.address, Some(practitioner));
    let Err(SourceError(message)) = verify(&mut http, &trust(&key)).await else {
        panic!("verified without reading the leaves");
    };
    assert!(message.contains("403"), "{message}");
    app.finish().await;
}

#[actix_web::test]
async fn the_range_endpoints_are_paged_and_guarded() {
    let (app, _) = app_with_log().await;
    let auditor = app.auditor();

    let res = app
        .get("/ledger/entries?start=3&limit=4", Some(&auditor))
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let entries = res.json()["entries"].as_array().unwrap().clone();
    let indices: Vec<u64> = entries
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, vec![3, 4, 5, 6]);
    assert!(entries[0]["payload"]
        .as_str()
        .unwrap()
        .contains("Patient/p3"));

    let res = app
        .get("/ledger/checkpoints?after=2&limit=3", Some(&auditor))
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let sizes: Vec<u64> = res.json()["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["tree_size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, vec![3, 4, 5]);
    let res = app.get("/ledger/checkpoints", Some(&auditor)).await;
    let all = res.json()["checkpoints"].as_array().unwrap().clone();
    assert_eq!(all[0]["tree_size"], 0);
    let note = all.last().unwrap()["note"].as_str().unwrap().to_string();
    ledger::verify_note(&note, &app.verifier_key().await).expect("a signed note");

    // Payloads name patients: only a caller who sees every entry reads ranges.
    let practitioner = app.issuer.token(&app.issuer.claims(Role::Practitioner));
    let patient = app.issuer.token(&app.issuer.claims(Role::Patient));
    for token in [&practitioner, &patient] {
        let res = app.get("/ledger/entries?start=0", Some(token)).await;
        assert_eq!(res.status, 403, "{}", res.body);
    }
    assert_eq!(app.get("/ledger/entries?start=0", None).await.status, 401);
    assert_eq!(app.get("/ledger/checkpoints", None).await.status, 401);
    for path in [
        "/ledger/entries?limit=0",
        "/ledger/entries?limit=10001",
        "/ledger/entries?start=-1",
        "/ledger/checkpoints?limit=1001",
        "/ledger/checkpoints?after=x",
    ] {
        assert_eq!(app.get(path, Some(&auditor)).await.status, 400, "{path}");
    }
    app.finish().await;
}

/// Runs the real `ledger` binary off the test's thread (the app serves on this one).
async fn ledger_binary(args: Vec<String>) -> Output {
    actix_web::rt::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ledger"))
            .args(&args)
            .output()
            .expect("the binary runs")
    })
    .await
    .expect("joined")
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[actix_web::test]
async fn the_binary_exits_zero_when_intact_and_one_naming_the_leaf_when_not() {
    let (app, key) = app_with_log().await;
    let token_file = std::env::temp_dir().join(format!("ledger-verify-{}", uuid::Uuid::new_v4()));
    std::fs::write(&token_file, app.auditor()).unwrap();
    let token_path = token_file.to_string_lossy().to_string();

    let out = ledger_binary(strings(&[
        "verify",
        "--database",
        &app.db_url,
        "--key",
        &key,
    ]))
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("ledger verify: OK"), "{stdout}");
    assert!(
        stdout.contains(&format!("leaves:      {TOTAL}")),
        "{stdout}"
    );

    // Over HTTP with the key the log serves: it says so.
    let out = ledger_binary(strings(&[
        "verify",
        "--url",
        &app.address,
        "--token-file",
        &token_path,
        "--trust-served-keys",
        "--json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["keys_served_by_log"], true);
    assert_eq!(json["leaves"], TOTAL);

    // Bad arguments and an unreachable source: 2.
    let out = ledger_binary(strings(&["verify", "--database", &app.db_url])).await;
    assert_eq!(out.status.code(), Some(2));
    let out = ledger_binary(strings(&[
        "verify",
        "--database",
        "postgres://postgres@127.0.0.1:5432/no_such_ledger_database",
        "--key",
        &key,
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2));

    // Damage committed: 1, naming the leaf, from PostgreSQL and from HTTP.
    let mut conn = connect(&app).await;
    sql_query("UPDATE leaves SET payload = payload || ' ' WHERE idx = 6")
        .execute(&mut conn)
        .await
        .unwrap();
    let out = ledger_binary(strings(&[
        "verify",
        "--database",
        &app.db_url,
        "--key",
        &key,
        "--json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["first_bad_leaf"], 6);
    assert_eq!(json["problem"]["kind"], "leaf-hash-mismatch");
    let out = ledger_binary(strings(&[
        "verify",
        "--url",
        &app.address,
        "--token-file",
        &token_path,
        "--key",
        &key,
    ]))
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("first bad leaf: 6"), "{stdout}");

    std::fs::remove_file(&token_file).unwrap();
    app.finish().await;
}
