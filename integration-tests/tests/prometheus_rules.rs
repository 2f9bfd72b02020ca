//! The alert rules in `k8s/monitoring/prometheus-rule.yaml` are valid and fire when they should:
//! their groups are written out as a plain rules file, checked with `promtool check rules` and
//! unit-tested with `promtool test rules` against every file in `k8s/monitoring/tests/`. Every
//! metric a rule or a dashboard names is one the code registers (`tests/metrics.rs` checks the
//! same against the services' live `/metrics`), every alert has a severity and a runbook
//! section, and `k8s/monitoring` renders: a ServiceMonitor that selects the base's six Services
//! on a port they have, and the dashboards as ConfigMaps for Grafana's sidecar.
//!
//! Needs `promtool` and `kubectl`: `scripts/ensure-deps.sh` installs them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use serde::Deserialize;
use serde_yaml::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn rule_groups() -> Value {
    let text = fs::read_to_string(root().join("k8s/monitoring/prometheus-rule.yaml")).unwrap();
    let doc: Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(doc["kind"], "PrometheusRule");
    doc["spec"]["groups"].clone()
}

fn alerts(groups: &Value) -> Vec<&Value> {
    groups
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .filter(|r| r.get("alert").is_some())
        .collect()
}

/// A scratch directory holding `rules.yml` and the unit test files beside it.
fn scratch_with_rules() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("custodian-rules-{}", uuid::Uuid::new_v4()));
    fs::create_dir_all(&dir).unwrap();
    let mut rules = serde_yaml::Mapping::new();
    rules.insert("groups".into(), rule_groups());
    fs::write(
        dir.join("rules.yml"),
        serde_yaml::to_string(&rules).unwrap(),
    )
    .unwrap();
    dir
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool (scripts/ensure-deps.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn rules_pass_promtool_check_and_their_unit_tests() {
    let dir = scratch_with_rules();
    let checked = promtool(&["check", "rules", "rules.yml"], &dir);
    assert!(checked.contains("SUCCESS"), "{checked}");

    let tests = root().join("k8s/monitoring/tests");
    let mut ran = 0;
    for entry in fs::read_dir(&tests).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yml") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        fs::copy(&path, dir.join(&name)).unwrap();
        promtool(&["test", "rules", &name], &dir);
        ran += 1;
    }
    assert!(ran > 0, "no rule unit tests in {}", tests.display());

    // Every alert is exercised by some unit test (firing or, where it must not fire, silent).
    let mut tested = String::new();
    for entry in fs::read_dir(&tests).unwrap() {
        tested.push_str(&fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    for alert in alerts(&rule_groups()) {
        let name = alert["alert"].as_str().unwrap();
        assert!(
            tested.contains(&format!("alertname: {name}")),
            "alert {name} has no unit test in k8s/monitoring/tests"
        );
    }
    fs::remove_dir_all(&dir).ok();
}

/// The PromQL of every panel of every dashboard in `k8s/monitoring/dashboards/`.
fn dashboard_queries() -> Vec<String> {
    fn walk(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(expr)) = map.get("expr") {
                    out.push(expr.clone());
                }
                map.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for entry in fs::read_dir(root().join("k8s/monitoring/dashboards")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("json") {
            let doc: serde_json::Value =
                serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
            walk(&doc, &mut out);
        }
    }
    out
}

/// Every `custodian_*` series a rule or a dashboard reads is registered somewhere in the code
/// (the registry adds the `custodian_` prefix; a histogram's samples add `_bucket`, `_sum`,
/// `_count`), so a renamed metric cannot leave an alert that never fires or an empty panel.
#[test]
fn rules_read_metrics_the_services_export() {
    let groups = rule_groups();
    let mut names = BTreeSet::new();
    let mut exprs: Vec<String> = alerts(&groups)
        .iter()
        .map(|a| a["expr"].as_str().unwrap().to_string())
        .collect();
    let panels = dashboard_queries();
    assert!(
        panels.len() > 20,
        "the dashboards hold {} queries",
        panels.len()
    );
    exprs.extend(panels);
    for expr in &exprs {
        let mut rest = expr.as_str();
        while let Some(at) = rest.find("custodian_") {
            let tail = &rest[at + "custodian_".len()..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    assert!(!names.is_empty());
    let mut sources = String::new();
    let mut stack = vec![root().join("shared"), root().join("services")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().and_then(|e| e.to_str()) == Some("rs")
                && path.components().any(|c| c.as_os_str() == "src")
            {
                sources.push_str(&fs::read_to_string(&path).unwrap());
            }
        }
    }
    for name in names {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|f| sources.contains(&format!("\"{f}\"")))
            })
            .unwrap_or(&name);
        assert!(
            sources.contains(&format!("\"{family}\"")),
            "a rule or a dashboard reads custodian_{name}, which no service registers"
        );
    }
}

fn kustomize(dir: &str) -> Vec<Value> {
    let out = Command::new("kubectl")
        .args(["kustomize", dir])
        .current_dir(root())
        .output()
        .expect("kubectl (scripts/ensure-deps.sh installs it)");
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The ServiceMonitor scrapes all six Services of the base, on a port each of them has, in
/// their namespace; the rendered PrometheusRule is the one tested above.
#[test]
fn the_service_monitor_selects_every_service_of_the_base() {
    let monitoring = kustomize("k8s/monitoring");
    let monitors = of_kind(&monitoring, "ServiceMonitor");
    assert_eq!(monitors.len(), 1);
    let monitor = monitors[0];
    assert_eq!(monitor["metadata"]["namespace"], "custodian");
    assert_eq!(monitor["spec"]["jobLabel"], "app.kubernetes.io/part-of");
    let endpoints = monitor["spec"]["endpoints"].as_sequence().unwrap();
    assert_eq!(endpoints.len(), 1);
    let endpoint = &endpoints[0];
    assert_eq!(endpoint["path"], "/metrics");
    assert_eq!(endpoint["honorLabels"], true);
    let port = endpoint["port"].as_str().unwrap();
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .unwrap();
    let namespaces = &monitor["spec"]["namespaceSelector"]["matchNames"];

    let base = kustomize("k8s/base");
    let mut selected = BTreeSet::new();
    for service in of_kind(&base, "Service") {
        let labels = service["metadata"]["labels"].as_mapping().unwrap();
        if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            continue;
        }
        let name = service["metadata"]["name"].as_str().unwrap();
        assert!(
            namespaces
                .as_sequence()
                .unwrap()
                .contains(&service["metadata"]["namespace"]),
            "the ServiceMonitor does not look in {name}'s namespace"
        );
        assert!(
            service["spec"]["ports"]
                .as_sequence()
                .unwrap()
                .iter()
                .any(|p| p["name"] == port),
            "Service {name} has no port named {port}"
        );
        selected.insert(name.to_string());
    }
    let six: BTreeSet<String> = [
        "gateway", "identity", "consent", "records", "ledger", "anomaly",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(selected, six);

    let rules = of_kind(&monitoring, "PrometheusRule");
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["spec"]["groups"], rule_groups());
}

/// For the overlays, whose services serve HTTPS, `k8s/monitoring-tls` scrapes each Service over
/// HTTPS with a server name its certificate (in the production overlay) really holds and the CA
/// cert-manager stores beside it; the rules are the same.
#[test]
fn over_https_each_service_is_scraped_by_a_name_its_certificate_holds() {
    let monitoring = kustomize("k8s/monitoring-tls");
    let production = kustomize("k8s/overlays/production");
    let mut scraped = BTreeSet::new();
    for monitor in of_kind(&monitoring, "ServiceMonitor") {
        let name = monitor["metadata"]["name"].as_str().unwrap();
        let selector = monitor["spec"]["selector"]["matchLabels"]
            .as_mapping()
            .unwrap();
        let services: Vec<&Value> = of_kind(&production, "Service")
            .into_iter()
            .filter(|s| {
                let labels = s["metadata"]["labels"].as_mapping().unwrap();
                selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .collect();
        assert_eq!(services.len(), 1, "{name} must select exactly one Service");
        let service = services[0]["metadata"]["name"].as_str().unwrap();
        let endpoint = &monitor["spec"]["endpoints"][0];
        assert_eq!(endpoint["scheme"], "https", "{name}");
        assert_eq!(endpoint["path"], "/metrics", "{name}");
        assert!(
            services[0]["spec"]["ports"]
                .as_sequence()
                .unwrap()
                .iter()
                .any(|p| p["name"] == endpoint["port"]),
            "{name}: Service {service} has no port {:?}",
            endpoint["port"]
        );
        let tls = &endpoint["tlsConfig"];
        assert_eq!(tls["ca"]["secret"]["key"], "ca.crt", "{name}");
        let secret = tls["ca"]["secret"]["name"].as_str().unwrap();
        let certificate = of_kind(&production, "Certificate")
            .into_iter()
            .find(|c| c["spec"]["secretName"] == secret)
            .unwrap_or_else(|| panic!("{name}: no Certificate writes the Secret {secret}"));
        let server_name = tls["serverName"].as_str().unwrap();
        assert!(
            certificate["spec"]["dnsNames"]
                .as_sequence()
                .unwrap()
                .iter()
                .any(|d| d == server_name),
            "{name}: {server_name} is not a name of the certificate in {secret}"
        );
        assert!(
            server_name.starts_with(&format!("{service}.")),
            "{name}: {server_name} is not {service}'s name"
        );
        scraped.insert(service.to_string());
    }
    let six: BTreeSet<String> = [
        "gateway", "identity", "consent", "records", "ledger", "anomaly",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(scraped, six);
    assert!(
        of_kind(&monitoring, "ServiceMonitor")
            .iter()
            .all(|m| m["metadata"]["name"] != "custodian"),
        "the plain-HTTP ServiceMonitor is replaced"
    );
    let rules = of_kind(&monitoring, "PrometheusRule");
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["spec"]["groups"], rule_groups());
}

/// The dashboards ship as ConfigMaps Grafana's sidecar loads (label `grafana_dashboard: "1"`),
/// holding the files as they are in the repository.
#[test]
fn the_dashboards_ship_as_configmaps_for_grafana() {
    let monitoring = kustomize("k8s/monitoring");
    let mut shipped = BTreeSet::new();
    let mut uids = BTreeSet::new();
    for map in of_kind(&monitoring, "ConfigMap") {
        assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1");
        for (file, text) in map["data"].as_mapping().unwrap() {
            let file = file.as_str().unwrap();
            let on_disk =
                fs::read_to_string(root().join("k8s/monitoring/dashboards").join(file)).unwrap();
            assert_eq!(text.as_str(), Some(on_disk.as_str()), "{file}");
            let dashboard: serde_json::Value = serde_json::from_str(&on_disk).unwrap();
            assert!(dashboard["title"].as_str().is_some(), "{file} has no title");
            assert!(
                uids.insert(dashboard["uid"].as_str().unwrap().to_string()),
                "{file}: uid used twice"
            );
            shipped.insert(file.to_string());
        }
    }
    let on_disk: BTreeSet<String> = fs::read_dir(root().join("k8s/monitoring/dashboards"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(shipped, on_disk);
    assert_eq!(shipped.len(), 2);
}

#[test]
fn every_alert_has_a_runbook_section() {
    let runbooks = fs::read_to_string(root().join("docs/runbooks.md")).unwrap();
    for alert in alerts(&rule_groups()) {
        let name = alert["alert"].as_str().unwrap();
        let anchor = format!("docs/runbooks.md#{}", name.to_lowercase());
        assert_eq!(
            alert["annotations"]["runbook_url"].as_str(),
            Some(anchor.as_str()),
            "{name}'s runbook annotation"
        );
        assert!(
            runbooks.contains(&format!("## {name}\n")),
            "docs/runbooks.md has no section for {name}"
        );
        let severity = alert["labels"]["severity"].as_str();
        assert!(
            matches!(severity, Some("critical" | "warning")),
            "{name}'s severity is {severity:?}"
        );
    }
}
