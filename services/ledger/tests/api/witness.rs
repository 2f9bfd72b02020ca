//! Two real witnesses (`ledger witness` apps on port 0, each with its own database) and a log
//! with a quorum of 2: they cosign a growing log; they refuse a forked or rewritten history
//! with the spec's status codes; a log whose history was rewritten publishes nothing and
//! counts the refusals.

use std::{path::PathBuf, time::Duration};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use custodian_telemetry::config::{Listen, Secret};
use ledger::{
    configuration::{DatabaseSettings, Settings},
    cosignature::CosignatureVerifier,
    signing::{generate_private_key, split_note, NoteSigner},
    tree::verify_consistency,
    verify::{postgres::PgSource, verify, Problem, Report, Trust},
    witness::{configuration::WitnessSettings, startup::WitnessApplication},
    witnessing::WitnessingSettings,
    Checkpoint,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::helpers::{event, spawn_app_configured, TestApp, ORIGIN};

pub struct TestWitness {
    pub name: String,
    pub url: String,
    pub verifier_key: String,
    db_url: String,
    server: actix_web::dev::ServerHandle,
    client: awc::Client,
}

pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl TestWitness {
    /// A witness of the logs with these verifier keys, with a generated key.
    pub async fn spawn(name: &str, log_keys: &[String]) -> TestWitness {
        let db_url = format!(
            "postgres://postgres@127.0.0.1:5432/witness_test_{}",
            Uuid::new_v4().simple()
        );
        let app = WitnessApplication::build(WitnessSettings {
            listen: Listen {
                host: "127.0.0.1".into(),
                port: 0,
                tls: None,
            },
            database: DatabaseSettings {
                url: Secret::new(db_url.clone()),
                auto_create: true,
                pool_size: 2,
            },
            name: name.into(),
            key_file: None,
            logs: log_keys.to_vec(),
        })
        .await
        .expect("the witness builds");
        let witness = TestWitness {
            name: name.into(),
            url: format!("http://127.0.0.1:{}", app.port()),
            verifier_key: app.verifier_key(),
            db_url,
            server: app.server_handle(),
            client: awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish(),
        };
        actix_web::rt::spawn(app.run_until_stopped());
        witness
    }

    async fn request(&self, req: awc::ClientRequest, body: Option<String>) -> Answer {
        let mut res = match body {
            Some(b) => req.send_body(b).await,
            None => req.send().await,
        }
        .expect("request sent");
        let body = res.body().await.expect("body");
        Answer {
            status: res.status().as_u16(),
            content_type: res
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            body: String::from_utf8(body.to_vec()).expect("utf-8"),
        }
    }

    pub async fn add_checkpoint(&self, body: String) -> Answer {
        let req = self.client.post(format!("{}/add-checkpoint", self.url));
        self.request(req, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        let req = self.client.get(format!("{}{path}", self.url));
        self.request(req, None).await
    }

    /// The sum of a metric's series whose labels contain `labels` (e.g. `reason="conflict"`).
    pub async fn metric(&self, name: &str, labels: &str) -> f64 {
        metric_sum(&self.get("/metrics").await.body, name, labels)
    }

    pub async fn finish(self) {
        self.server.stop(true).await;
        custodian_database::drop_database(&self.db_url)
            .await
            .expect("witness database dropped");
    }
}

pub fn metric_sum(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            let bare = key.split('{').next()?;
            (bare == name && key.contains(labels)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

pub fn log_signer() -> NoteSigner {
    NoteSigner::from_raw(ORIGIN, &generate_private_key().unwrap()).unwrap()
}

/// A key file (as a mounted Secret would be) holding these keys, first one signing.
pub fn key_file(signers: &[&NoteSigner]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ledger-key-{}", Uuid::new_v4().simple()));
    let lines: Vec<String> = signers
        .iter()
        .map(|s| s.private_key_line().unwrap())
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// A log signing with `key_file` and asking these witnesses, quorum `quorum`.
async fn spawn_witnessed_log(
    key_file: PathBuf,
    witnesses: &[&TestWitness],
    quorum: usize,
) -> TestApp {
    let list: Vec<String> = witnesses
        .iter()
        .map(|w| format!("{}@{}", w.verifier_key, w.url))
        .collect();
    let witnessing =
        WitnessingSettings::parse(&list.join(","), quorum, Duration::from_secs(5)).unwrap();
    spawn_app_configured(move |s: &mut Settings| {
        s.signing_key_file = Some(key_file);
        s.witnessing = witnessing;
    })
    .await
}

/// Waits until the log publishes a checkpoint of at least `size` leaves; returns its note.
async fn wait_for_published(app: &TestApp, size: u64, log_key: &str) -> (String, Checkpoint) {
    for _ in 0..300 {
        let res = app.get("/ledger/checkpoint", None).await;
        if res.status == 200 {
            let checkpoint = ledger::verify_note(&res.body, log_key).expect("log signature");
            if checkpoint.tree_size >= size {
                return (res.body, checkpoint);
            }
        } else {
            assert_eq!(res.status, 503, "{}", res.body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no published checkpoint of size {size} within 15 s");
}

/// Checks the note carries a valid cosignature of every witness; returns their timestamps.
fn assert_cosigned(note: &str, witnesses: &[&TestWitness]) -> Vec<u64> {
    let (body, signatures) = split_note(note).unwrap();
    witnesses
        .iter()
        .map(|w| {
            CosignatureVerifier::parse(&w.verifier_key)
                .unwrap()
                .verify(body, signatures)
                .unwrap_or_else(|e| panic!("no valid cosignature by {}: {e}\n{note}", w.name))
                .timestamp
        })
        .collect()
}

async fn ledger_metric(app: &TestApp, name: &str, labels: &str) -> f64 {
    metric_sum(&app.metrics().await, &format!("custodian_{name}"), labels)
}

async fn wait_for_ledger_metric(app: &TestApp, name: &str, labels: &str, at_least: f64) {
    for _ in 0..300 {
        if ledger_metric(app, name, labels).await >= at_least {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{name}{{{labels}}} did not reach {at_least} within 15 s:\n{}",
        app.metrics().await
    );
}

fn add_body(old: u64, proof: &[[u8; 32]], note: &str) -> String {
    ledger::witnessing::add_checkpoint_body(old, proof, note)
}

/// A tree of `leaves` leaves, as a log would hold it.
fn tree_of(leaves: u64) -> ledger::tree::Tree {
    let mut tree = ledger::tree::Tree::new();
    for i in 0..leaves {
        tree.append(&i.to_be_bytes());
    }
    tree
}

/// The log's signed checkpoint of `tree`'s first `size` leaves.
fn note_at(log: &NoteSigner, tree: &ledger::tree::Tree, size: u64) -> String {
    log.sign_checkpoint(&Checkpoint {
        origin: ORIGIN.into(),
        tree_size: size,
        root_hash: tree.root_at(size).unwrap(),
    })
    .unwrap()
}

#[actix_web::test]
async fn two_witnesses_cosign_a_growing_log() {
    let log = log_signer();
    let log_key = log.verifier_key();
    let w1 = TestWitness::spawn("w1.hospital-a.example", std::slice::from_ref(&log_key)).await;
    let w2 = TestWitness::spawn("w2.hospital-b.example", std::slice::from_ref(&log_key)).await;
    let mut app = spawn_witnessed_log(key_file(&[&log]), &[&w1, &w2], 2).await;

    for i in 0..3 {
        app.publish(&event(Some(&format!("Patient/p{i}")), "u1"))
            .await;
    }
    let (note3, cp3) = wait_for_published(&app, 3, &log_key).await;
    assert_eq!(cp3.tree_size, 3);
    let times = assert_cosigned(&note3, &[&w1, &w2]);
    assert!(times.iter().all(|t| *t > 1_700_000_000), "{times:?}");

    for i in 3..7 {
        app.publish(&event(Some(&format!("Patient/p{i}")), "u1"))
            .await;
    }
    let (note7, cp7) = wait_for_published(&app, 7, &log_key).await;
    assert_cosigned(&note7, &[&w1, &w2]);
    // The witnesses checked this growth; so can anyone.
    let res = app
        .get(
            "/ledger/proof/consistency?first=3&second=7",
            Some(&app.auditor()),
        )
        .await;
    let proof: Vec<Vec<u8>> = res.json()["consistency_proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| STANDARD.decode(h.as_str().unwrap()).unwrap())
        .collect();
    verify_consistency(3, 7, &proof, &cp3.root_hash, &cp7.root_hash).unwrap();

    // Patients' proofs are given against the published, cosigned checkpoint.
    let res = app.get("/ledger/accesses", Some(&app.auditor())).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["tree_size"], 7);
    assert_cosigned(res.json()["checkpoint"].as_str().unwrap(), &[&w1, &w2]);

    // The README's few lines of Python check the same answer independently: every entry's
    // inclusion proof against the root of a checkpoint signed by the log and both witnesses.
    let checked = check_accesses_in_python(&app, &log_key, &[&w1, &w2]).await;
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(
        said.contains("7 accesses in custodian.local/ledger at size 7: verified"),
        "{said}"
    );
    let other = TestWitness::spawn("w3.hospital-c.example", std::slice::from_ref(&log_key)).await;
    let refused = check_accesses_in_python(&app, &log_key, &[&w1, &other]).await;
    assert!(
        !refused.status.success(),
        "a witness that never cosigned was accepted"
    );
    other.finish().await;

    // `ledger verify` with both witnesses' keys: every cosignature verifies and a checkpoint
    // covering everything published carries the quorum.
    let report = verify_with_witnesses(&app, &log_key, &[&w1, &w2]).await;
    assert!(report.ok, "{:?}", report.problem);
    assert!(report.witnessed_size >= Some(7), "{report:?}");

    // The key listing names the witnesses and the quorum.
    let key = app.get("/ledger/key", None).await.json();
    assert_eq!(key["verifier_key"], log_key);
    assert_eq!(key["witness_quorum"], 2);
    let listed: Vec<&str> = key["witnesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["verifier_key"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        vec![w1.verifier_key.as_str(), w2.verifier_key.as_str()]
    );

    // Each witness serves what it cosigned (the monitoring endpoint) and its key.
    let origin_hash = hex::encode(Sha256::digest(ORIGIN.as_bytes()));
    let held = w1.get(&format!("/{origin_hash}/checkpoint")).await;
    assert_eq!(held.status, 200);
    assert_eq!(
        ledger::verify_note(&held.body, &log_key).unwrap().tree_size,
        7
    );
    assert_cosigned(&held.body, &[&w1]);
    assert_eq!(w2.get("/key").await.body.trim(), w2.verifier_key);
    assert_eq!(
        w1.get(&format!("/{}/checkpoint", "0".repeat(64)))
            .await
            .status,
        404
    );
    assert!(w1.metric("custodian_witness_cosignatures_total", "").await >= 2.0);
    assert!(
        ledger_metric(
            &app,
            "ledger_witness_cosignatures_total",
            "witness=\"w2.hospital-b.example\""
        )
        .await
            >= 2.0
    );
    assert_eq!(
        ledger_metric(&app, "ledger_published_tree_size", "").await,
        7.0
    );

    // A restarted log serves what the witnesses cosigned at once.
    let list = format!(
        "{}@{},{}@{}",
        w1.verifier_key, w1.url, w2.verifier_key, w2.url
    );
    let file = key_file(&[&log]);
    let mut app = app
        .restart_with(move |s: &mut Settings| {
            s.signing_key_file = Some(file);
            s.witnessing = WitnessingSettings::parse(&list, 2, Duration::from_secs(5)).unwrap();
        })
        .await;
    let res = app.get("/ledger/checkpoint", None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body, note7);

    // A dead witness: appends go on, publication waits, the failure is counted.
    w2.server.stop(true).await;
    app.publish(&event(Some("Patient/p7"), "u1")).await;
    app.wait_for_metric("ledger_tree_size", 8.0).await;
    wait_for_ledger_metric(
        &app,
        "ledger_witness_failures_total",
        "reason=\"unreachable\",witness=\"w2.hospital-b.example\"",
        1.0,
    )
    .await;
    let (_, still) = wait_for_published(&app, 7, &log_key).await;
    assert_eq!(still.tree_size, 7, "published without the quorum");

    app.finish().await;
    w1.finish().await;
    w2.finish().await;
}

#[actix_web::test]
async fn witnesses_refuse_a_forked_or_rewritten_history() {
    let log = log_signer();
    let log_key = log.verifier_key();
    let w1 = TestWitness::spawn("w1.hospital-a.example", std::slice::from_ref(&log_key)).await;
    let w2 = TestWitness::spawn("w2.hospital-b.example", std::slice::from_ref(&log_key)).await;
    let key = key_file(&[&log]);
    let mut app = spawn_witnessed_log(key.clone(), &[&w1, &w2], 2).await;
    for i in 0..5 {
        app.publish(&event(Some(&format!("Patient/p{i}")), "u1"))
            .await;
    }
    let (_, honest) = wait_for_published(&app, 5, &log_key).await;
    assert_eq!(honest.tree_size, 5);
    app.finish().await;

    // Whoever holds the log's key tries to show another history to a witness.
    let signed = |size: u64, root: [u8; 32]| {
        log.sign_checkpoint(&Checkpoint {
            origin: ORIGIN.into(),
            tree_size: size,
            root_hash: root,
        })
        .unwrap()
    };
    // A split view: the same size with another root.
    let split = w1
        .add_checkpoint(add_body(5, &[], &signed(5, [1; 32])))
        .await;
    assert_eq!(split.status, 422, "{}", split.body);
    // A smaller tree, from the size the witness holds: the old size exceeds the new one.
    let smaller = w1
        .add_checkpoint(add_body(5, &[], &signed(3, [2; 32])))
        .await;
    assert_eq!(smaller.status, 400, "{}", smaller.body);
    // A smaller tree claiming the witness held less: 409 with the size it holds.
    let stale = w1
        .add_checkpoint(add_body(3, &[[0; 32]], &signed(4, [2; 32])))
        .await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert_eq!(stale.content_type, "text/x.tlog.size");
    assert_eq!(stale.body, "5\n");
    // A larger tree whose proof does not link it to what the witness holds.
    let rewritten = w1
        .add_checkpoint(add_body(5, &[[3; 32], [4; 32]], &signed(8, [5; 32])))
        .await;
    assert_eq!(rewritten.status, 422, "{}", rewritten.body);
    // An unknown log, a key the witness does not trust for this log, a malformed body.
    let stranger = NoteSigner::from_raw("other.example/log", &generate_private_key().unwrap())
        .unwrap()
        .sign_checkpoint(&Checkpoint {
            origin: "other.example/log".into(),
            tree_size: 6,
            root_hash: [6; 32],
        })
        .unwrap();
    assert_eq!(
        w1.add_checkpoint(add_body(5, &[], &stranger)).await.status,
        404
    );
    let impostor = log_signer()
        .sign_checkpoint(&Checkpoint {
            origin: ORIGIN.into(),
            tree_size: 6,
            root_hash: [6; 32],
        })
        .unwrap();
    assert_eq!(
        w1.add_checkpoint(add_body(5, &[], &impostor)).await.status,
        403
    );
    let forged = {
        let note = signed(6, [6; 32]);
        let (head, sig) = note.trim_end().rsplit_once(' ').unwrap();
        let mut blob = STANDARD.decode(sig).unwrap();
        blob[20] ^= 1;
        format!("{head} {}\n", STANDARD.encode(blob))
    };
    assert_eq!(
        w1.add_checkpoint(add_body(5, &[], &forged)).await.status,
        403
    );
    assert_eq!(
        w1.add_checkpoint(format!("old five\n\n{}", signed(6, [6; 32])))
            .await
            .status,
        400
    );
    // The empty tree has one root only.
    assert_eq!(
        w1.add_checkpoint(add_body(0, &[], &signed(0, [7; 32])))
            .await
            .status,
        422
    );
    // Nothing moved the witness.
    let origin_hash = hex::encode(Sha256::digest(ORIGIN.as_bytes()));
    let held = w1.get(&format!("/{origin_hash}/checkpoint")).await;
    assert_eq!(ledger::verify_note(&held.body, &log_key).unwrap(), honest);
    assert!(
        w1.metric(
            "custodian_witness_refusals_total",
            "reason=\"inconsistent\""
        )
        .await
            >= 2.0
    );
    assert!(
        w1.metric("custodian_witness_refusals_total", "reason=\"conflict\"")
            .await
            >= 1.0
    );

    // The log rebuilt from scratch with other entries (same key, same origin): the
    // witnesses refuse it, it publishes nothing, and it counts and logs each refusal.
    let mut rogue = spawn_witnessed_log(key, &[&w1, &w2], 2).await;
    for i in 0..6 {
        rogue
            .publish(&event(Some(&format!("Patient/q{i}")), "u2"))
            .await;
    }
    rogue.wait_for_metric("ledger_tree_size", 6.0).await;
    for w in ["w1.hospital-a.example", "w2.hospital-b.example"] {
        wait_for_ledger_metric(
            &rogue,
            "ledger_witness_failures_total",
            &format!("reason=\"inconsistent\",witness=\"{w}\""),
            1.0,
        )
        .await;
    }
    let res = rogue.get("/ledger/checkpoint", None).await;
    assert_eq!(
        res.status, 503,
        "a rewritten history was published: {}",
        res.body
    );
    assert_eq!(
        ledger_metric(&rogue, "ledger_witness_cosignatures_total", "").await,
        0.0
    );
    let held = w2.get(&format!("/{origin_hash}/checkpoint")).await;
    assert_eq!(ledger::verify_note(&held.body, &log_key).unwrap(), honest);
    // Its own signatures are fine, but `ledger verify` with the witnesses' keys refuses it.
    let report = verify_with_witnesses(&rogue, &log_key, &[&w1, &w2]).await;
    assert!(
        matches!(report.problem, Some(Problem::Quorum { cosigned: 0, .. })),
        "{report:?}"
    );

    rogue.finish().await;
    w1.finish().await;
    w2.finish().await;
}

/// Runs `docs/examples/check_my_accesses.py` (the README's patient-side check) on the log's
/// `/ledger/accesses` answer for the auditor, trusting `log_key` and `witnesses`.
async fn check_accesses_in_python(
    app: &TestApp,
    log_key: &str,
    witnesses: &[&TestWitness],
) -> std::process::Output {
    let token = std::env::temp_dir().join(format!("auditor-{}.token", Uuid::new_v4()));
    std::fs::write(&token, app.auditor()).unwrap();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/check_my_accesses.py");
    let mut command = std::process::Command::new("python3");
    command
        .arg(script)
        .arg(&app.address)
        .arg(&token)
        .arg(log_key)
        .args(witnesses.iter().map(|w| w.verifier_key.as_str()));
    // Off this thread: the app that answers the script runs on it.
    let output = actix_web::rt::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("python3 runs (scripts/ensure-deps.sh installs it with python3-cryptography)");
    std::fs::remove_file(&token).ok();
    output
}

/// `ledger verify` of the log's database, trusting the log key and `witnesses` (all must
/// cosign).
async fn verify_with_witnesses(app: &TestApp, log_key: &str, witnesses: &[&TestWitness]) -> Report {
    use diesel_async::AsyncConnection;
    let mut conn = diesel_async::AsyncPgConnection::establish(&app.db_url)
        .await
        .unwrap();
    let trust = Trust {
        log_keys: vec![log_key.to_string()],
        witnesses: witnesses
            .iter()
            .map(|w| CosignatureVerifier::parse(&w.verifier_key).unwrap())
            .collect(),
        quorum: witnesses.len(),
        ..Trust::default()
    };
    verify(&mut PgSource::new(&mut conn, "test"), &trust)
        .await
        .unwrap()
}

#[actix_web::test]
async fn concurrent_submissions_advance_a_witness_once() {
    let log = log_signer();
    let w = TestWitness::spawn("w.hospital-c.example", &[log.verifier_key()]).await;
    let verifier = CosignatureVerifier::parse(&w.verifier_key).unwrap();
    let tree = tree_of(40);
    let note_at = |size: u64| note_at(&log, &tree, size);
    let first = w.add_checkpoint(add_body(0, &[], &note_at(5))).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let note5 = note_at(5);
    let (body5, _) = split_note(&note5).unwrap();
    verifier.verify(body5, &first.body).unwrap();
    // The same checkpoint again is cosigned again.
    assert_eq!(
        w.add_checkpoint(add_body(5, &[], &note_at(5))).await.status,
        200
    );

    let mut held = 5;
    for _ in 0..10 {
        let body = |size: u64| {
            add_body(
                held,
                &tree.consistency_proof(held, size).unwrap(),
                &note_at(size),
            )
        };
        let (a, b) = futures_util::future::join(
            w.add_checkpoint(body(held + 1)),
            w.add_checkpoint(body(held + 2)),
        )
        .await;
        let (winner, loser, size) = match (a.status, b.status) {
            (200, 409) => (a, b, held + 1),
            (409, 200) => (b, a, held + 2),
            other => panic!("exactly one must advance the witness, got {other:?}"),
        };
        assert_eq!(loser.content_type, "text/x.tlog.size");
        assert_eq!(
            loser.body,
            format!("{size}\n"),
            "the loser learns the winner's size"
        );
        let note = note_at(size);
        let (text, _) = split_note(&note).unwrap();
        verifier.verify(text, &winner.body).unwrap();
        held = size;
    }
    let origin_hash = hex::encode(Sha256::digest(ORIGIN.as_bytes()));
    let stored = w.get(&format!("/{origin_hash}/checkpoint")).await;
    assert_eq!(
        ledger::verify_note(&stored.body, &log.verifier_key())
            .unwrap()
            .tree_size,
        held
    );
    w.finish().await;
}

#[actix_web::test]
async fn the_witness_database_migrations_undo() {
    use diesel_async::{async_connection_wrapper::AsyncConnectionWrapper, AsyncPgConnection};
    use diesel_migrations::MigrationHarness;

    let url = format!(
        "postgres://postgres@127.0.0.1:5432/witness_test_{}",
        Uuid::new_v4().simple()
    );
    custodian_database::ensure_database(&url).await.unwrap();
    let check = url.clone();
    tokio::task::spawn_blocking(move || {
        use diesel::{sql_query, QueryableByName, RunQueryDsl};
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let tables = |conn: &mut AsyncConnectionWrapper<AsyncPgConnection>| {
            sql_query(
                "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public' \
                 AND table_name IN ('witnessed_logs', 'witness_key')",
            )
            .load::<Count>(conn)
            .unwrap()[0]
                .n
        };
        let mut conn =
            <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&check)
                .unwrap();
        conn.run_pending_migrations(ledger::witness::startup::WITNESS_MIGRATIONS)
            .unwrap();
        assert_eq!(tables(&mut conn), 2);
        conn.revert_all_migrations(ledger::witness::startup::WITNESS_MIGRATIONS)
            .unwrap();
        assert_eq!(tables(&mut conn), 0);
        conn.run_pending_migrations(ledger::witness::startup::WITNESS_MIGRATIONS)
            .unwrap();
        assert_eq!(tables(&mut conn), 2);
    })
    .await
    .unwrap();
    custodian_database::drop_database(&url).await.unwrap();
}

/// Figures, not a pass/fail test:
/// `cargo test -p ledger --test api witness_throughput -- --ignored --nocapture`.
/// Sequential add-checkpoint requests to one witness (each one leaf larger, with its proof),
/// then how long a witnessed log (quorum 2) takes from an append to publishing it.
#[actix_web::test]
#[ignore]
async fn witness_throughput() {
    use std::time::Instant;
    let log = log_signer();
    let w = TestWitness::spawn("w.bench", &[log.verifier_key()]).await;
    let n = 500u64;
    let tree = tree_of(n + 1);
    let note_at = |size: u64| note_at(&log, &tree, size);
    assert_eq!(
        w.add_checkpoint(add_body(0, &[], &note_at(1))).await.status,
        200
    );
    let started = Instant::now();
    for size in 2..=n {
        let body = add_body(
            size - 1,
            &tree.consistency_proof(size - 1, size).unwrap(),
            &note_at(size),
        );
        assert_eq!(w.add_checkpoint(body).await.status, 200);
    }
    let elapsed = started.elapsed();
    println!(
        "add-checkpoint: {} requests in {:.2} s = {:.0}/s, {:.2} ms each",
        n - 1,
        elapsed.as_secs_f64(),
        (n - 1) as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / (n - 1) as f64
    );
    w.finish().await;

    let log_key = log.verifier_key();
    let w1 = TestWitness::spawn("w1.bench", std::slice::from_ref(&log_key)).await;
    let w2 = TestWitness::spawn("w2.bench", std::slice::from_ref(&log_key)).await;
    let mut app = spawn_witnessed_log(key_file(&[&log]), &[&w1, &w2], 2).await;
    wait_for_published(&app, 0, &log_key).await;
    let mut latencies = Vec::new();
    for i in 0..20u64 {
        let started = Instant::now();
        app.publish(&event(Some("Patient/p1"), "u1")).await;
        wait_for_published(&app, i + 1, &log_key).await;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "append to published (checkpoint interval 100 ms, 2 witnesses): median {:.0} ms, max {:.0} ms",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    app.finish().await;
    w1.finish().await;
    w2.finish().await;
}
