//! The Kubernetes manifests agree with the code: `kubectl kustomize` renders k8s/base,
//! k8s/overlays/dev and k8s/overlays/production, and every object is checked against the sources.
//!
//! Every target:
//! - every environment variable a container gets (its `env`, and every key of a ConfigMap or
//!   Secret pulled in with `envFrom`) is read by that service: the name appears as a string
//!   literal `"NAME"` in `services/<svc>/src` or in a shared crate the service depends on;
//! - `containerPort`, the `PORT` variable and the probe ports agree;
//! - probes are `/healthz` (startup, liveness) and `/readyz` (readiness), which the telemetry
//!   crate every service mounts serves;
//! - every Service's `targetPort` is a container port of the workload it selects;
//! - the base's Secrets hold placeholders only, the overlays render no Secret and set no
//!   variable from one (secrets are mounted files), no ConfigMap value looks like a secret;
//! - pods run locked down, the ledger stays a single writer, images are as each target wants
//!   them (production: pinned by digest).
//!
//! The overlays: default-deny NetworkPolicies with exactly the calls the services make (their
//! `*_URL` variables), their PostgreSQL and Redis; HPAs only for the services that can run as
//! replicas, with PDBs and topology spread; the Ingress's body size and timeouts against the
//! gateway's defaults, and no public route to `/metrics`; CloudNativePG roles, databases and
//! `max_connections` against the pools; the example Redis ACL against `scripts/lib/redis.sh`.
//!
//! Needs `kubectl` (with its built-in kustomize): `scripts/ensure-deps.sh` installs it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use base64::Engine as _;
use serde::Deserialize;
use serde_yaml::Value;

/// The services and their ports (docs/contracts.md).
const SERVICES: [(&str, u16); 6] = [
    ("gateway", 8080),
    ("identity", 8081),
    ("consent", 8082),
    ("records", 8083),
    ("ledger", 8084),
    ("anomaly", 8085),
];

/// Variables a service reads without the name appearing as a literal in our code: the key is
/// the variable, the value a token in the service's sources that proves the read.
/// `RUST_LOG` is read by tracing-subscriber's `EnvFilter::try_from_default_env()`, which
/// `custodian-telemetry`'s logging setup calls.
const INDIRECT_READS: [(&str, &str); 1] = [("RUST_LOG", "from_default_env")];

const PLACEHOLDER: &str = "CHANGE_ME";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

/// What is rendered and checked: the base and both overlays.
const TARGETS: [&str; 3] = ["k8s/base", "k8s/overlays/dev", "k8s/overlays/production"];
const OVERLAYS: [&str; 2] = ["k8s/overlays/dev", "k8s/overlays/production"];
const PRODUCTION: &str = "k8s/overlays/production";

thread_local! {
    /// The target the helpers below (`of_kind`, `find`, `containers`) read: set by
    /// [`each_target`] for the check it runs.
    static TARGET: std::cell::Cell<&'static str> = const { std::cell::Cell::new("k8s/base") };
}

fn render(target: &str) -> Vec<Value> {
    let output = match Command::new("kubectl").args(["kustomize", target]).current_dir(root()).output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "kubectl is not installed, so {target} cannot be rendered (`kubectl kustomize {target}`).\n\
             Run scripts/ensure-deps.sh: it installs kubectl (Debian's kubernetes-client) when missing."
        ),
        Err(e) => panic!("could not run `kubectl kustomize {target}`: {e}"),
    };
    assert!(
        output.status.success(),
        "`kubectl kustomize {target}` failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("kustomize output is UTF-8");
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("kustomize output parses as YAML"))
        .filter(|doc| !doc.is_null())
        .collect();
    assert!(
        !docs.is_empty(),
        "`kubectl kustomize {target}` rendered nothing"
    );
    docs
}

/// The rendered objects of the current target (rendered once per test binary).
fn rendered() -> &'static Vec<Value> {
    static DOCS: OnceLock<BTreeMap<&'static str, Vec<Value>>> = OnceLock::new();
    let all = DOCS.get_or_init(|| TARGETS.iter().map(|t| (*t, render(t))).collect());
    let target = TARGET.with(std::cell::Cell::get);
    all.get(target)
        .unwrap_or_else(|| panic!("{target} is not one of {TARGETS:?}"))
}

/// Runs `check` for each target (the helpers read that target) and fails with every target's
/// problems at once.
fn each_target(title: &str, targets: &[&'static str], check: impl Fn(&'static str) -> Vec<String>) {
    let mut problems = Vec::new();
    for target in targets {
        TARGET.with(|t| t.set(target));
        problems.extend(check(target).into_iter().map(|p| format!("[{target}] {p}")));
    }
    fail(title, &problems);
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

fn of_kind(kind_: &str) -> Vec<&'static Value> {
    rendered().iter().filter(|d| kind(d) == kind_).collect()
}

fn seq(value: &Value) -> &[Value] {
    value.as_sequence().map(Vec::as_slice).unwrap_or_default()
}

fn str_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// Keys and (decoded) values of a ConfigMap or Secret.
fn entries(doc: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let secret = kind(doc) == "Secret";
    if let Some(map) = doc["data"].as_mapping() {
        for (k, v) in map {
            let raw = str_of(v);
            let value = if secret {
                let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
                match base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) {
                    Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    Err(e) => panic!(
                        "Secret {} key {}: data is not base64: {e}",
                        name(doc),
                        str_of(k)
                    ),
                }
            } else {
                raw
            };
            out.insert(str_of(k), value);
        }
    }
    for field in ["stringData", "binaryData"] {
        if let Some(map) = doc[field].as_mapping() {
            for (k, v) in map {
                out.insert(str_of(k), str_of(v));
            }
        }
    }
    out
}

fn find(kind_: &str, name_: &str) -> Option<&'static Value> {
    rendered()
        .iter()
        .find(|d| kind(d) == kind_ && name(d) == name_)
}

