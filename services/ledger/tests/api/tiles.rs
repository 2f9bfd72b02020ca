//! The tree stored as tiles in PostgreSQL gives the same roots and proofs as the in-memory
//! reference tree, across tile boundaries, across replicas and after upgrading a database whose
//! leaves were stored without tiles.

use std::sync::Arc;

use custodian_database::Pool;
use diesel::sql_query;
use diesel_async::RunQueryDsl;
use ledger::{
    service::{LedgerMetrics, LedgerService},
    signing::{self, NoteSigner},
    tree::{leaf_hash, Tree},
};
use uuid::Uuid;

use crate::helpers::{event, ORIGIN};

/// A migrated scratch database with a pool, and a signer (as the app would have).
struct Scratch {
    url: String,
    pool: Pool,
    private_key: Vec<u8>,
}

impl Scratch {
    async fn new() -> Self {
        let url = format!(
            "postgres://postgres@127.0.0.1:5432/ledger_test_{}",
            Uuid::new_v4().simple()
        );
        custodian_database::ensure_database(&url).await.unwrap();
        custodian_database::run_migrations(&url, ledger::startup::MIGRATIONS)
            .await
            .unwrap();
        let pool = custodian_database::pool(&url, 4).unwrap();
        Self {
            url,
            pool,
            private_key: signing::generate_private_key().unwrap(),
        }
    }

    async fn open(&self) -> Arc<LedgerService> {
        let metrics = custodian_telemetry::Metrics::new("ledger");
        LedgerService::open(
            self.pool.clone(),
            NoteSigner::from_raw(ORIGIN, &self.private_key).unwrap(),
            LedgerMetrics::register(&metrics).unwrap(),
            0,
        )
        .await
        .unwrap()
    }

    async fn run_sql(&self, sql: &str) {
        let mut conn = self.pool.get().await.unwrap();
        sql_query(sql).execute(&mut conn).await.unwrap();
    }

    async fn finish(self) {
        drop(self.pool);
        custodian_database::drop_database(&self.url).await.unwrap();
    }
}

/// Appends `n` events in batches of `batch`, mirroring them into `reference`.
async fn append(ledger: &LedgerService, reference: &mut Tree, n: u64, batch: u64) {
    let mut left = n;
    while left > 0 {
        let take = left.min(batch);
        let events: Vec<_> = (0..take)
            .map(|i| {
                let e = event(Some(&format!("Patient/p{}", i % 7)), "u1");
                (serde_json::to_string(&e).unwrap(), e)
            })
            .collect();
        let outcomes = ledger.append(&events).await.unwrap();
        for ((payload, _), outcome) in events.iter().zip(outcomes) {
            assert_eq!(
                outcome,
                ledger::storage::Appended::New(reference.size() as i64)
            );
            reference.append(payload.as_bytes());
        }
        left -= take;
    }
}

/// Every kind of answer at `size`, and at sizes and indices drawn from below it, is the
/// reference tree's.
async fn assert_same_tree(ledger: &LedgerService, reference: &Tree) {
    let size = reference.size();
    assert_eq!(ledger.head(), (size, reference.root()), "head at {size}");
    let mut x = size.wrapping_mul(0x9e37_79b9) | 1;
    let mut checks: Vec<(u64, u64, u64)> = vec![(0, size, 1), (size - 1, size, size)];
    for _ in 0..60 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = 1 + x % size;
        checks.push(((x >> 9) % at, at, 1 + (x >> 29) % at));
    }
    for (index, at, first) in checks {
        let proof = ledger.inclusion_proof(index, at).await.unwrap();
        assert_eq!(proof.proof, reference.inclusion_proof(index, at).unwrap());
        assert_eq!(Some(proof.leaf_hash), reference.leaf(index));
        assert_eq!(proof.root, reference.root_at(at).unwrap());
        let consistency = ledger.consistency(first, at).await.unwrap();
        assert_eq!(
            consistency.proof,
            reference.consistency_proof(first, at).unwrap(),
            "{first} -> {at}"
        );
        assert_eq!(consistency.first_root, reference.root_at(first).unwrap());
        assert_eq!(
            ledger.root_at(at).await.unwrap(),
            reference.root_at(at).unwrap()
        );
    }
    // Several proofs from one read.
    let indices: Vec<u64> = (0..size).step_by((size as usize / 9).max(1)).collect();
    let proofs = ledger.inclusion_proofs(&indices, size).await.unwrap();
    for (index, proof) in indices.iter().zip(proofs) {
        assert_eq!(
            proof.proof,
            reference.inclusion_proof(*index, size).unwrap()
        );
    }
    // Beyond the tree: 404, not a wrong answer.
    assert!(ledger.inclusion_proof(0, size + 1).await.is_err());
    assert!(ledger.consistency(1, size + 1).await.is_err());
}

