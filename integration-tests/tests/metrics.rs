//! The six services' live `/metrics`, as Prometheus scrapes them: the suite runs as real
//! processes, a little of the story drives traffic (logins, a failed one, writes, a hidden read,
//! a break-the-glass read, unknown paths), then each service's exposition must pass
//! `promtool check metrics` (naming and HELP lint), carry the labelled series the alerts and
//! dashboards read, and hold no id of a user, a patient or a resource. Every metric a dashboard
//! in `k8s/monitoring/dashboards/` or a rule in `k8s/monitoring/prometheus-rule.yaml` names is
//! one these scrapes contain.
//!
//! Needs `promtool` (`scripts/ensure-deps.sh` installs it) and the binaries (`cargo build
//! --workspace --bins`; `make test` does).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use awc::http::Method;
use integration_tests::{
    api::Gateway,
    demo,
    suite::{binary_dir, free_port, Suite, SERVICES},
};
use serde_json::Value;

/// Families of the `ledger witness` process (a peer's witness), which the suite does not run:
/// these must at least be registered in the code.
const WITNESS_PROCESS: &str = "custodian_witness_";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// One sample line: name, the text between the braces, value.
struct Sample {
    name: String,
    labels: String,
    value: f64,
}

fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            Some(Sample {
                name: name.to_string(),
                labels: labels.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// The sum of `name`'s samples whose labels include every `k="v"` of `labels`.
fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|s| s.value)
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}

async fn scrape(url: &str) -> String {
    let body = awc::Client::default()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("metrics answer")
        .body()
        .limit(16 << 20)
        .await
        .expect("metrics body");
    String::from_utf8(body.to_vec()).expect("UTF-8 exposition")
}

/// `promtool check metrics` on one exposition: its output, or a failure naming the service.
fn promtool_check(service: &str, text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/ensure-deps.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed on {service}'s /metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether `text` holds something shaped like a UUID (8-4-4-4-12 hex digits).
fn holds_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    let shape = [8, 4, 4, 4, 12];
    let len: usize = shape.iter().sum::<usize>() + 4;
    (0..bytes.len().saturating_sub(len - 1)).any(|start| {
        let mut at = start;
        shape.iter().enumerate().all(|(i, n)| {
            let ok = bytes[at..at + n].iter().all(u8::is_ascii_hexdigit)
                && (i == 4 || bytes.get(at + n) == Some(&b'-'));
            at += n + 1;
            ok
        })
    })
}

/// Every `custodian_*` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("custodian_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// The PromQL expressions of every dashboard panel target, by dashboard file.
fn dashboard_expressions() -> BTreeMap<String, Vec<String>> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(expr)) = map.get("expr") {
                    out.push(expr.clone());
                }
                if let Some(Value::String(query)) = map.get("query") {
                    out.push(query.clone());
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let dir = root().join("k8s/monitoring/dashboards");
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut exprs = Vec::new();
        walk(&doc, &mut exprs);
        found.insert(
            path.file_name().unwrap().to_string_lossy().into_owned(),
            exprs,
        );
    }
    found
}

/// The `expr` of every rule in the PrometheusRule.
fn rule_expressions() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("k8s/monitoring/prometheus-rule.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    doc["spec"]["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .filter_map(|r| r["expr"].as_str().map(str::to_string))
        .collect()
}