/// (deployment, container, service) for every container of every Deployment.
fn containers() -> Vec<(&'static Value, &'static Value, String)> {
    let mut out = Vec::new();
    for deployment in of_kind("Deployment") {
        for container in seq(&deployment["spec"]["template"]["spec"]["containers"]) {
            let container_name = container["name"].as_str().unwrap_or_default();
            let service = if is_service(container_name) {
                container_name
            } else {
                name(deployment)
            };
            out.push((deployment, container, service.to_string()));
        }
    }
    out
}

fn is_service(candidate: &str) -> bool {
    SERVICES.iter().any(|(s, _)| *s == candidate)
}

fn fail(title: &str, problems: &[String]) {
    if !problems.is_empty() {
        panic!(
            "{title}: {} problem(s) in the rendered manifests:\n  - {}\n",
            problems.len(),
            problems.join("\n  - ")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------------------------

/// The crate names in the `[dependencies]` table of a Cargo.toml (not dev or build ones).
fn dependencies(manifest: &Path) -> Vec<String> {
    let text =
        fs::read_to_string(manifest).unwrap_or_else(|e| panic!("read {}: {e}", manifest.display()));
    let mut in_deps = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if !in_deps || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line
            .split(['=', '.', ' '])
            .next()
            .unwrap_or_default()
            .trim()
            .trim_matches('"');
        if !key.is_empty() {
            out.push(key.to_string());
        }
    }
    out
}

/// Shared crates by package name -> their directory.
fn shared_crates() -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(root().join("shared"))
        .expect("read shared/")
        .flatten()
    {
        let manifest = entry.path().join("Cargo.toml");
        let Ok(text) = fs::read_to_string(&manifest) else {
            continue;
        };
        if let Some(package) = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("name") && l.contains('='))
            .and_then(|l| l.split('"').nth(1))
        {
            out.insert(package.to_string(), entry.path());
        }
    }
    out
}

fn rust_sources(dir: &Path, out: &mut String) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&fs::read_to_string(&path).unwrap_or_default());
            out.push('\n');
        }
    }
}

/// The service's own sources plus those of every shared crate it depends on (transitively),
/// and the list of the directories read.
fn service_sources(service: &str) -> (String, Vec<String>, BTreeSet<String>) {
    let shared = shared_crates();
    let service_dir = root().join("services").join(service);
    let mut text = String::new();
    let mut read = vec![format!("services/{service}/src")];
    rust_sources(&service_dir.join("src"), &mut text);
    let mut seen = BTreeSet::new();
    let mut queue = dependencies(&service_dir.join("Cargo.toml"));
    while let Some(dep) = queue.pop() {
        let Some(dir) = shared.get(&dep) else {
            continue;
        };
        if !seen.insert(dep.clone()) {
            continue;
        }
        rust_sources(&dir.join("src"), &mut text);
        read.push(format!(
            "shared/{}/src",
            dir.file_name().unwrap_or_default().to_string_lossy()
        ));
        queue.extend(dependencies(&dir.join("Cargo.toml")));
    }
    (text, read, seen)
}

// ---------------------------------------------------------------------------------------------
// (a) every variable set is read
// ---------------------------------------------------------------------------------------------

#[test]
fn every_env_var_is_read_by_its_service() {
    each_target("environment variables nobody reads", &TARGETS, |target| {
        let _ = target;
        let mut problems = Vec::new();
        let all = containers();
        assert!(
            !all.is_empty(),
            "{target} renders no Deployment with containers"
        );
        let deployed: BTreeSet<String> = all.iter().map(|(_, _, s)| s.clone()).collect();
        for (service, _) in SERVICES {
            if !deployed.contains(service) {
                problems.push(format!("no Deployment/container for service {service}"));
            }
        }
        for (deployment, container, service) in &all {
            let where_ = format!(
                "Deployment {} container {}",
                name(deployment),
                container["name"].as_str().unwrap_or("?")
            );
            if !is_service(service) {
                problems.push(format!("{where_}: neither the container nor the Deployment is named after a service (services/<name>)"));
                continue;
            }
            let mut names: Vec<(String, String)> = Vec::new(); // (variable, where it comes from)
            for env in seq(&container["env"]) {
                let var = env["name"].as_str().unwrap_or_default().to_string();
                for (ref_kind, ref_field) in
                    [("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")]
                {
                    let reference = &env["valueFrom"][ref_field];
                    if reference.is_mapping() {
                        let ref_name = reference["name"].as_str().unwrap_or_default();
                        let key = reference["key"].as_str().unwrap_or_default();
                        match find(ref_kind, ref_name) {
                        None => problems.push(format!("{where_}: {var} refers to {ref_kind} {ref_name:?}, which {target} does not render")),
                        Some(doc) if !entries(doc).contains_key(key) => {
                            problems.push(format!("{where_}: {var} refers to key {key:?} missing from {ref_kind} {ref_name}"))
                        }
                        Some(_) => {}
                    }
                    }
                }
                names.push((var, "env".into()));
            }
            for from in seq(&container["envFrom"]) {
                let prefix = from["prefix"].as_str().unwrap_or_default();
                for (ref_kind, ref_field) in
                    [("ConfigMap", "configMapRef"), ("Secret", "secretRef")]
                {
                    let Some(ref_name) = from[ref_field]["name"].as_str() else {
                        continue;
                    };
                    match find(ref_kind, ref_name) {
                        None => problems.push(format!(
                            "{where_}: envFrom {ref_kind} {ref_name:?} is not rendered by {target}"
                        )),
                        Some(doc) => {
                            for key in entries(doc).keys() {
                                names.push((
                                    format!("{prefix}{key}"),
                                    format!("envFrom {ref_kind} {ref_name}"),
                                ));
                            }
                        }
                    }
                }
            }
            let (sources, read, _) = service_sources(service);
            for (var, origin) in names {
                let literal = format!("\"{var}\"");
                let indirect = INDIRECT_READS
                    .iter()
                    .any(|(v, token)| *v == var && sources.contains(token));
                if !sources.contains(&literal) && !indirect {
                    problems.push(format!(
                    "{where_}: sets {var} ({origin}) but service {service} never reads it: no string literal {literal} in {}",
                    read.join(", ")
                ));
                }
            }
        }
        problems
    });
}

