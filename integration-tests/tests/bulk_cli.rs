//! `custodian-bulk` against the whole suite through the gateway: a synthetic population is
//! imported as transaction Bundles and comes back, complete, from a Bulk Data `$export`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::collections::BTreeMap;

use integration_tests::{api::Gateway, demo, suite::Suite};

fn bulk(args: Vec<String>) -> std::process::Output {
    std::process::Command::new(integration_tests::suite::binary_dir().join("custodian-bulk"))
        .args(args)
        .output()
        .expect("custodian-bulk runs")
}

#[actix_web::test]
async fn a_population_imported_in_bundles_comes_back_from_export() {
    // Moving a whole population out right after loading it is what exfiltration looks like:
    // with suspension on, anomaly suspends the practitioner before the export completes (seen
    // here). This test is about the data path, so the detector only watches.
    let suite = Suite::start_with(&[("ANOMALY_SUSPEND", "false")]).await;
    let gw = Gateway::new(suite.gateway_url());
    let demo = demo::seed(&gw, &suite.admin_password).await.unwrap();
    let token = gw
        .login(
            &demo.h1_practitioner.username,
            &demo.h1_practitioner.password,
        )
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("custodian-bulk-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let population = dir.join("population.ndjson");
    let exported = dir.join("exported");
    let base = suite.gateway_url();
    let (synth, import, export) = {
        let (population, exported) = (population.clone(), exported.clone());
        actix_web::rt::task::spawn_blocking(move || {
            let s = |x: &str| x.to_string();
            let synth = bulk(vec![
                s("synth"),
                s("--patients"),
                s("40"),
                s("--seed"),
                s("3"),
                s("--out"),
                population.display().to_string(),
            ]);
            let import = bulk(vec![
                s("import"),
                s("--gateway"),
                base.clone(),
                s("--token"),
                token.clone(),
                s("--batch"),
                s("50"),
                population.display().to_string(),
            ]);
            let export = bulk(vec![
                s("export"),
                s("--gateway"),
                base,
                s("--token"),
                token,
                s("--kickoff"),
                s("/fhir/Patient/$export?_type=Patient,Encounter,Condition,Observation"),
                s("--out"),
                exported.display().to_string(),
            ]);
            (synth, import, export)
        })
        .await
        .unwrap()
    };
    for (name, out) in [("synth", &synth), ("import", &import), ("export", &export)] {
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!("{}", String::from_utf8_lossy(&import.stdout));

    // Every synthetic resource came back, by type, with its id (the demo's own data too).
    let count_by_type = |paths: Vec<std::path::PathBuf>| {
        let mut ids: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for path in paths {
            for line in std::fs::read_to_string(path).unwrap().lines() {
                let r: serde_json::Value = serde_json::from_str(line).unwrap();
                ids.entry(r["resourceType"].as_str().unwrap().to_string())
                    .or_default()
                    .insert(r["id"].as_str().unwrap().to_string());
            }
        }
        ids
    };
    let sent = count_by_type(vec![population]);
    let files: Vec<_> = std::fs::read_dir(&exported)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let back = count_by_type(files);
    for (t, ids) in &sent {
        let got = back.get(t).cloned().unwrap_or_default();
        assert!(
            ids.is_subset(&got),
            "{t}: {} sent, {} missing from the export",
            ids.len(),
            ids.difference(&got).count()
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