#[actix_web::test]
async fn tile_backed_proofs_equal_the_in_memory_tree_across_tile_boundaries() {
    let scratch = Scratch::new().await;
    let ledger = scratch.open().await;
    let mut reference = Tree::new();
    // Sizes on both sides of the boundaries of level-0, level-1 and level-2 tiles.
    for (target, batch) in [
        (1, 1),
        (255, 100),
        (256, 1),
        (257, 1),
        (511, 300),
        (512, 1),
        (4_000, 1000),
        (65_535, 2000),
        (65_536, 1),
        (65_537, 1),
        (65_900, 250),
    ] {
        let more = target - reference.size();
        append(&ledger, &mut reference, more, batch).await;
        assert_same_tree(&ledger, &reference).await;
    }
    // A replica opened on the same database reads the edge from the tiles, not the leaves.
    let checkpoint = ledger.sign_current(false).await.unwrap();
    assert_eq!(checkpoint.root_hash, reference.root());
    let replica = scratch.open().await;
    assert_same_tree(&replica, &reference).await;
    // Appends alternate between the two: each finds the other's tiles and continues them.
    append(&replica, &mut reference, 300, 77).await;
    append(&ledger, &mut reference, 20, 20).await;
    assert_same_tree(&ledger, &reference).await;
    assert_eq!(replica.catch_up().await.unwrap(), reference.size());
    assert_same_tree(&replica, &reference).await;
    drop((ledger, replica));
    scratch.finish().await;
}

#[actix_web::test]
async fn leaves_stored_without_tiles_get_them_at_open_and_when_caught_up() {
    let scratch = Scratch::new().await;
    let ledger = scratch.open().await;
    let mut reference = Tree::new();
    append(&ledger, &mut reference, 1_000, 333).await;
    let signed = ledger.sign_current(false).await.unwrap();
    drop(ledger);

    // A database from before tiles: its leaves and checkpoints, no tiles.
    scratch.run_sql("DELETE FROM tiles").await;
    let ledger = scratch.open().await;
    assert_eq!(ledger.latest().root_hash, signed.root_hash);
    assert_same_tree(&ledger, &reference).await;

    // A writer of the old version appends leaves without tiles (nor the search columns, which
    // a trigger fills from the payload); they are integrated.
    for i in 0..300u64 {
        let payload = format!("{{\"legacy\":{i},\"action\":\"read\",\"outcome\":\"permit\"}}");
        let hash = leaf_hash(payload.as_bytes());
        scratch
            .run_sql(&format!(
                "INSERT INTO leaves (idx, event_id, leaf_hash, payload, actor_id, time) \
                 VALUES ({}, '{}', '\\x{}', '{payload}', 'u1', now())",
                reference.size(),
                Uuid::new_v4(),
                hex::encode(hash)
            ))
            .await;
        reference.push_leaf_hash(hash);
    }
    // Appending now first integrates the legacy leaves, then continues after them.
    append(&ledger, &mut reference, 5, 5).await;
    assert_same_tree(&ledger, &reference).await;
    let replica = scratch.open().await;
    assert_same_tree(&replica, &reference).await;

    // A tampered edge tile is noticed at open: the signed root no longer matches (full tiles
    // below the edge are not read at open; `ledger verify` checks every leaf).
    ledger.sign_current(false).await.unwrap();
    scratch
        .run_sql("UPDATE tiles SET hashes = set_byte(hashes, 0, get_byte(hashes, 0) # 1) WHERE level = 1 AND idx = 0")
        .await;
    let metrics = custodian_telemetry::Metrics::new("ledger");
    let reopened = LedgerService::open(
        scratch.pool.clone(),
        NoteSigner::from_raw(ORIGIN, &scratch.private_key).unwrap(),
        LedgerMetrics::register(&metrics).unwrap(),
        0,
    )
    .await;
    assert!(
        reopened.is_err(),
        "a tree that differs from the signed one is refused"
    );
    drop((ledger, replica));
    scratch.finish().await;
}