// ---------------------------------------------------------------------------------------------
// (b) ports
// ---------------------------------------------------------------------------------------------

fn literal_env<'a>(container: &'a Value, var: &str) -> Option<&'a Value> {
    seq(&container["env"])
        .iter()
        .find(|e| e["name"].as_str() == Some(var))
}

/// A probe's or Service's port (number or port name) resolved against a container's ports.
fn resolve_port(port: &Value, container: &Value) -> Option<u64> {
    match port {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => match s.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => seq(&container["ports"])
                .iter()
                .find(|p| p["name"].as_str() == Some(s.as_str()))
                .and_then(|p| p["containerPort"].as_u64()),
        },
        _ => None,
    }
}

const PROBES: [(&str, &str); 3] = [
    ("startupProbe", "/healthz"),
    ("livenessProbe", "/healthz"),
    ("readinessProbe", "/readyz"),
];

#[test]
fn container_ports_match_port_env_and_probes() {
    each_target("ports", &TARGETS, |target| {
        let _ = target;
        let mut problems = Vec::new();
        for (deployment, container, service) in containers() {
            let where_ = format!(
                "Deployment {} container {}",
                name(deployment),
                container["name"].as_str().unwrap_or("?")
            );
            let port = match literal_env(container, "PORT") {
                None => {
                    problems.push(format!("{where_}: no PORT env (set it explicitly)"));
                    continue;
                }
                Some(env) => match env["value"].as_str().and_then(|v| v.parse::<u64>().ok()) {
                    Some(p) => p,
                    None => {
                        problems.push(format!(
                            "{where_}: PORT must be a literal number, got {:?}",
                            str_of(env)
                        ));
                        continue;
                    }
                },
            };
            if let Some((_, expected)) = SERVICES.iter().find(|(s, _)| *s == service) {
                if port != u64::from(*expected) {
                    problems.push(format!(
                        "{where_}: PORT {port}, docs/contracts.md gives {service} port {expected}"
                    ));
                }
            }
            match literal_env(container, "HOST").and_then(|e| e["value"].as_str()) {
                Some("0.0.0.0") => {}
                other => problems.push(format!(
                    "{where_}: HOST must be \"0.0.0.0\" in a container, got {other:?}"
                )),
            }
            let ports = seq(&container["ports"]);
            if ports.is_empty() {
                problems.push(format!("{where_}: no containerPort"));
            }
            for p in ports {
                let cp = p["containerPort"].as_u64();
                if cp != Some(port) {
                    problems.push(format!(
                        "{where_}: containerPort {cp:?} differs from PORT {port}"
                    ));
                }
            }
            for (probe, _) in PROBES {
                let get = &container[probe]["httpGet"];
                if !get.is_mapping() {
                    continue;
                }
                match resolve_port(&get["port"], container) {
                    Some(p) if p == port => {}
                    other => problems.push(format!(
                        "{where_}: {probe} port {:?} resolves to {other:?}, PORT is {port}",
                        str_of(&get["port"])
                    )),
                }
            }
        }
        problems
    });
}

// ---------------------------------------------------------------------------------------------
// (c) probes
// ---------------------------------------------------------------------------------------------

#[test]
fn probes_use_the_health_endpoints_every_service_serves() {
    each_target("probes", &TARGETS, |target| {
        let _ = target;
        let mut problems = Vec::new();
        let health = root().join("shared/telemetry/src/health.rs");
        let text = fs::read_to_string(&health).unwrap_or_default();
        for path in ["/healthz", "/readyz"] {
            if !text.contains(&format!("\"{path}\"")) {
                problems.push(format!(
                    "{} does not serve \"{path}\" (no such literal)",
                    health.display()
                ));
            }
        }
        for (deployment, container, service) in containers() {
            let where_ = format!(
                "Deployment {} container {}",
                name(deployment),
                container["name"].as_str().unwrap_or("?")
            );
            if is_service(&service) {
                let (_, _, shared) = service_sources(&service);
                if !shared.contains("custodian-telemetry") {
                    problems.push(format!("{where_}: service {service} does not depend on custodian-telemetry, which serves /healthz and /readyz"));
                }
            }
            for (probe, expected) in PROBES {
                let p = &container[probe];
                if p.is_null() {
                    if probe != "startupProbe" {
                        problems.push(format!("{where_}: no {probe}"));
                    }
                    continue;
                }
                let path = p["httpGet"]["path"].as_str();
                if path != Some(expected) {
                    problems.push(format!(
                        "{where_}: {probe} must be httpGet {expected}, got {path:?}"
                    ));
                }
            }
        }
        problems
    });
}

// ---------------------------------------------------------------------------------------------
// (d) Services
// ---------------------------------------------------------------------------------------------

