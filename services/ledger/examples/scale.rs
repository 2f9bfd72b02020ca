//! The ledger at scale, through its real storage path, against the local PostgreSQL:
//!
//! 1. bulk-loads N leaves into a scratch database (server-side SQL, short synthetic payloads,
//!    no tiles: a ledger from before tiles), then opens the ledger, which builds their tiles
//!    page by page (the upgrade path), and opens it again (the start of a replica);
//! 2. appends access events of ~400 bytes through `LedgerService::append` for a while, with a
//!    checkpoint signed every second, and reports events/s;
//! 3. times random inclusion and consistency proofs at the final size (p50/p99/max);
//! 4. reports the process's peak resident memory.
//!
//! `cargo run --release -p ledger --example scale -- --leaves 10000000 [--seconds 30]
//!  [--batch 200] [--writers 2] [--proofs 10000] [--db postgres://...] [--keep]`
//! With `--db` an existing database is reused (loaded up to `--leaves` if it has fewer).

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code (example, not shipped)

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use custodian_events::{AccessAction, AccessEvent, AccessOutcome, Actor, Source};
use diesel::sql_query;
use diesel_async::RunQueryDsl;
use ledger::{
    service::{LedgerMetrics, LedgerService},
    signing::{self, NoteSigner},
    tile_storage,
    tree::{verify_consistency, verify_inclusion},
};
use uuid::Uuid;

struct Args {
    leaves: u64,
    seconds: u64,
    batch: usize,
    writers: usize,
    proofs: usize,
    db: Option<String>,
    keep: bool,
    /// Pool connections recycled without the `SELECT 1` check deadpool makes by default.
    fast_recycle: bool,
}

