//! The replay subcommand, run as a process on a temporary file.

use std::{io::Write, process::Command};

use anomaly::replay::{replay, ReplayOptions};
use custodian_events::AccessOutcome;

use crate::helpers::{access_event, burst};

struct TempFile(std::path::PathBuf);

impl TempFile {
    fn with(contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "anomaly-replay-{}.jsonl",
            uuid::Uuid::new_v4().simple()
        ));
        let mut file = std::fs::File::create(&path).expect("temp file");
        file.write_all(contents.as_bytes()).expect("write");
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn events_file() -> String {
    let mut events = vec![
        access_event("dr-normal", 0, Some("Patient/a"), AccessOutcome::Permit),
        access_event("dr-normal", 20, Some("Patient/b"), AccessOutcome::Permit),
    ];
    events.extend(burst("dr-burst"));
    events
        .iter()
        .map(|e| serde_json::to_string(e).expect("json"))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_anomaly"))
        .args(args)
        .env_remove("ANOMALY_ALERT_THRESHOLD")
        .output()
        .expect("the binary runs")
}

#[test]
fn the_binary_prints_what_the_library_computes() {
    let contents = events_file();
    let file = TempFile::with(&contents);
    let output = run(&["replay", "--events", file.0.to_str().expect("utf-8 path")]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let mut expected = Vec::new();
    let options = ReplayOptions {
        threshold: 0.8,
        skip_malformed: false,
        explain: false,
        care: Vec::new(),
        labels: Vec::new(),
    };
    replay(
        contents.as_bytes(),
        &mut expected,
        std::io::sink(),
        &options,
    )
    .expect("library replay");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&expected)
    );

    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 22);
    assert_eq!(lines[0]["alert"], false);
    assert_eq!(lines[1]["alert"], false);
    assert_eq!(lines[21]["alert"], true);
    assert!(lines[21]["score"].as_f64().is_some_and(|s| s >= 0.9));
}

#[test]
fn the_binary_stops_at_a_malformed_line_with_its_number() {
    let contents = format!("{}{{\"id\": 1}}\n", events_file());
    let file = TempFile::with(&contents);
    let path = file.0.to_str().expect("utf-8 path");
    let output = run(&["replay", "--events", path]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("line 23"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let output = run(&["replay", "--events", path, "--skip-malformed"]);
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 22);
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 23"));
}

#[test]
fn the_binary_honours_the_threshold_and_rejects_bad_arguments() {
    let file = TempFile::with(&events_file());
    let path = file.0.to_str().expect("utf-8 path");
    let output = Command::new(env!("CARGO_BIN_EXE_anomaly"))
        .args(["replay", "--events", path])
        .env("ANOMALY_ALERT_THRESHOLD", "0.05")
        .output()
        .expect("runs");
    assert!(output.status.success());
    let first: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(3)
            .expect("line"),
    )
    .expect("json");
    assert!(first["score"].as_f64().is_some_and(|s| s >= 0.05));
    assert_eq!(first["alert"], true);

    assert_eq!(run(&["replay"]).status.code(), Some(64));
    assert_eq!(
        run(&["replay", "--events", "/nonexistent/file.jsonl"])
            .status
            .code(),
        Some(66)
    );
    assert_eq!(run(&["frobnicate"]).status.code(), Some(64));
}