#[test]
fn services_target_a_container_port_of_their_deployment() {
    each_target("Services", &TARGETS, |target| {
        let _ = target;
        let mut problems = Vec::new();
        // Redis is a StatefulSet (k8s/components/datastores).
        let deployments: Vec<&Value> = of_kind("Deployment")
            .into_iter()
            .chain(of_kind("StatefulSet"))
            .collect();
        for svc in of_kind("Service") {
            let where_ = format!("Service {}", name(svc));
            let Some(selector) = svc["spec"]["selector"]
                .as_mapping()
                .filter(|m| !m.is_empty())
            else {
                problems.push(format!("{where_}: no selector"));
                continue;
            };
            let selected: Vec<&Value> = deployments
                .iter()
                .copied()
                .filter(|d| {
                    let labels = &d["spec"]["template"]["metadata"]["labels"];
                    selector
                        .iter()
                        .all(|(k, v)| labels[str_of(k).as_str()] == *v)
                })
                .collect();
            if selected.is_empty() {
                problems.push(format!(
                    "{where_}: selector {} matches no Deployment's or StatefulSet's pod labels",
                    serde_yaml::to_string(selector)
                        .unwrap_or_default()
                        .trim()
                        .replace('\n', ", ")
                ));
                continue;
            }
            match svc["spec"]["type"].as_str() {
            None | Some("ClusterIP") => {}
            Some(other) => problems.push(format!("{where_}: type {other}; base Services are ClusterIP (expose the gateway with an Ingress)")),
        }
            let ports = seq(&svc["spec"]["ports"]);
            if ports.is_empty() {
                problems.push(format!("{where_}: no ports"));
            }
            for port in ports {
                let target = if port["targetPort"].is_null() {
                    &port["port"]
                } else {
                    &port["targetPort"]
                };
                for deployment in &selected {
                    let containers = seq(&deployment["spec"]["template"]["spec"]["containers"]);
                    let ok = containers.iter().any(|c| {
                        resolve_port(target, c).is_some_and(|p| {
                            seq(&c["ports"])
                                .iter()
                                .any(|cp| cp["containerPort"].as_u64() == Some(p))
                        })
                    });
                    if !ok {
                        problems.push(format!(
                            "{where_}: targetPort {} is not a containerPort of {} {}",
                            str_of(target),
                            kind(deployment),
                            name(deployment)
                        ));
                    }
                }
            }
        }
        problems
    });
}

// ---------------------------------------------------------------------------------------------
// (e) no real secret
// ---------------------------------------------------------------------------------------------

/// Why a value looks like a real secret, if it does.
fn looks_secret(value: &str) -> Option<String> {
    if value.contains("-----BEGIN") {
        return Some("contains a PEM block".into());
    }
    // user:password@ in a URL, unless the password is the placeholder.
    if let Some(after_scheme) = value.split("://").nth(1) {
        let authority = after_scheme.split('/').next().unwrap_or_default();
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if let Some((_, password)) = userinfo.split_once(':') {
                if !password.contains(PLACEHOLDER) {
                    return Some("a URL with an embedded password".into());
                }
            }
        }
    }
    // A long run of key-like characters with letters and digits: a key, a token, a hash.
    let mut run = String::new();
    for c in value.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || "+/=_-".contains(c) {
            run.push(c);
            continue;
        }
        if run.len() >= 32
            && run.chars().any(|c| c.is_ascii_digit())
            && run.chars().any(|c| c.is_ascii_alphabetic())
            && !run.contains(PLACEHOLDER)
        {
            return Some(format!("a {}-character key-like string", run.len()));
        }
        run.clear();
    }
    None
}

#[test]
fn rendered_manifests_hold_no_real_secret() {
    each_target("secrets", &TARGETS, |target| {
        let mut problems = Vec::new();
        let secrets = of_kind("Secret");
        let overlay = OVERLAYS.contains(&target);
        // The overlays ship no Secret at all: the secret store supplies them (the base's
        // placeholders are deleted by k8s/components/hardening).
        if overlay {
            for secret in &secrets {
                problems.push(format!(
                    "Secret {} is rendered; an overlay takes every Secret from the secret store",
                    name(secret)
                ));
            }
        }
        if secrets.is_empty() && !overlay {
            problems.push(
                "no Secret rendered (expected custodian-secrets from the secretGenerator)".into(),
            );
        }
        for secret in secrets {
            for (key, value) in entries(secret) {
                if !value.contains(PLACEHOLDER) {
                    problems.push(format!(
                    "Secret {} key {key}: value is not a placeholder (must contain {PLACEHOLDER}); real secrets go in an overlay or `kubectl create secret`, never in the repository",
                    name(secret)
                ));
                }
                if let Some(why) = looks_secret(&value) {
                    problems.push(format!(
                        "Secret {} key {key}: looks like a real secret: {why}",
                        name(secret)
                    ));
                }
            }
        }
        let secret_key = |k: &str| {
            [
                "PASSWORD",
                "SECRET",
                "PRIVATE",
                "CREDENTIAL",
                "ENCRYPTION_KEY",
                "API_KEY",
            ]
            .iter()
            .any(|w| k.to_ascii_uppercase().contains(w))
        };
        for map in of_kind("ConfigMap") {
            for (key, value) in entries(map) {
                if secret_key(&key) {
                    problems.push(format!("ConfigMap {} key {key}: secret-like key; it belongs in the Secret custodian-secrets", name(map)));
                }
                if let Some(why) = looks_secret(&value) {
                    problems.push(format!(
                        "ConfigMap {} key {key}: value looks like a secret ({why})",
                        name(map)
                    ));
                }
            }
        }
        // Literal env values must not carry secrets either; in the overlays no secret is an
        // environment variable at all (files only: *_FILE).
        for (deployment, container, _) in containers() {
            for env in seq(&container["env"]) {
                let var = env["name"].as_str().unwrap_or_default();
                if overlay && env["valueFrom"]["secretKeyRef"].is_mapping() {
                    problems.push(format!(
                    "Deployment {} sets {var} from a Secret; overlays mount secrets as files (<NAME>_FILE)",
                    name(deployment)
                ));
                }
                if let Some(value) = env["value"].as_str() {
                    // A path to a mounted secret (`*_FILE`) is not a secret.
                    if secret_key(var) && !var.ends_with("_FILE") {
                        problems.push(format!(
                            "Deployment {} sets {var} as a literal; use secretKeyRef",
                            name(deployment)
                        ));
                    }
                    if let Some(why) = looks_secret(value) {
                        problems.push(format!(
                            "Deployment {} env {var}: literal value looks like a secret ({why})",
                            name(deployment)
                        ));
                    }
                }
            }
        }
        problems
    });
}