fn args() -> Args {
    let mut a = Args {
        leaves: 1_000_000,
        seconds: 30,
        batch: 200,
        writers: 2,
        proofs: 10_000,
        db: None,
        keep: false,
        fast_recycle: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match flag.as_str() {
            "--leaves" => a.leaves = value().parse().expect("--leaves N"),
            "--seconds" => a.seconds = value().parse().expect("--seconds N"),
            "--batch" => a.batch = value().parse().expect("--batch N"),
            "--writers" => a.writers = value().parse().expect("--writers N"),
            "--proofs" => a.proofs = value().parse().expect("--proofs N"),
            "--db" => a.db = Some(value()),
            "--keep" => a.keep = true,
            "--fast-recycle" => a.fast_recycle = true,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// Kernel-reported memory of this process, in MiB: (peak, current).
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn event(i: u64) -> (String, AccessEvent) {
    let e = AccessEvent {
        id: Uuid::new_v4(),
        time: chrono::Utc::now(),
        actor: Actor {
            id: format!("practitioner-{}", i % 97),
            role: "practitioner".into(),
            organization: Some("Organization/hospital-1".into()),
            department: Some("cardiology".into()),
            practitioner: Some(format!("Practitioner/{}", i % 97)),
        },
        patient: Some(format!("Patient/{:08}", i % 100_000)),
        action: AccessAction::Read,
        resource_type: Some("Observation".into()),
        count: 1,
        purpose: "TREAT".into(),
        outcome: AccessOutcome::Permit,
        break_glass: false,
        confidentiality: Some("N".into()),
        source: Source {
            ip: Some("10.0.3.17".into()),
            user_agent: Some("custodian-web/1.0 (Linux x86_64)".into()),
        },
        decision: None,
        request_id: Some(Uuid::new_v4().to_string()),
        account: None,
    };
    (serde_json::to_string(&e).unwrap(), e)
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    format!(
        "p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        at(0.5),
        at(0.99),
        samples[samples.len() - 1]
    )
}

async fn open(pool: &custodian_database::Pool, key: &[u8]) -> Arc<LedgerService> {
    let metrics = custodian_telemetry::Metrics::new("ledger");
    LedgerService::open(
        pool.clone(),
        NoteSigner::from_raw("scale.example/ledger", key).unwrap(),
        LedgerMetrics::register(&metrics).unwrap(),
        0,
    )
    .await
    .unwrap()
}

#[tokio::main]
async fn main() {
    let args = args();
    let url = args.db.clone().unwrap_or_else(|| {
        format!(
            "postgres://postgres@127.0.0.1:5432/ledger_scale_{}",
            Uuid::new_v4().simple()
        )
    });
    custodian_database::ensure_database(&url).await.unwrap();
    custodian_database::run_migrations(&url, ledger::startup::MIGRATIONS)
        .await
        .unwrap();
    let pool = if args.fast_recycle {
        use diesel_async::pooled_connection::{
            AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
        };
        let mut config = ManagerConfig::default();
        config.recycling_method = RecyclingMethod::Fast;
        let manager = AsyncDieselConnectionManager::new_with_config(&url, config);
        custodian_database::Pool::builder(manager)
            .max_size(8)
            .build()
            .unwrap()
    } else {
        custodian_database::pool(&url, 8).unwrap()
    };
    let mut conn = pool.get().await.unwrap();
    let key = ledger::storage::load_or_create_key(&mut conn, || {
        let private = signing::generate_private_key()?;
        let public = NoteSigner::from_raw("scale.example/ledger", &private)?
            .public_key()
            .to_vec();
        Ok::<_, signing::SigningError>((private, public))
    })
    .await
    .unwrap();

    // 1. Bulk load: leaves only, as a ledger from before tiles holds them.
    let have = tile_storage::leaf_count(&mut conn).await.unwrap();
    if have < args.leaves {
        let started = Instant::now();
        let chunk = 1_000_000u64;
        let mut from = have;
        while from < args.leaves {
            let to = (from + chunk).min(args.leaves);
            sql_query(format!(
                "INSERT INTO leaves (idx, event_id, leaf_hash, payload, patient_ref, actor_id, time, \
                                     action, outcome) \
                 SELECT i, gen_random_uuid(), \
                        sha256('\\x00'::bytea || convert_to('bulk leaf ' || i, 'UTF8')), \
                        'bulk leaf ' || i, 'Patient/' || lpad((i % 100000)::text, 8, '0'), \
                        'practitioner-' || (i % 97), now(), 'read', 'permit' \
                 FROM generate_series({from}::bigint, {}::bigint) AS i",
                to - 1
            ))
            .execute(&mut conn)
            .await
            .unwrap();
            from = to;
            println!("bulk: {from} leaves ({:.0?})", started.elapsed());
        }
        sql_query("ANALYZE leaves")
            .execute(&mut conn)
            .await
            .unwrap();
        println!(
            "bulk load of {} leaves: {:.1?}",
            args.leaves - have,
            started.elapsed()
        );
    }
    drop(conn);

    // The upgrade: opening builds the tiles of every leaf stored without them.
    let started = Instant::now();
    let ledger = open(&pool, &key).await;
    println!(
        "open with tile building (upgrade path): {:.1?}, tree size {}, peak RSS {:.0} MiB",
        started.elapsed(),
        ledger.size(),
        rss_mib().0
    );
    drop(ledger);
    let started = Instant::now();
    let ledger = open(&pool, &key).await;
    println!(
        "open of a tiled ledger (a replica's start): {:.1?}",
        started.elapsed()
    );
    let start_size = ledger.size();

    // 2. Sustained appends with a checkpoint every second.
    let stop = Arc::new(AtomicBool::new(false));
    let appended = Arc::new(AtomicU64::new(0));
    let signer = {
        let ledger = ledger.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut signed = 0u64;
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            ticker.tick().await;
            while !AtomicBool::load(&stop, Ordering::Relaxed) {
                ticker.tick().await;
                ledger.catch_up().await.unwrap();
                ledger.sign_current(false).await.unwrap();
                signed += 1;
            }
            signed
        })
    };
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut writers = Vec::new();
    for w in 0..args.writers {
        let ledger = ledger.clone();
        let appended = appended.clone();
        let batch = args.batch;
        writers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = w as u64 * 1_000_000_000;
            let mut payload_bytes = 0usize;
            while Instant::now() < deadline {
                let events: Vec<_> = (0..batch)
                    .map(|_| {
                        i += 1;
                        event(i)
                    })
                    .collect();
                payload_bytes += events.iter().map(|(p, _)| p.len()).sum::<usize>();
                let t = Instant::now();
                ledger.append(&events).await.unwrap();
                latencies.push(t.elapsed());
                appended.fetch_add(batch as u64, Ordering::Relaxed);
            }
            (latencies, payload_bytes)
        }));
    }
    let mut latencies = Vec::new();
    let mut payload_bytes = 0;
    for w in writers {
        let (l, b) = w.await.unwrap();
        latencies.extend(l);
        payload_bytes += b;
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let checkpoints = signer.await.unwrap();
    let n = AtomicU64::load(&appended, Ordering::Relaxed);
    let final_checkpoint = ledger.sign_current(false).await.unwrap();
    assert_eq!(final_checkpoint.tree_size, start_size + n);
    println!(
        "appends: {n} events of {:.0} bytes average in {:.1?} = {:.0} events/s \
         ({} writers, batches of {}; batch latency {}); {checkpoints} checkpoints signed",
        payload_bytes as f64 / n as f64,
        elapsed,
        n as f64 / elapsed.as_secs_f64(),
        args.writers,
        args.batch,
        percentiles(latencies),
    );

    // 3. Proofs at the final size, random leaves, the tile cache starting cold.
    let size = ledger.size();
    let root = ledger.root_at(size).await.unwrap();
    assert_eq!(root, final_checkpoint.root_hash);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut inclusion = Vec::with_capacity(args.proofs);
    for k in 0..args.proofs {
        let index = next() % size;
        let t = Instant::now();
        let proof = ledger.inclusion_proof(index, size).await.unwrap();
        inclusion.push(t.elapsed());
        if k % 100 == 0 {
            verify_inclusion(index, size, &proof.leaf_hash, &proof.proof, &root).unwrap();
        }
    }
    println!(
        "inclusion proofs at size {size}: {} ({} proofs)",
        percentiles(inclusion),
        args.proofs
    );
    // The same with every tile cached: the CPU part alone.
    let mut warm = Vec::with_capacity(args.proofs);
    let hot: Vec<u64> = (0..64).map(|_| next() % size).collect();
    for k in 0..args.proofs {
        let index = hot[k % hot.len()];
        let t = Instant::now();
        ledger.inclusion_proof(index, size).await.unwrap();
        warm.push(t.elapsed());
    }
    println!("inclusion proofs, tiles cached: {}", percentiles(warm));
    let mut consistency = Vec::with_capacity(args.proofs);
    for k in 0..args.proofs {
        let first = 1 + next() % size;
        let t = Instant::now();
        let proof = ledger.consistency(first, size).await.unwrap();
        consistency.push(t.elapsed());
        if k % 100 == 0 {
            verify_consistency(first, size, &proof.proof, &proof.first_root, &root).unwrap();
        }
    }
    println!(
        "consistency proofs to size {size}: {} ({} proofs)",
        percentiles(consistency),
        args.proofs
    );
    let mut between = Vec::with_capacity(args.proofs);
    for _ in 0..args.proofs {
        let a = 1 + next() % size;
        let b = 1 + next() % size;
        let t = Instant::now();
        ledger.consistency(a.min(b), a.max(b)).await.unwrap();
        between.push(t.elapsed());
    }
    println!(
        "consistency proofs between random sizes: {}",
        percentiles(between)
    );

    // 4. Memory.
    let (peak, now) = rss_mib();
    println!("memory: peak RSS {peak:.0} MiB, RSS now {now:.0} MiB");

    drop(ledger);
    drop(pool);
    if args.db.is_none() && !args.keep {
        custodian_database::drop_database(&url).await.unwrap();
    } else {
        println!("database kept: {url}");
    }
}
