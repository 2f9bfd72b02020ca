//! Third-party FHIR clients, unmodified, against the whole suite through the gateway (issue
//! 8): fhirpy, fhirclient and fhir.resources, installed from PyPI into a venv of the test's
//! own by `scripts/fhir-clients/run.sh`, run `scripts/fhir-clients/check.py` as a hospital
//! practitioner (Hospital1's, from the demo data set).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::path::PathBuf;

use integration_tests::{api::Gateway, demo, suite::Suite};

#[actix_web::test]
async fn fhirpy_fhirclient_and_fhir_resources_work_unmodified() {
    // The clients' burst of writes, searches and an export is the kind of thing anomaly may
    // suspend a user for; this test is about the FHIR API, so the detector only watches.
    let suite = Suite::start_with(&[("ANOMALY_SUSPEND", "false")]).await;
    let gw = Gateway::new(suite.gateway_url());
    let demo = demo::seed(&gw, &suite.admin_password)
        .await
        .expect("the demo data set loads");
    let token = gw
        .login(
            &demo.h1_practitioner.username,
            &demo.h1_practitioner.password,
        )
        .await
        .expect("Hospital1's practitioner signs in");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/fhir-clients/run.sh");
    let base = suite.gateway_url();
    // Blocking: the test's runtime is single-threaded and the suite answers on other processes.
    let output = actix_web::rt::task::spawn_blocking(move || {
        std::process::Command::new(script)
            .arg(base)
            .env("FHIR_TOKEN", token)
            .output()
            .expect("scripts/fhir-clients/run.sh runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the clients' checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all passed"), "{stdout}");
}