#[test]
fn secret_detector_flags_realistic_values() {
    assert!(looks_secret("postgres://app:s3cr3t@db:5432/x").is_some());
    assert!(looks_secret("postgres://app:CHANGE_ME@db:5432/x").is_none());
    assert!(looks_secret(&"ab12".repeat(16)).is_some());
    assert!(looks_secret("-----BEGIN PRIVATE KEY-----").is_some());
    assert!(looks_secret("http://identity:8081/.well-known/jwks.json").is_none());
    assert!(looks_secret("CHANGE_ME_64_HEX_CHARS").is_none());
}

// ---------------------------------------------------------------------------------------------
// Pod hardening and the ledger's single writer
// ---------------------------------------------------------------------------------------------

#[test]
fn pods_are_locked_down_and_ledger_is_a_single_writer() {
    each_target("pod hardening", &TARGETS, |target| {
        let mut problems = Vec::new();
        for deployment in of_kind("Deployment")
            .into_iter()
            .chain(of_kind("StatefulSet"))
        {
            let pod = &deployment["spec"]["template"]["spec"];
            let d = name(deployment);
            if pod["securityContext"]["runAsNonRoot"].as_bool() != Some(true) {
                problems.push(format!(
                    "Deployment {d}: pod securityContext.runAsNonRoot must be true"
                ));
            }
            if pod["securityContext"]["runAsUser"].as_u64() != Some(10001) {
                problems.push(format!(
                    "Deployment {d}: pod runAsUser must be 10001 (the image's user)"
                ));
            }
            for c in seq(&pod["containers"]) {
                let sc = &c["securityContext"];
                let cn = c["name"].as_str().unwrap_or("?");
                if sc["allowPrivilegeEscalation"].as_bool() != Some(false) {
                    problems.push(format!(
                        "Deployment {d} container {cn}: allowPrivilegeEscalation must be false"
                    ));
                }
                if sc["readOnlyRootFilesystem"].as_bool() != Some(true) {
                    problems.push(format!(
                        "Deployment {d} container {cn}: readOnlyRootFilesystem must be true"
                    ));
                }
                if !seq(&sc["capabilities"]["drop"])
                    .iter()
                    .any(|v| v.as_str() == Some("ALL"))
                {
                    problems.push(format!(
                        "Deployment {d} container {cn}: capabilities must drop ALL"
                    ));
                }
                if c["resources"]["requests"].is_null() || c["resources"]["limits"].is_null() {
                    problems.push(format!(
                        "Deployment {d} container {cn}: resources.requests and limits are required"
                    ));
                }
                let image = c["image"].as_str().unwrap_or_default();
                if let Err(why) =
                    image_as_expected(target, if is_service(cn) { cn } else { d }, image)
                {
                    problems.push(format!(
                        "{} {d} container {cn}: image {image:?}: {why}",
                        kind(deployment)
                    ));
                }
            }
        }
        match find("Deployment", "ledger") {
            None => problems.push("no Deployment ledger".into()),
            Some(ledger) => {
                if ledger["spec"]["replicas"].as_u64() != Some(1) {
                    problems.push(
                        "Deployment ledger: replicas must be 1 (single writer of the Merkle log)"
                            .into(),
                    );
                }
                if ledger["spec"]["strategy"]["type"].as_str() != Some("Recreate") {
                    problems.push("Deployment ledger: strategy must be Recreate (no second writer during a rollout)".into());
                }
            }
        }
        problems
    });
}

