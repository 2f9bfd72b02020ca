//! The fault harness (`make faults`; a short run in `make test`): the whole suite on a
//! PostgreSQL and a Redis of its own, clients signing in, writing and reading through the
//! gateway, and meanwhile, one after another: SIGKILL of each service (started again a second
//! later, as Kubernetes restarts a pod, under a new consumer name), Redis killed and started
//! again after a while, Redis started again empty (its disk lost), PostgreSQL crashed and
//! restarted. Then the clients stop, the pipeline drains, and the harness proves from the
//! databases and Redis themselves:
//! - every write the clients saw acknowledged is readable, with the value written;
//! - every request served (2xx) is in the ledger, every event id once, the leaf indexes without
//!   a gap, every leaf hashing to its payload and every checkpoint's root the root of the leaves
//!   before it (so each checkpoint is consistent with the one before);
//! - no outbox holds an event, no consumer group a pending message;
//! - anomaly scored exactly the events the ledger holds.
//!
//! It reports, per fault: requests made while it lasted, errors clients saw (no answer or 5xx),
//! how long until the last error, writes lost, events lost and duplicated.

pub mod check;
pub mod infra;
pub mod load;

use std::{
    cell::RefCell,
    collections::BTreeSet,
    fmt::Write as _,
    rc::Rc,
    time::{Duration, Instant},
};

use crate::{
    api::Gateway,
    demo,
    suite::{Backing, Suite},
};
use infra::{Postgres, Redis};
use load::{Journal, Op, Request};

#[derive(Debug, Clone)]
pub enum Fault {
    /// SIGKILL of a service, started again after `restart_after`.
    Kill(&'static str),
    /// Redis killed, started again after the duration (its append-only file kept).
    RedisDown(Duration),
    /// Redis killed and started again with nothing (its disk lost).
    RedisEmpty,
    /// PostgreSQL stopped as a crash would, and started again.
    PostgresCrash,
}

impl Fault {
    pub fn name(&self) -> String {
        match self {
            Fault::Kill(service) => format!("SIGKILL {service}"),
            Fault::RedisDown(d) => format!("Redis down {} s", d.as_secs()),
            Fault::RedisEmpty => "Redis restarted empty".into(),
            Fault::PostgresCrash => "PostgreSQL crash restart".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub faults: Vec<Fault>,
    /// Clients running at once.
    pub clients: usize,
    /// Load before the first fault, and between one fault's end and the next.
    pub settle: Duration,
    /// How long a killed service stays dead before it is started again.
    pub restart_after: Duration,
}

impl Plan {
    /// `make faults`: every service killed, Redis down 30 s, Redis empty, PostgreSQL crashed.
    pub fn full() -> Self {
        let mut faults: Vec<Fault> = crate::suite::SERVICES
            .iter()
            .map(|s| Fault::Kill(s))
            .collect();
        faults.push(Fault::RedisDown(Duration::from_secs(30)));
        faults.push(Fault::RedisEmpty);
        faults.push(Fault::PostgresCrash);
        Self {
            faults,
            clients: 8,
            settle: Duration::from_secs(8),
            restart_after: Duration::from_secs(1),
        }
    }

    /// `make test`'s run: the same kinds of fault, shorter.
    pub fn short() -> Self {
        Self {
            faults: vec![
                Fault::Kill("records"),
                Fault::Kill("ledger"),
                Fault::Kill("anomaly"),
                Fault::Kill("identity"),
                Fault::RedisDown(Duration::from_secs(3)),
                Fault::RedisEmpty,
                Fault::PostgresCrash,
            ],
            clients: 4,
            settle: Duration::from_secs(3),
            restart_after: Duration::from_secs(1),
        }
    }
}

/// One fault's row of the report.
#[derive(Debug, Clone)]
pub struct Row {
    pub fault: String,
    pub requests: usize,
    pub errors: usize,
    /// From the fault until the last error clients saw (zero when they saw none).
    pub recovery: Duration,
    /// Acknowledged writes not readable, and served requests missing from the ledger.
    pub lost: usize,
    /// Events the ledger holds more than once.
    pub duplicated: usize,
}

#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub requests: usize,
    pub writes: usize,
    pub leaves: usize,
    pub checkpoints: usize,
    /// Every failed proof, in words; empty when nothing was lost.
    pub failures: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The table for a terminal and the README (Markdown).
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| fault | requests | errors during the fault | recovery | lost | duplicated |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.1} s | {} | {} |",
                row.fault,
                row.requests,
                row.errors,
                row.recovery.as_secs_f64(),
                row.lost,
                row.duplicated
            );
        }
        let _ = writeln!(
            out,
            "\n{} requests, {} acknowledged writes; ledger: {} leaves, {} checkpoints verified.",
            self.requests, self.writes, self.leaves, self.checkpoints
        );
        if self.failures.is_empty() {
            let _ = writeln!(
                out,
                "Nothing lost: every acknowledged write readable, every served request in the ledger once, every event scored once, no outbox or group left holding anything."
            );
        } else {
            let _ = writeln!(out, "FAILED:");
            for f in &self.failures {
                let _ = writeln!(out, "  - {f}");
            }
        }
        out
    }
}

