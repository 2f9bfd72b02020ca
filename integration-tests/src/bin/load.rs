//! `load` (`make load`): the FHIR API at scale, with authentication, consent, encryption, the
//! outbox, the ledger and anomaly all on. Starts the whole suite from release binaries with
//! its own databases, loads a synthetic population through the gateway as transaction
//! Bundles (`custodian-bulk`'s importer) in steps, and after each step measures, from this
//! separate process over `--connections` concurrent connections for `--seconds` each (and
//! again over `--latency-connections`, default 1, for what one request costs): token
//! search (selective and broad), date-range search, chained search, `_include`,
//! `$everything`, and at the smaller steps `$export` throughput; plus the transaction ingest
//! rate of the step's load twice: as the front answered it, and until the last resource's
//! access event was in the ledger and scored by anomaly (the load waits for the pipeline to
//! drain before measuring searches, and reports the backlog it waited for). Each step's load is
//! followed by `ANALYZE`, as after any bulk load. Prints a Markdown table (and writes it to
//! var/load/results.md).
//!
//! `load [--resources 10000,1000000] [--seconds 10] [--connections 16] [--seed 5]
//! [--batch 200] [--measure all|ingest] [--latency-connections 1]` (`CUSTODIAN_BIN_DIR` picks the binaries; `make load`
//! builds and uses target/release). `--measure ingest` loads and reports the ingest rate only
//! (no search, `$everything` or `$export` workloads): a quicker run when tuning ingest.