/// The image each target runs: the base `custodian/<service>:<tag>`, dev the tag `dev`,
/// production a registry's image pinned by a sha256 digest (tags move, digests do not).
fn image_as_expected(target: &str, workload: &str, image: &str) -> Result<(), String> {
    let ours = is_service(workload);
    match target {
        PRODUCTION => {
            let Some((_, digest)) = image.split_once("@sha256:") else {
                return Err(
                    "production images are pinned by digest (`<image>@sha256:<64 hex>`)".into(),
                );
            };
            if digest.len() != 64
                || !digest
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            {
                return Err(format!("digest {digest:?} is not 64 lowercase hex digits"));
            }
            if ours && !image.ends_with(&format!("/custodian/{workload}@sha256:{digest}")) {
                return Err(format!(
                    "expected <registry>/custodian/{workload}@sha256:<digest>"
                ));
            }
            Ok(())
        }
        "k8s/overlays/dev" if ours => match image.strip_prefix(&format!("custodian/{workload}:")) {
            Some("dev") => Ok(()),
            _ => Err(format!("expected custodian/{workload}:dev")),
        },
        _ if ours => match image.strip_prefix(&format!("custodian/{workload}:")) {
            Some(tag) if !tag.is_empty() => Ok(()),
            _ => Err(format!("expected custodian/{workload}:<tag>")),
        },
        // Redis: an image with a tag outside production.
        _ => match image.rsplit_once(':') {
            Some((_, tag)) if !tag.is_empty() && !tag.contains('/') => Ok(()),
            _ => Err("expected an image with a tag".into()),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Overlays: scaling, NetworkPolicies, Ingress, PostgreSQL sizing, Redis ACL
// ---------------------------------------------------------------------------------------------

/// Services that may run several replicas (k8s/overlays/production/hpa.yaml says why), and
/// those that must not: the ledger is the single writer of its log, anomaly keeps each user's
/// window in memory.
const SCALABLE: [&str; 4] = ["gateway", "identity", "consent", "records"];
const SINGLE: [&str; 2] = ["ledger", "anomaly"];

fn int(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector["matchLabels"]
        .as_mapping()
        .is_none_or(|m| m.iter().all(|(k, v)| labels[str_of(k).as_str()] == *v))
        && seq(&selector["matchExpressions"]).iter().all(|e| {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = seq(&e["values"]).iter().filter_map(Value::as_str).collect();
            let label = labels[key].as_str();
            match e["operator"].as_str() {
                Some("In") => label.is_some_and(|l| values.contains(&l)),
                Some("NotIn") => label.is_none_or(|l| !values.contains(&l)),
                Some("Exists") => label.is_some(),
                Some("DoesNotExist") => label.is_none(),
                _ => false,
            }
        })
}

#[test]
fn production_scales_only_what_can_run_as_replicas() {
    each_target("scaling", &[PRODUCTION], |_| {
        let mut problems = Vec::new();
        let hpas = of_kind("HorizontalPodAutoscaler");
        let pdbs = of_kind("PodDisruptionBudget");
        for service in SCALABLE {
            let hpa = hpas
                .iter()
                .find(|h| h["spec"]["scaleTargetRef"]["name"].as_str() == Some(service));
            match hpa {
                None => problems.push(format!("no HorizontalPodAutoscaler for {service}")),
                Some(h) if int(&h["spec"]["minReplicas"]).unwrap_or(1) < 2 => {
                    problems.push(format!("HPA {service}: minReplicas below 2"))
                }
                Some(_) => {}
            }
            let Some(deployment) = find("Deployment", service) else {
                problems.push(format!("no Deployment {service}"));
                continue;
            };
            if !deployment["spec"]["replicas"].is_null() {
                problems.push(format!("Deployment {service}: sets replicas, which its HPA owns (an apply would reset the HPA's count)"));
            }
            let labels = &deployment["spec"]["template"]["metadata"]["labels"];
            if !pdbs
                .iter()
                .any(|p| labels_match(&p["spec"]["selector"], labels))
            {
                problems.push(format!("no PodDisruptionBudget selects {service}'s pods"));
            }
            if seq(&deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]).is_empty()
            {
                problems.push(format!(
                    "Deployment {service}: no topologySpreadConstraints"
                ));
            }
        }
        for service in SINGLE {
            for h in &hpas {
                if h["spec"]["scaleTargetRef"]["name"].as_str() == Some(service) {
                    problems.push(format!(
                        "HPA {} scales {service}, which must run one replica",
                        name(h)
                    ));
                }
            }
            match find("Deployment", service) {
                Some(d)
                    if int(&d["spec"]["replicas"]) == Some(1)
                        && d["spec"]["strategy"]["type"].as_str() == Some("Recreate") => {}
                _ => problems.push(format!(
                    "Deployment {service}: must be 1 replica with strategy Recreate"
                )),
            }
        }
        problems
    });
}

/// The service a `*_URL` variable points at.
fn callee_of(config_key: &str) -> Option<&'static str> {
    match config_key {
        "JWKS_URL" | "IDENTITY_URL" => Some("identity"),
        "CONSENT_URL" => Some("consent"),
        "RECORDS_URL" => Some("records"),
        "LEDGER_URL" => Some("ledger"),
        "ANOMALY_URL" => Some("anomaly"),
        _ => None,
    }
}

/// Does a NetworkPolicy peer list (`to` or `from`) name pods with these labels (same namespace)?
fn peers_select(peers: &Value, labels: &[(&str, &str)]) -> bool {
    seq(peers).iter().any(|peer| {
        peer["namespaceSelector"].is_null()
            && peer["ipBlock"].is_null()
            && peer["podSelector"]["matchLabels"]
                .as_mapping()
                .is_some_and(|m| {
                    !m.is_empty()
                        && m.iter().all(|(k, v)| {
                            labels
                                .iter()
                                .any(|(lk, lv)| str_of(k) == *lk && v.as_str() == Some(lv))
                        })
                })
    })
}

fn rule_allows(rule: &Value, peers_field: &str, labels: &[(&str, &str)], port: u64) -> bool {
    peers_select(&rule[peers_field], labels)
        && seq(&rule["ports"])
            .iter()
            .any(|p| int(&p["port"]) == Some(port))
}

/// Policies whose podSelector selects these pod labels.
fn policies_for(labels: &Value) -> Vec<&'static Value> {
    of_kind("NetworkPolicy")
        .into_iter()
        .filter(|p| labels_match(&p["spec"]["podSelector"], labels))
        .collect()
}

