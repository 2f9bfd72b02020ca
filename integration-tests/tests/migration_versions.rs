//! Diesel records applied migrations by version (the directory name up to its first `_`). A
//! service runs the outbox's migrations and its own against one database, so a version both
//! sets used would silently skip one of the two migrations: versions must differ.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::{collections::BTreeMap, fs, path::Path};

fn versions(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|name| name.split_once('_').map(|(v, _)| v.replace('-', "")))
        .collect();
    found.sort();
    found
}

#[test]
fn no_service_shares_a_migration_version_with_the_outbox() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let outbox = versions(&root.join("shared/events/migrations"));
    assert!(!outbox.is_empty());
    let mut checked = BTreeMap::new();
    for service in ["identity", "consent", "records", "ledger", "anomaly"] {
        let own = versions(&root.join("services").join(service).join("migrations"));
        let mut all = own.clone();
        all.extend(outbox.iter().cloned());
        all.sort();
        let before = all.len();
        all.dedup();
        assert_eq!(
            all.len(),
            before,
            "{service}'s migrations share a version with each other or with the outbox's: {own:?} / {outbox:?}"
        );
        checked.insert(service, own.len());
    }
    assert_eq!(checked.len(), 5);
}
