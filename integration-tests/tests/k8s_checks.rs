//! The third-party checks of the Kubernetes manifests and Dockerfiles, run by
//! `scripts/k8s-checks/run.sh`: kustomize renders k8s/base and both overlays, every rendered
//! object validates against its schema (Kubernetes' own with kubernetes-validate, custom
//! resources against their CRDs' schemas in k8s/schemas/), checkov passes on the production
//! overlay, hadolint passes on docker/*.Dockerfile.
//!
//! The script installs its tools from PyPI into var/venv/k8s-checks on first use (a minute or
//! two), then runs offline in seconds.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::{path::Path, process::Command};

#[test]
fn kustomize_schemas_checkov_and_hadolint_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let output = Command::new("bash")
        .arg(root.join("scripts/k8s-checks/run.sh"))
        .current_dir(root)
        .output()
        .expect("run scripts/k8s-checks/run.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "scripts/k8s-checks/run.sh failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // Every step ran and said so (a step skipped by mistake would not print its "ok").
    for step in [
        "ok: kubectl kustomize k8s/base",
        "ok: kubectl kustomize k8s/overlays/dev",
        "ok: kubectl kustomize k8s/overlays/production",
        "ok: schema validation of every rendered object",
        "ok: checkov on k8s/overlays/production",
        "ok: hadolint docker/*.Dockerfile",
    ] {
        assert!(stdout.contains(step), "no `{step}` in:\n{stdout}\n{stderr}");
    }
    assert!(
        stdout.contains("Failed checks: 0"),
        "checkov reported failures:\n{stdout}"
    );
}