#[test]
fn network_policies_deny_by_default_and_allow_what_the_code_calls() {
    each_target("NetworkPolicies", &OVERLAYS, |_| {
        let mut problems = Vec::new();
        let deny = of_kind("NetworkPolicy").into_iter().any(|p| {
            let spec = &p["spec"];
            spec["podSelector"]
                .as_mapping()
                .is_some_and(|m| m.is_empty())
                && seq(&spec["policyTypes"]).len() == 2
                && seq(&spec["ingress"]).is_empty()
                && seq(&spec["egress"]).is_empty()
        });
        if !deny {
            problems.push("no default-deny NetworkPolicy (podSelector {}, policyTypes Ingress and Egress, no rule)".into());
        }
        for (deployment, container, service) in containers() {
            // Whom it calls: the services whose URL it is given.
            let callees: BTreeSet<&str> = seq(&container["env"])
                .iter()
                .filter_map(|e| e["valueFrom"]["configMapKeyRef"]["key"].as_str())
                .filter_map(callee_of)
                .collect();
            let labels = &deployment["spec"]["template"]["metadata"]["labels"];
            let mine = policies_for(labels);
            let egress: Vec<&Value> = mine
                .iter()
                .flat_map(|p| seq(&p["spec"]["egress"]))
                .collect();
            for (other, port) in SERVICES {
                let port = u64::from(port);
                let allowed = egress
                    .iter()
                    .any(|r| rule_allows(r, "to", &[("app.kubernetes.io/name", other)], port));
                let calls = callees.contains(other);
                if calls && !allowed {
                    problems.push(format!("{service} calls {other} (its *_URL) but no egress rule lets it reach {other}:{port}"));
                }
                if !calls && allowed {
                    problems.push(format!(
                        "{service} may reach {other}:{port} but never calls it"
                    ));
                }
                if calls {
                    let theirs = find("Deployment", other)
                        .map(|d| policies_for(&d["spec"]["template"]["metadata"]["labels"]))
                        .unwrap_or_default();
                    let admitted =
                        theirs
                            .iter()
                            .flat_map(|p| seq(&p["spec"]["ingress"]))
                            .any(|r| {
                                rule_allows(
                                    r,
                                    "from",
                                    &[("app.kubernetes.io/name", service.as_str())],
                                    port,
                                )
                            });
                    if !admitted {
                        problems.push(format!(
                            "{other} accepts no connection from {service}, which calls it"
                        ));
                    }
                }
            }
            let reads_db = seq(&container["env"])
                .iter()
                .any(|e| e["name"].as_str() == Some("DATABASE_URL_FILE"));
            let db = egress
                .iter()
                .any(|r| rule_allows(r, "to", &[("cnpg.io/cluster", "custodian-pg")], 5432));
            if reads_db != db {
                problems.push(format!(
                    "{service}: has a database: {reads_db}, may reach PostgreSQL: {db}"
                ));
            }
            if !egress
                .iter()
                .any(|r| rule_allows(r, "to", &[("app.kubernetes.io/name", "redis")], 6379))
            {
                problems.push(format!("{service}: no egress to Redis"));
            }
        }
        problems
    });
}

/// The number an `env.parse("NAME", <default>)` call of the gateway's configuration gives,
/// products of integer literals evaluated (`16 * 1024 * 1024`).
fn gateway_default(var: &str) -> u64 {
    let path = root().join("services/gateway/src/configuration.rs");
    let text = fs::read_to_string(&path).unwrap_or_default();
    let needle = format!("env.parse(\"{var}\", ");
    let start = text
        .find(&needle)
        .unwrap_or_else(|| panic!("{} no longer reads {var} with env.parse", path.display()))
        + needle.len();
    let expr = &text[start..start + text[start..].find(')').unwrap_or(0)];
    expr.split('*')
        .map(|n| {
            n.trim()
                .replace('_', "")
                .parse::<u64>()
                .unwrap_or_else(|e| panic!("default of {var}: {expr:?}: {e}"))
        })
        .product()
}

/// nginx sizes (`16m`) in bytes.
fn nginx_size(value: &str) -> Option<u64> {
    let value = value.trim().to_ascii_lowercase();
    let (digits, unit) = match value.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => value.split_at(i),
        None => (value.as_str(), ""),
    };
    let n: u64 = digits.parse().ok()?;
    match unit {
        "" => Some(n),
        "k" => Some(n << 10),
        "m" => Some(n << 20),
        "g" => Some(n << 30),
        _ => None,
    }
}

#[test]
fn ingress_matches_the_gateway_and_keeps_metrics_private() {
    each_target("Ingress", &[PRODUCTION], |_| {
        let mut problems = Vec::new();
        let ingresses = of_kind("Ingress");
        if ingresses.is_empty() {
            problems.push("no Ingress".into());
        }
        let max_body = gateway_default("GATEWAY_MAX_BODY_BYTES");
        let timeout_s = gateway_default("UPSTREAM_TIMEOUT_MS").div_ceil(1000);
        for ing in ingresses {
            let n = name(ing);
            let ann = &ing["metadata"]["annotations"];
            let a = |k: &str| ann[format!("nginx.ingress.kubernetes.io/{k}").as_str()].as_str();
            match a("proxy-body-size").and_then(nginx_size) {
                Some(size) if size == max_body => {}
                other => problems.push(format!("Ingress {n}: proxy-body-size {other:?} bytes, the gateway accepts {max_body} (GATEWAY_MAX_BODY_BYTES)")),
            }
            for k in ["proxy-read-timeout", "proxy-send-timeout"] {
                match a(k).and_then(|v| v.parse::<u64>().ok()) {
                    Some(t) if t > timeout_s => {}
                    other => problems.push(format!("Ingress {n}: {k} {other:?} s must exceed the gateway's UPSTREAM_TIMEOUT_MS ({timeout_s} s), so its own 504 reaches the client")),
                }
            }
            if ann["cert-manager.io/cluster-issuer"].is_null()
                && ann["cert-manager.io/issuer"].is_null()
            {
                problems.push(format!("Ingress {n}: no cert-manager issuer annotation"));
            }
            if seq(&ing["spec"]["tls"]).is_empty() {
                problems.push(format!("Ingress {n}: no tls"));
            }
            for rule in seq(&ing["spec"]["rules"]) {
                for path in seq(&rule["http"]["paths"]) {
                    let p = path["path"].as_str().unwrap_or("/");
                    let prefix = path["pathType"].as_str() != Some("Exact");
                    // A path routes /metrics (or /internal/*, /healthz, /readyz) when it is one
                    // of them or a prefix of them.
                    for private in ["/metrics", "/internal/memberships", "/healthz", "/readyz"] {
                        let routes = p == private
                            || (prefix
                                && (p == "/"
                                    || private
                                        .starts_with(&format!("{}/", p.trim_end_matches('/')))));
                        if routes {
                            problems.push(format!(
                                "Ingress {n}: path {p:?} routes {private} to the public"
                            ));
                        }
                    }
                }
            }
        }
        problems
    });
}

