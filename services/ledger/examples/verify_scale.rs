//! `ledger verify` over a large log: bulk-loads synthetic leaves (event-sized JSON) and a
//! checkpoint every 10,000 leaves, signed with a fresh key, into a scratch database, then
//! times the verification from PostgreSQL. The database is dropped at the end.
//!
//! `cargo run --release -p ledger --example verify_scale -- [leaves]` (default 1,000,000;
//! against the local PostgreSQL, as the tests).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code (example, not shipped)

use std::time::Instant;

use chrono::{Duration, Utc};
use diesel::{
    sql_query,
    sql_types::{Array, BigInt, Bytea, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use ledger::{
    domain::Checkpoint,
    signing::{generate_private_key, NoteSigner},
    tree,
    verify::{cli::summary, postgres::PgSource, verify, Frontier, Trust},
};
use uuid::Uuid;

const CHECKPOINT_EVERY: u64 = 10_000;
const INSERT_BATCH: usize = 50_000;
const ORIGIN: &str = "custodian.local/ledger";

/// About the size and shape of an access event's JSON.
fn payload(i: u64, id: Uuid, time: &str) -> String {
    format!(
        r#"{{"id":"{id}","time":"{time}","actor":{{"id":"user-{actor}","role":"practitioner","organization":"Organization/h{org}","department":null,"practitioner":"Practitioner/{actor}"}},"patient":"Patient/p{patient}","action":"read","resource_type":"Observation","count":1,"purpose":"TREAT","outcome":"permit","break_glass":false,"confidentiality":"N","source":{{"ip":"10.0.{a}.{b}","user_agent":"custodian-web/1.0"}},"decision":null,"request_id":"req-{i}","account":null}}"#,
        actor = i % 977,
        org = i % 13,
        patient = i % 100_003,
        a = (i >> 8) % 256,
        b = i % 256,
    )
}

#[actix_web::main]
async fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let url = format!(
        "postgres://postgres@127.0.0.1:5432/ledger_verify_scale_{}",
        Uuid::new_v4().simple()
    );
    custodian_database::ensure_database(&url).await.unwrap();
    custodian_database::run_migrations(&url, ledger::startup::MIGRATIONS)
        .await
        .unwrap();
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();

    let signer = NoteSigner::from_raw(ORIGIN, &generate_private_key().unwrap()).unwrap();
    let started = Instant::now();
    let mut frontier = Frontier::new();
    let base = Utc::now() - Duration::days(30);
    let mut checkpoints: Vec<(i64, Vec<u8>, String)> = vec![];
    let mut i = 0u64;
    let mut bytes = 0usize;
    while i < n {
        let end = (i + INSERT_BATCH as u64).min(n);
        let mut idx = Vec::with_capacity(INSERT_BATCH);
        let mut ids = Vec::with_capacity(INSERT_BATCH);
        let mut hashes = Vec::with_capacity(INSERT_BATCH);
        let mut payloads = Vec::with_capacity(INSERT_BATCH);
        let mut patients = Vec::with_capacity(INSERT_BATCH);
        let mut actors = Vec::with_capacity(INSERT_BATCH);
        let mut times = Vec::with_capacity(INSERT_BATCH);
        for k in i..end {
            let id = Uuid::new_v4();
            let time = base + Duration::milliseconds(k as i64);
            let data = payload(k, id, &time.to_rfc3339());
            let hash = tree::leaf_hash(data.as_bytes());
            frontier.push(hash);
            if frontier.size().is_multiple_of(CHECKPOINT_EVERY) || frontier.size() == n {
                let checkpoint = Checkpoint {
                    origin: ORIGIN.into(),
                    tree_size: frontier.size(),
                    root_hash: frontier.root(),
                };
                checkpoints.push((
                    frontier.size() as i64,
                    checkpoint.root_hash.to_vec(),
                    signer.sign_checkpoint(&checkpoint).unwrap(),
                ));
            }
            bytes += data.len();
            idx.push(k as i64);
            ids.push(id);
            hashes.push(hash.to_vec());
            payloads.push(data);
            patients.push(format!("Patient/p{}", k % 100_003));
            actors.push(format!("user-{}", k % 977));
            times.push(time);
        }
        // One statement per batch: arrays unnested server-side (7 parameters, not 7 per row).
        sql_query(
            "INSERT INTO leaves (idx, event_id, leaf_hash, payload, patient_ref, actor_id, time) \
             SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind::<Array<BigInt>, _>(idx)
        .bind::<Array<SqlUuid>, _>(ids)
        .bind::<Array<Bytea>, _>(hashes)
        .bind::<Array<Text>, _>(payloads)
        .bind::<Array<Text>, _>(patients)
        .bind::<Array<Text>, _>(actors)
        .bind::<Array<Timestamptz>, _>(times)
        .execute(&mut conn)
        .await
        .unwrap();
        i = end;
    }
    let (sizes, roots, notes): (Vec<i64>, Vec<Vec<u8>>, Vec<String>) =
        checkpoints.into_iter().fold(
            (vec![], vec![], vec![]),
            |(mut s, mut r, mut no), (size, root, note)| {
                s.push(size);
                r.push(root);
                no.push(note);
                (s, r, no)
            },
        );
    let signed = sizes.len();
    sql_query(
        "INSERT INTO checkpoints (tree_size, root_hash, note) SELECT * FROM unnest($1, $2, $3)",
    )
    .bind::<Array<BigInt>, _>(sizes)
    .bind::<Array<Bytea>, _>(roots)
    .bind::<Array<Text>, _>(notes)
    .execute(&mut conn)
    .await
    .unwrap();
    sql_query("VACUUM ANALYZE leaves")
        .execute(&mut conn)
        .await
        .unwrap();
    let loaded = started.elapsed();
    println!(
        "loaded {n} leaves ({:.0} MB of payload) and {signed} checkpoints in {:.1} s",
        bytes as f64 / 1e6,
        loaded.as_secs_f64()
    );

    let trust = Trust {
        log_keys: vec![signer.verifier_key()],
        ..Trust::default()
    };
    let report = verify(&mut PgSource::new(&mut conn, "scratch"), &trust)
        .await
        .unwrap();
    print!("{}", summary(&report));
    assert!(report.ok);
    assert_eq!(report.leaves, n);
    println!(
        "verify: {n} leaves in {:.2} s ({:.0} leaves/s, {:.0} MB/s of payload)",
        report.seconds,
        n as f64 / report.seconds,
        bytes as f64 / 1e6 / report.seconds
    );
    drop(conn);
    custodian_database::drop_database(&url).await.unwrap();
}
