//! The alert rules in `k8s/monitoring/prometheus-rule.yaml` are valid and fire when they should:
//! their groups are written out as a plain rules file, checked with `promtool check rules` and
//! unit-tested with `promtool test rules` against every file in `k8s/monitoring/tests/`. Every
//! metric a rule names is one the code registers, and every alert has a runbook section.
//!
//! Needs `promtool`: `scripts/ensure-deps.sh` installs it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

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

/// Every `custodian_*` series a rule reads is registered somewhere in the code (the registry
/// adds the `custodian_` prefix), so a renamed metric cannot leave an alert that never fires.
#[test]
fn rules_read_metrics_the_services_export() {
    let groups = rule_groups();
    let mut names = BTreeSet::new();
    for alert in alerts(&groups) {
        let expr = alert["expr"].as_str().unwrap();
        let mut rest = expr;
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
        assert!(
            sources.contains(&format!("\"{name}\"")),
            "a rule reads custodian_{name}, which no service registers"
        );
    }
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
    }
}