/// The text of every Rust source under `shared/` and `services/` (for the witness process's
/// names, which no scrape here holds).
fn sources() -> String {
    let mut sources = String::new();
    let mut stack = vec![root().join("shared"), root().join("services")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().and_then(|e| e.to_str()) == Some("rs")
                && path.components().any(|c| c.as_os_str() == "src")
            {
                sources.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    sources
}

/// A witness key the ledger is told to ask for cosignatures (nobody answers at its address), so
/// the witnessing series exist as in a deployment with witnesses.
fn unreachable_witness(dir: &Path) -> String {
    let out = Command::new(binary_dir().join("ledger"))
        .args(["keygen", "--name", "witness.test", "--cosigner", "--out"])
        .arg(dir.join("witness.key"))
        .output()
        .expect("ledger keygen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verifier = String::from_utf8(out.stdout).unwrap().trim().to_string();
    format!("{verifier}@http://127.0.0.1:{}", free_port())
}

#[actix_web::test]
async fn live_metrics_pass_promtool_and_feed_the_alerts_and_dashboards() {
    let scratch = std::env::temp_dir().join(format!("custodian-metrics-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&scratch).unwrap();
    let witness = unreachable_witness(&scratch);
    let suite = Suite::start_with(&[
        ("LEDGER_WITNESSES", witness.as_str()),
        ("LEDGER_WITNESS_TIMEOUT_MS", "500"),
    ])
    .await;
    let gw = Gateway::new(suite.gateway_url());
    let demo = demo::seed(&gw, &suite.admin_password).await.unwrap();

    // A mistyped password, a read Hospital2 may not make (hidden as a 404), the same read with
    // the glass broken, a request without a token, and unknown paths with ids in them.
    let refused = gw
        .token(&[
            ("grant_type", "password"),
            ("username", &demo.h1_practitioner.username),
            ("password", "not the password"),
        ])
        .await
        .unwrap();
    assert_ne!(refused.status, 200);
    let h2 = gw
        .login(
            &demo.h2_practitioner.username,
            &demo.h2_practitioner.password,
        )
        .await
        .unwrap();
    let bob = format!("/fhir/Observation/{}", demo.bob_observation);
    gw.get(&bob, Some(&h2))
        .await
        .unwrap()
        .expect_status(404)
        .unwrap();
    gw.send(
        Method::GET,
        &bob,
        Some(&h2),
        &[("X-Break-Glass", "unconscious, no consent on file")],
        None,
    )
    .await
    .unwrap()
    .expect_status(200)
    .unwrap();
    gw.get(&bob, None)
        .await
        .unwrap()
        .expect_status(401)
        .unwrap();
    let unknown = format!("/no/such/{}", uuid::Uuid::new_v4());
    gw.get(&unknown, None).await.unwrap();
    for service in SERVICES {
        awc::Client::default()
            .get(format!("{}{unknown}", suite.url(service)))
            .send()
            .await
            .unwrap();
    }

    // The access events reach the ledger and anomaly (polled, no timing asserted).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ledger = samples(&scrape(&suite.url("ledger")).await);
        let anomaly = samples(&scrape(&suite.url("anomaly")).await);
        let appended = sum(&ledger, "custodian_ledger_tree_size", &[]).unwrap_or(0.0);
        let scored = sum(&anomaly, "custodian_anomaly_events_scored_total", &[]).unwrap_or(0.0);
        if appended > 0.0 && scored > 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no access event reached the ledger ({appended}) and anomaly ({scored}) in 60 s"
        );
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }

    // Ids that must never be a label value.
    let ids: Vec<String> = [
        &demo.h1_practitioner,
        &demo.h2_practitioner,
        &demo.alice,
        &demo.bob,
        &demo.auditor,
    ]
    .iter()
    .flat_map(|u| {
        let mut ids = vec![u.id.clone()];
        ids.extend(u.patient.clone());
        ids
    })
    .chain([
        demo.alice_observation.clone(),
        demo.alice_condition.clone(),
        demo.bob_observation.clone(),
        demo.bob_condition.clone(),
        demo.alice_consent.clone(),
    ])
    .collect();

    let mut exported = BTreeSet::new();
    let mut scraped = BTreeMap::new();
    for service in SERVICES {
        let text = scrape(&suite.url(service)).await;
        // Kept beside the services' logs, to read when an assertion below fails.
        std::fs::write(suite.log_dir.join(format!("{service}.metrics")), &text).ok();
        promtool_check(service, &text);
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(
                !holds_uuid(line),
                "{service} exports an id in a label: {line}"
            );
            for id in &ids {
                assert!(
                    !line.contains(id.as_str()),
                    "{service} exports {id}: {line}"
                );
            }
        }
        let parsed = samples(&text);
        for s in &parsed {
            assert!(
                s.labels.contains(&format!("service=\"{service}\"")),
                "{service}: {} {{{}}} lacks the service label",
                s.name,
                s.labels
            );
            exported.insert(s.name.clone());
        }
        scraped.insert(service, parsed);
    }

    // Latency per route pattern, method and status class on every service; paths no route
    // matches share one label value.
    for service in SERVICES {
        let s = &scraped[service];
        let routed = s
            .iter()
            .filter(|x| x.name == "custodian_http_request_duration_seconds_bucket")
            .filter(|x| {
                x.labels.contains("status_class=\"2xx\"") && x.labels.contains("method=\"GET\"")
            })
            .count();
        assert!(
            routed > 0,
            "{service} has no latency histogram of a GET answered 2xx"
        );
        assert!(
            sum(
                s,
                "custodian_http_requests_total",
                &[("route", "unmatched")]
            )
            .unwrap_or(0.0)
                >= 1.0,
            "{service} did not count the unknown path as route=\"unmatched\""
        );
        assert!(sum(s, "custodian_process_resident_memory_bytes", &[]).unwrap_or(0.0) > 0.0);
        assert!(sum(s, "custodian_process_cpu_seconds_total", &[]).unwrap_or(0.0) > 0.0);
    }
    let records = &scraped["records"];
    assert!(
        sum(
            records,
            "custodian_http_request_duration_seconds_count",
            &[("route", "/fhir/{type}/{id}"), ("status_class", "2xx")]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "records' reads are not labelled by their route pattern"
    );
    for service in ["identity", "consent", "records", "ledger", "anomaly"] {
        let s = &scraped[service];
        assert!(
            sum(s, "custodian_db_pool_max_connections", &[]).unwrap_or(0.0) > 0.0,
            "{service} exports no pool size"
        );
    }

    // The security series, each on the service that knows it.
    assert!(
        sum(
            records,
            "custodian_access_decisions_total",
            &[("effect", "deny")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert!(
        sum(
            records,
            "custodian_access_decisions_total",
            &[("effect", "break_glass"), ("basis", "break-glass")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    let identity = &scraped["identity"];
    assert!(
        sum(
            identity,
            "custodian_token_failures_total",
            &[("reason", "invalid_credentials")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert!(sum(identity, "custodian_users_suspended_total", &[]).is_some());
    assert!(sum(identity, "custodian_login_lockouts_total", &[]).is_some());
    let gateway = &scraped["gateway"];
    assert!(
        sum(
            gateway,
            "custodian_gateway_auth_rejections_total",
            &[("reason", "missing")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    let ledger = &scraped["ledger"];
    assert!(sum(ledger, "custodian_ledger_tree_size", &[]).unwrap_or(0.0) >= 1.0);
    assert!(sum(
        ledger,
        "custodian_ledger_published_checkpoint_age_seconds",
        &[]
    )
    .is_some());
    assert!(sum(
        ledger,
        "custodian_ledger_witness_failures_total",
        &[("witness", "witness.test"), ("reason", "unreachable")]
    )
    .is_some());
    assert!(sum(
        ledger,
        "custodian_stream_group_lag_messages",
        &[("stream", "access"), ("group", "ledger")]
    )
    .is_some());
    assert!(sum(
        ledger,
        "custodian_stream_messages_dead_lettered_total",
        &[
            ("stream", "access"),
            ("group", "ledger"),
            ("reason", "rejected")
        ]
    )
    .is_some());
    let anomaly = &scraped["anomaly"];
    assert_eq!(
        anomaly
            .iter()
            .filter(|s| s.name == "custodian_anomaly_alerts_total")
            .count(),
        9,
        "every alert kind is a series from the start"
    );
    assert!(sum(
        anomaly,
        "custodian_anomaly_alerts_total",
        &[("kind", "record-tampering")]
    )
    .is_some());
    assert!(sum(records, "custodian_outbox_backlog", &[]).is_some());
    assert!(
        sum(
            records,
            "custodian_events_published_total",
            &[("stream", "access")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert!(sum(
        records,
        "custodian_events_republished_total",
        &[("stream", "access")]
    )
    .is_some());

    // Every name the dashboards and the rules read is exported (the witness process's are at
    // least registered).
    let sources = sources();
    let mut referenced: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, exprs) in dashboard_expressions() {
        assert!(!exprs.is_empty(), "{file} has no queries");
        for expr in exprs {
            for name in metric_names(&expr) {
                referenced.entry(name).or_default().insert(file.clone());
            }
        }
    }
    assert!(
        referenced.len() > 10,
        "the dashboards read only {referenced:?}"
    );
    for expr in rule_expressions() {
        for name in metric_names(&expr) {
            referenced
                .entry(name)
                .or_default()
                .insert("prometheus-rule.yaml".into());
        }
    }
    for (name, users) in &referenced {
        if let Some(family) = name.strip_prefix(WITNESS_PROCESS) {
            assert!(
                sources.contains(&format!("\"witness_{family}\"")),
                "{users:?} read {name}, which the witness does not register"
            );
            continue;
        }
        assert!(
            exported.contains(name),
            "{users:?} read {name}, which no service exports (exported: {exported:?})"
        );
    }
    std::fs::remove_dir_all(&scratch).ok();
}

#[test]
fn uuid_shapes_are_recognised() {
    assert!(holds_uuid(
        r#"x{route="/fhir/Patient/0b7e5c3e-2d1f-4a6b-9c8d-0123456789ab"} 1"#
    ));
    assert!(!holds_uuid(r#"x{route="/fhir/{type}/{id}"} 1"#));
    assert!(!holds_uuid("0b7e5c3e-2d1f-4a6b-9c8d"));
}