/// Runs the plan. Errors are the harness's own (a server that would not start), not findings.
pub async fn run(plan: &Plan) -> Result<Report, String> {
    let scratch = std::env::temp_dir().join(format!(
        "custodian-faults-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let result = run_in(plan, &scratch).await;
    if std::env::var("E2E_KEEP_DATABASES").is_ok() {
        // With the suite's databases kept: `pg_ctl -D <scratch>/pg/data start` to look.
        eprintln!("fault harness data kept in {}", scratch.display());
    } else {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    result
}

async fn run_in(plan: &Plan, scratch: &std::path::Path) -> Result<Report, String> {
    let postgres = Postgres::init(scratch)?;
    let mut redis = Redis::start_new(scratch)?;
    let mut suite = Suite::start_on(
        Backing {
            database_base: postgres.base_url(),
            redis_url: redis.url(),
            new_consumer_names: true,
        },
        &[
            // Durability is under test, not detection: nobody is suspended mid-run.
            ("ANOMALY_SUSPEND", "false"),
            // A dead member's messages are claimed after 3 s instead of 20.
            ("STREAM_CLAIM_IDLE_MS", "3000"),
        ],
    )
    .await;
    let gateway = Gateway::new(suite.gateway_url());
    let seeded = demo::seed(&gateway, &suite.admin_password)
        .await
        .map_err(|e| format!("demo data: {e:?}"))?;
    let patients: Vec<String> = [&seeded.alice, &seeded.bob]
        .iter()
        .filter_map(|u| u.patient.clone())
        .collect();

    let started = Instant::now();
    let journal = Journal::default();
    let stop = Rc::new(RefCell::new(false));
    let mut clients = Vec::new();
    for _ in 0..plan.clients {
        clients.push(actix_web::rt::spawn(load::client(
            Gateway::new(suite.gateway_url()),
            seeded.h1_practitioner.clone(),
            patients.clone(),
            journal.clone(),
            started,
            stop.clone(),
        )));
    }

    let mut windows: Vec<(String, Duration)> = Vec::new();
    actix_web::rt::time::sleep(plan.settle).await;
    for fault in &plan.faults {
        windows.push((fault.name(), started.elapsed()));
        match fault {
            Fault::Kill(service) => {
                suite.kill(service);
                actix_web::rt::time::sleep(plan.restart_after).await;
                suite.start_again(service).await;
            }
            Fault::RedisDown(down) => {
                redis.crash();
                actix_web::rt::time::sleep(*down).await;
                redis.start()?;
            }
            Fault::RedisEmpty => {
                redis.crash();
                redis.start_empty()?;
            }
            Fault::PostgresCrash => {
                // On a thread of its own: the clients share this one and keep going meanwhile.
                let control = postgres.control();
                let restart = std::thread::spawn(move || control.crash_and_restart());
                while !restart.is_finished() {
                    actix_web::rt::time::sleep(Duration::from_millis(100)).await;
                }
                restart
                    .join()
                    .map_err(|_| "the PostgreSQL restart panicked".to_string())??;
            }
        }
        actix_web::rt::time::sleep(plan.settle).await;
    }
    let end = started.elapsed();
    *stop.borrow_mut() = true;
    for client in clients {
        let _ = client.await;
    }

    // Drain: every outbox published and acknowledged, every group caught up.
    let mut redis_conn = redis::aio::ConnectionManager::new(
        redis::Client::open(redis.url()).map_err(|e| e.to_string())?,
    )
    .await
    .map_err(|e| e.to_string())?;
    let prefix = suite.stream_prefix().to_string();
    let database_url = |service: &str| suite.database_url(service);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut stalled = false;
    while !check::drained(&database_url, &mut redis_conn, &prefix).await? {
        if Instant::now() > deadline {
            stalled = true;
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    }

    let requests = journal.requests();
    let mut report = Report {
        requests: requests.len(),
        writes: requests.iter().filter(|r| r.written.is_some()).count(),
        ..Default::default()
    };

    if stalled {
        report
            .failures
            .push("the pipeline had not drained 120 s after the load stopped".into());
    }
    let ledger = check::ledger(&suite.database_url("ledger")).await?;
    report.leaves = ledger.leaves;
    report.checkpoints = ledger.checkpoints;
    report.failures.extend(ledger.broken.iter().cloned());
    let missing: BTreeSet<String> = requests
        .iter()
        .filter(|r| r.succeeded() && !ledger.request_ids.contains(&r.request_id))
        .map(|r| r.request_id.clone())
        .collect();
    if !missing.is_empty() {
        let examples: Vec<String> = requests
            .iter()
            .filter(|r| missing.contains(&r.request_id))
            .take(5)
            .map(|r| format!("{:?} {} at {:.1} s", r.op, r.request_id, r.at.as_secs_f64()))
            .collect();
        report.failures.push(format!(
            "{} served requests have no access event in the ledger: {}",
            missing.len(),
            examples.join(", ")
        ));
    }
    if !ledger.duplicated.is_empty() {
        report.failures.push(format!(
            "{} events are in the ledger more than once",
            ledger.duplicated.len()
        ));
    }
    let scored = check::scored(&suite.database_url("anomaly")).await?;
    let unscored = ledger.event_ids.difference(&scored).count();
    let unlogged = scored.difference(&ledger.event_ids).count();
    if unscored > 0 || unlogged > 0 {
        report.failures.push(format!(
            "anomaly scored {} events the ledger does not hold and missed {} it holds",
            unlogged, unscored
        ));
    }
    for (group, n) in check::pending(&mut redis_conn, &prefix).await? {
        if n > 0 {
            report
                .failures
                .push(format!("{n} messages left pending in {group}"));
        }
    }
    for (producer, n) in check::outboxes(&database_url).await? {
        if n > 0 {
            report
                .failures
                .push(format!("{n} events left in {producer}'s outbox"));
        }
    }

    // Every acknowledged write, read back as its writer (after the checks above: these reads
    // are accesses too, which the pipeline is not waiting for).
    let token = gateway
        .login(
            &seeded.h1_practitioner.username,
            &seeded.h1_practitioner.password,
        )
        .await
        .map_err(|e| format!("sign-in after the run: {e:?}"))?;
    let mut unreadable: BTreeSet<String> = BTreeSet::new();
    for request in &requests {
        let Some((id, value)) = &request.written else {
            continue;
        };
        let read = gateway
            .get(&format!("/fhir/Observation/{id}"), Some(&token))
            .await;
        let intact = read.as_ref().is_ok_and(|r| {
            r.status == 200 && r.json()["valueQuantity"]["value"].as_f64() == Some(*value)
        });
        if !intact {
            unreadable.insert(request.request_id.clone());
        }
    }
    if !unreadable.is_empty() {
        report.failures.push(format!(
            "{} acknowledged writes are not readable as written",
            unreadable.len()
        ));
    }

    // Rows: each fault's window runs until the next fault (the last until the end).
    let duplicated_requests = &ledger.duplicated_requests;
    for (i, (name, from)) in windows.iter().enumerate() {
        let until = windows.get(i + 1).map_or(end, |w| w.1);
        let inside: Vec<&Request> = requests
            .iter()
            .filter(|r| r.at >= *from && r.at < until)
            .collect();
        let errors: Vec<&&Request> = inside.iter().filter(|r| r.failed()).collect();
        let recovery = errors
            .iter()
            .map(|r| r.at.saturating_sub(*from))
            .max()
            .unwrap_or_default();
        let lost = inside
            .iter()
            .filter(|r| unreadable.contains(&r.request_id) || missing.contains(&r.request_id))
            .count();
        let duplicated = inside
            .iter()
            .filter(|r| duplicated_requests.contains(&r.request_id))
            .count();
        report.rows.push(Row {
            fault: name.clone(),
            requests: inside.len(),
            errors: errors.len(),
            recovery,
            lost,
            duplicated,
        });
    }
    let logins = requests.iter().filter(|r| r.op == Op::Login).count();
    if logins == 0 || report.writes == 0 {
        report.failures.push(
            "the clients made no sign-in or no acknowledged write: nothing was tested".into(),
        );
    }
    drop(suite);
    Ok(report)
}