use std::{
    fmt::Write as _,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use awc::http::Method;
use integration_tests::{api::Gateway, bulk, demo, faults::check, suite::Suite};
use rand::{rngs::StdRng, Rng, SeedableRng};

struct Args {
    steps: Vec<usize>,
    seconds: u64,
    connections: usize,
    seed: u64,
    /// Resources per transaction Bundle.
    batch: usize,
    /// Only the ingest of each step, not the workloads after it.
    ingest_only: bool,
    /// Clients of the second, latency measurement of each workload (0: none): one client
    /// alone shows what a request costs, `connections` what the machine serves.
    latency_connections: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        steps: vec![10_000, 1_000_000],
        seconds: 10,
        connections: 16,
        seed: 5,
        batch: 200,
        ingest_only: false,
        latency_connections: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| format!("{flag}: {v} is not a number"))
        };
        match flag.as_str() {
            "--resources" => {
                args.steps = value.split(',').map(number).collect::<Result<_, _>>()?;
            }
            "--seconds" => args.seconds = number(&value)? as u64,
            "--connections" => args.connections = number(&value)?,
            "--seed" => args.seed = number(&value)? as u64,
            "--batch" => args.batch = number(&value)?.max(1),
            "--latency-connections" => args.latency_connections = number(&value)?,
            "--measure" => {
                args.ingest_only = match value.as_str() {
                    "all" => false,
                    "ingest" => true,
                    other => return Err(format!("--measure: {other} is not all or ingest")),
                }
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// The request path of one workload, drawn per request.
type PathOf = Arc<dyn Fn(&mut StdRng) -> String + Send + Sync>;

/// Requests per second and latency percentiles of one workload.
struct Measured {
    requests: usize,
    errors: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Runs `path_of(rng)` GETs from `connections` loops for `seconds`.
async fn measure(
    gateway: &Gateway,
    token: &str,
    connections: usize,
    seconds: u64,
    path_of: PathOf,
) -> Measured {
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(0usize));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut loops = Vec::new();
    for n in 0..connections {
        let (gateway, token) = (gateway.clone(), token.to_string());
        let (latencies, errors, stop, path_of) = (
            latencies.clone(),
            errors.clone(),
            stop.clone(),
            path_of.clone(),
        );
        loops.push(actix_web::rt::spawn(async move {
            let mut rng = StdRng::seed_from_u64(n as u64);
            let mut mine = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let path = path_of(&mut rng);
                let at = Instant::now();
                match gateway
                    .send(Method::GET, &path, Some(&token), &[], None)
                    .await
                {
                    Ok(r) if r.status == 200 => mine.push(at.elapsed().as_secs_f64() * 1000.0),
                    answer => {
                        if let Ok(mut e) = errors.lock() {
                            if *e == 0 {
                                let why = match answer {
                                    Ok(r) => format!("HTTP {}: {}", r.status, r.text),
                                    Err(e) => e.to_string(),
                                };
                                eprintln!("first error on {path}: {why}");
                            }
                            *e += 1;
                        }
                    }
                }
            }
            if let Ok(mut all) = latencies.lock() {
                all.extend(mine);
            }
        }));
    }
    actix_web::rt::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        let _ = l.await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut all = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    all.sort_by(|a, b| a.total_cmp(b));
    Measured {
        requests: all.len(),
        errors: errors.lock().map(|e| *e).unwrap_or_default(),
        seconds,
        p50_ms: percentile(&all, 50.0),
        p99_ms: percentile(&all, 99.0),
    }
}

/// How many synthetic patients make at least `resources` resources (the population is
/// prefix-stable, so the first patients of a larger population are those of a smaller one).
fn patients_for(seed: u64, resources: usize) -> usize {
    let mut patients = (resources / 11).max(1);
    while bulk::synthesize(seed, patients).len() < resources {
        patients += (patients / 50).max(1);
    }
    patients
}

async fn run(args: Args) -> Result<String, String> {
    let suite = Suite::start_with(&[
        ("RUST_LOG", "warn"),
        ("ANOMALY_SUSPEND", "false"),
        ("TOKEN_TTL_SECONDS", "7200"),
        ("DATABASE_POOL_SIZE", "16"),
    ])
    .await;
    let gateway = Gateway::new(suite.gateway_url());
    let demo = demo::seed(&gateway, &suite.admin_password)
        .await
        .map_err(|e| e.to_string())?;
    let token = gateway
        .login(
            &demo.h1_practitioner.username,
            &demo.h1_practitioner.password,
        )
        .await
        .map_err(|e| e.to_string())?;
    let database_url = |service: &str| suite.database_url(service);
    let mut redis = redis::aio::ConnectionManager::new(
        redis::Client::open(suite.redis_url()).map_err(|e| e.to_string())?,
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut table = String::from(
        "| resources | workload | clients | requests/s (or resources/s) | p50 ms | p99 ms | errors |\n|---:|---|---:|---:|---:|---:|---:|\n",
    );
    let mut loaded_from_population = 0usize;
    let mut loaded_resources = 0usize;
    for step in &args.steps {
        let patients = patients_for(args.seed, *step);
        let population = bulk::synthesize(args.seed, patients);
        // The population is prefix-stable (patient n's resources depend only on the seed and
        // the patients before her): a step loads what the previous one did not.
        let fresh = population[loaded_from_population.min(population.len())..].to_vec();
        loaded_from_population = population.len();
        eprintln!(
            "loading {} resources ({} patients in all)",
            fresh.len(),
            patients
        );
        let imported = bulk::import(
            &gateway,
            &token,
            fresh,
            args.batch,
            args.connections.min(8),
            &|_| {},
        )
        .await
        .map_err(|e| e.to_string())?;
        loaded_resources += imported.resources;
        // The front's answer is not the end of an ingest: every resource's access event must
        // reach the ledger and anomaly. Wait for them (a fast front with a backlog behind it
        // is not a rate), and measure the searches after, on a settled suite.
        let behind = check::backlog(&database_url, &mut redis, suite.stream_prefix()).await?;
        let drain_started = Instant::now();
        while !check::drained(&database_url, &mut redis, suite.stream_prefix()).await? {
            if drain_started.elapsed() > Duration::from_secs(4 * 3600) {
                return Err("the access pipeline had not drained 4 h after the load".into());
            }
            // Not more often: the check counts the outboxes' kept rows.
            actix_web::rt::time::sleep(Duration::from_secs(1)).await;
        }
        let drained_after = drain_started.elapsed().as_secs_f64();
        // What a DBA does after a bulk load, and autovacuum does a minute or so later: fresh
        // statistics. Without them the planner takes the new tables for empty (seen: a
        // patient's date-range search at 77 ms before, 0.5 ms after).
        let analyzed = std::process::Command::new("psql")
            .arg(suite.database_url("records"))
            .args(["-qc", "ANALYZE"])
            .status()
            .map_err(|e| format!("psql: {e}"))?;
        if !analyzed.success() {
            return Err("ANALYZE of the records database failed".into());
        }
        let size = loaded_resources;
        let through_ledger = imported.resources as f64 / (imported.seconds + drained_after);
        let _ = writeln!(
            table,
            "| {size} | transaction ingest ({} per Bundle), answered | {} | {:.0} | | | 0 |",
            args.batch,
            args.connections.min(8),
            imported.per_second()
        );
        let _ = writeln!(
            table,
            "| {size} | transaction ingest, until in the ledger and scored (backlog at the last answer: {} unpublished, ledger {}, anomaly {} events; drained {:.0} s later) | {} | {:.0} | | | 0 |",
            behind.unpublished,
            behind.ledger,
            behind.anomaly,
            drained_after,
            args.connections.min(8),
            through_ledger
        );
        eprintln!(
            "ingest: {} resources in {} Bundles, answered in {:.1} s ({:.0}/s); pipeline drained {:.1} s later ({:.0}/s end to end); backlog at the last answer {behind:?}",
            imported.resources,
            imported.bundles,
            imported.seconds,
            imported.per_second(),
            drained_after,
            through_ledger
        );
        if args.ingest_only {
            continue;
        }
        let seed = args.seed;
        let pick = move |rng: &mut StdRng| rng.gen_range(0..patients);
        let workloads: Vec<(&str, PathOf)> = vec![
            (
                "token search, selective (Patient?identifier=)",
                Arc::new(move |rng| {
                    format!(
                        "/fhir/Patient?identifier=urn:custodian:synthetic%7Csyn-{seed}-{}",
                        pick(rng)
                    )
                }),
            ),
            (
                "token search, broad (Observation?code=, _count=10)",
                Arc::new(|_| "/fhir/Observation?code=http://loinc.org%7C8867-4&_count=10".into()),
            ),
            (
                "date range (Observation?subject=&date=ge..&date=lt..)",
                Arc::new(move |rng| {
                    format!(
                        "/fhir/Observation?subject=Patient/syn-{seed}-{}&date=ge2018-01-01&date=lt2024-01-01",
                        pick(rng)
                    )
                }),
            ),
            (
                "chained (Observation?subject:Patient.identifier=)",
                Arc::new(move |rng| {
                    format!(
                        "/fhir/Observation?subject:Patient.identifier=urn:custodian:synthetic%7Csyn-{seed}-{}",
                        pick(rng)
                    )
                }),
            ),
            (
                "_include (Observation?subject=&_include=Observation:subject)",
                Arc::new(move |rng| {
                    format!(
                        "/fhir/Observation?subject=Patient/syn-{seed}-{}&_include=Observation:subject",
                        pick(rng)
                    )
                }),
            ),
            (
                "$everything",
                Arc::new(move |rng| format!("/fhir/Patient/syn-{seed}-{}/$everything", pick(rng))),
            ),
        ];
        for (name, path_of) in workloads {
            let clients = [args.connections, args.latency_connections];
            for clients in clients.into_iter().filter(|c| *c > 0) {
                eprintln!("measuring {name} at {size} resources, {clients} clients");
                let m = measure(&gateway, &token, clients, args.seconds, path_of.clone()).await;
                let _ = writeln!(
                    table,
                    "| {size} | {name} | {clients} | {:.0} | {:.1} | {:.1} | {} |",
                    m.requests as f64 / m.seconds,
                    m.p50_ms,
                    m.p99_ms,
                    m.errors
                );
            }
        }
        // $export of every Observation the practitioner may see, start to files.
        if size <= 200_000 {
            let dir = std::env::temp_dir().join(format!("custodian-load-{}", std::process::id()));
            let at = Instant::now();
            let files = bulk::export(
                &gateway,
                &token,
                "/fhir/Patient/$export?_type=Observation",
                &dir,
                Duration::from_millis(200),
                &|_| {},
            )
            .await
            .map_err(|e| e.to_string())?;
            let exported: usize = files.iter().map(|f| f.count).sum();
            let _ = std::fs::remove_dir_all(&dir);
            let _ = writeln!(
                table,
                "| {size} | $export (Observation, {exported} resources) | 1 | {:.0} | | | 0 |",
                exported as f64 / at.elapsed().as_secs_f64()
            );
        }
    }
    Ok(table)
}

#[actix_web::main]
async fn main() {
    let result = match parse_args() {
        Ok(args) => run(args).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(table) => {
            println!("{table}");
            let _ = std::fs::create_dir_all("var/load");
            let _ = std::fs::write("var/load/results.md", &table);
        }
        Err(e) => {
            eprintln!("load: {e}");
            std::process::exit(1);
        }
    }
}