#[test]
fn postgres_roles_and_connections_fit_the_pools() {
    each_target("PostgreSQL", &OVERLAYS, |_| {
        let mut problems = Vec::new();
        let clusters: Vec<&Value> = of_kind("Cluster");
        let [cluster] = clusters.as_slice() else {
            return vec![format!(
                "expected one CloudNativePG Cluster, found {}",
                clusters.len()
            )];
        };
        let spec = &cluster["spec"];
        let max_connections =
            int(&spec["postgresql"]["parameters"]["max_connections"]).unwrap_or(100);
        let roles = seq(&spec["managed"]["roles"]);
        let config = find("ConfigMap", "custodian-config")
            .map(entries)
            .unwrap_or_default();
        let hpas = of_kind("HorizontalPodAutoscaler");
        let mut limits = 0;
        for service in ["identity", "consent", "records", "ledger", "anomaly"] {
            let role_name = format!("custodian_{service}");
            let Some(role) = roles
                .iter()
                .find(|r| r["name"].as_str() == Some(role_name.as_str()))
            else {
                problems.push(format!("no managed role {role_name}"));
                continue;
            };
            for flag in ["superuser", "createdb", "createrole", "replication"] {
                if role[flag].as_bool() != Some(false) {
                    problems.push(format!("role {role_name}: {flag} must be false"));
                }
            }
            if role["passwordSecret"]["name"].as_str() != Some(&format!("custodian-pg-{service}")) {
                problems.push(format!(
                    "role {role_name}: passwordSecret must be custodian-pg-{service}"
                ));
            }
            let limit = int(&role["connectionLimit"]).unwrap_or(0);
            limits += limit;
            let Some(deployment) = find("Deployment", service) else {
                continue;
            };
            let env = seq(&deployment["spec"]["template"]["spec"]["containers"][0]["env"]);
            let auto_create = env
                .iter()
                .find(|e| e["name"].as_str() == Some("DATABASE_AUTO_CREATE"));
            if auto_create.and_then(|e| e["value"].as_str()) != Some("false") {
                problems.push(format!("{service}: DATABASE_AUTO_CREATE must be \"false\" (the operator creates the database)"));
            }
            let pool = env
                .iter()
                .find(|e| e["name"].as_str() == Some("DATABASE_POOL_SIZE"))
                .and_then(|e| e["valueFrom"]["configMapKeyRef"]["key"].as_str())
                .and_then(|k| config.get(k))
                .and_then(|v| v.parse::<u64>().ok());
            let Some(pool) = pool else {
                problems.push(format!(
                    "{service}: DATABASE_POOL_SIZE is not set from the ConfigMap"
                ));
                continue;
            };
            let replicas = hpas
                .iter()
                .find(|h| h["spec"]["scaleTargetRef"]["name"].as_str() == Some(service))
                .and_then(|h| int(&h["spec"]["maxReplicas"]))
                .or_else(|| int(&deployment["spec"]["replicas"]))
                .unwrap_or(1);
            let surge = match deployment["spec"]["strategy"]["type"].as_str() {
                Some("Recreate") => 0,
                _ => int(&deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]).unwrap_or(1),
            };
            // Each pod: its pool, plus the connection that migrates at start.
            let needed = (replicas + surge) * (pool + 1);
            if needed > limit {
                problems.push(format!("{service}: up to {} pods x (pool {pool} + 1) = {needed} connections, above role {role_name}'s connectionLimit {limit}", replicas + surge));
            }
        }
        // Headroom for the operator, replication and an administrator.
        if limits + 10 > max_connections {
            problems.push(format!("max_connections {max_connections} leaves less than 10 connections beside the roles' limits ({limits})"));
        }
        let sql: Vec<String> = seq(&spec["bootstrap"]["initdb"]["postInitSQL"])
            .iter()
            .chain(seq(&spec["bootstrap"]["initdb"]["postInitApplicationSQL"]))
            .map(str_of)
            .collect();
        for service in ["identity", "consent", "records", "ledger", "anomaly"] {
            let db = format!("custodian_{service}");
            let created = spec["bootstrap"]["initdb"]["database"].as_str() == Some(db.as_str())
                || sql
                    .iter()
                    .any(|s| s == &format!("CREATE DATABASE {db} OWNER {db}"));
            if !created {
                problems.push(format!(
                    "database {db} is not created (owned by its role) at bootstrap"
                ));
            }
            if !sql
                .iter()
                .any(|s| s == &format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC"))
            {
                problems.push(format!("database {db}: CONNECT is not revoked from PUBLIC"));
            }
        }
        let hba: Vec<String> = seq(&spec["postgresql"]["pg_hba"])
            .iter()
            .map(str_of)
            .collect();
        if !hba.iter().any(|l| {
            l.split_whitespace().collect::<Vec<_>>() == ["hostnossl", "all", "all", "all", "reject"]
        }) {
            problems.push("pg_hba does not reject connections without TLS".into());
        }
        problems
    });
}

#[test]
fn redis_acl_of_the_example_is_the_one_scripts_use() {
    let script = format!(
        "ROOT={root}; source {root}/scripts/lib/redis.sh; for s in identity consent records ledger anomaly gateway; do echo \"$s $(redis_acl_rules $s)\"; done",
        root = root().display()
    );
    let output = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("run bash");
    assert!(
        output.status.success(),
        "redis_acl_rules failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let example =
        fs::read_to_string(root().join("k8s/overlays/production/external-secret.example.yaml"))
            .expect("read the example ExternalSecret");
    let mut problems = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some((user, rules)) = line.split_once(' ') else {
            continue;
        };
        let expected = format!("user {user} on #{{{{ .{user} | sha256sum }}}} {rules}");
        if !example.lines().any(|l| l.trim() == expected) {
            problems.push(format!("the example's users.acl has no line `{expected}` (scripts/lib/redis.sh's rules for {user})"));
        }
    }
    if !example.contains("user default off") {
        problems.push("the example's users.acl does not turn the default user off".into());
    }
    fail("Redis ACL", &problems);
}