/// Status and raw body of a GET.
async fn fetch(app: &crate::helpers::TestApp, path: &str, token: Option<&str>) -> (u16, Vec<u8>) {
    let mut req = app.client.get(format!("{}{}", app.address, path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let mut res = req.send().await.unwrap();
    let body = res.body().limit(1 << 20).await.unwrap();
    (res.status().as_u16(), body.to_vec())
}

#[actix_web::test]
async fn tiles_are_served_as_c2sp_tlog_tiles() {
    let mut app = crate::helpers::spawn_app().await;
    let mut payloads = Vec::new();
    for i in 0..5 {
        payloads.push(
            app.publish(&event(Some(&format!("Patient/p{i}")), "u1"))
                .await,
        );
    }
    let (_, checkpoint) = app.wait_for_checkpoint(5).await;
    assert_eq!(checkpoint.tree_size, 5);

    // Hash tiles are public; the partial level-0 tile of the signed tree is the leaf hashes,
    // and they give the signed root.
    let (status, body) = fetch(&app, "/ledger/tile/0/000.p/5", None).await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), 5 * 32);
    let hashes: Vec<[u8; 32]> = body.chunks(32).map(|c| c.try_into().unwrap()).collect();
    let tree = Tree::from_leaf_hashes(hashes.iter().copied());
    assert_eq!(tree.root(), checkpoint.root_hash);
    // A narrower partial tile is a prefix.
    let (status, body) = fetch(&app, "/ledger/tile/0/000.p/2", None).await;
    assert_eq!((status, body.len()), (200, 64));
    // Not (yet) in the signed tree, or not a tile path: 404.
    for path in [
        "/ledger/tile/0/000",
        "/ledger/tile/0/000.p/6",
        "/ledger/tile/1/000.p/1",
        "/ledger/tile/0/001.p/1",
        "/ledger/tile/0/0",
        "/ledger/tile/0/000.p/0",
        "/ledger/tile/x/000",
    ] {
        assert_eq!(fetch(&app, path, None).await.0, 404, "{path}");
    }

    // Entry bundles name patients: a token is needed, and every entry must be the caller's.
    assert_eq!(
        fetch(&app, "/ledger/tile/entries/000.p/5", None).await.0,
        401
    );
    let (_, alice) = app.issuer.patient("Patient/p0");
    assert_eq!(
        fetch(&app, "/ledger/tile/entries/000.p/5", Some(&alice))
            .await
            .0,
        403
    );
    assert_eq!(
        fetch(&app, "/ledger/tile/entries/000.p/1", Some(&alice))
            .await
            .0,
        200,
        "a bundle of only her own entry"
    );
    let (status, bundle) = fetch(&app, "/ledger/tile/entries/000.p/5", Some(&app.auditor())).await;
    assert_eq!(status, 200);
    let mut rest = bundle.as_slice();
    let mut entries = Vec::new();
    while !rest.is_empty() {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        entries.push(rest[2..2 + len].to_vec());
        rest = &rest[2 + len..];
    }
    assert_eq!(entries.len(), 5);
    for (entry, hash) in entries.iter().zip(&hashes) {
        assert_eq!(leaf_hash(entry), *hash);
    }
    let logged: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
    for payload in &payloads {
        assert!(logged.contains(&payload.as_bytes()));
    }
    app.finish().await;
}
