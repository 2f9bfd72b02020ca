//! `anomaly simulate` and `anomaly evaluate`: determinism, the incidents and their labels, no
//! label leaking into the events, and the two commands end to end.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    path::PathBuf,
    process::Command,
    sync::OnceLock,
};

use anomaly::simulate::{simulate, Kind, Params, Simulation};
use custodian_events::{AccessAction, AccessEvent};

fn small(seed: u64) -> Simulation {
    simulate(&Params::small(seed))
}

/// A mid-sized run (shared by the tests that need enough benign traffic to compare with).
fn medium() -> &'static Simulation {
    static SIM: OnceLock<Simulation> = OnceLock::new();
    SIM.get_or_init(|| {
        simulate(&Params {
            days: 5,
            staff: 90,
            patients: 1_500,
            incidents_per_kind: 2,
            ..Params::standard(11)
        })
    })
}

fn jsonl<T: serde::Serialize>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| serde_json::to_string(i).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_same_seed_gives_the_same_log_and_another_seed_another() {
    let (a, b) = (small(3), small(3));
    assert_eq!(jsonl(&a.events), jsonl(&b.events));
    assert_eq!(jsonl(&a.labels), jsonl(&b.labels));
    let c = small(4);
    assert_ne!(jsonl(&a.events), jsonl(&c.events));
}

#[test]
fn events_are_sorted_unique_and_parse_as_the_product_writes_them() {
    let sim = small(5);
    assert!(sim.events.len() > 3_000, "{} events", sim.events.len());
    assert!(sim.events.windows(2).all(|w| w[0].time <= w[1].time));
    let ids: HashSet<_> = sim.events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), sim.events.len());
    for event in sim.events.iter().take(2_000) {
        let json = serde_json::to_string(event).unwrap();
        assert_eq!(&AccessEvent::parse(&json).unwrap(), event);
        // The roles identity issues, nothing invented.
        assert!(["practitioner", "patient", "service", "admin", "auditor"]
            .contains(&event.actor.role.as_str()));
        assert!(event.request_id.is_some());
    }
}

#[test]
fn every_kind_of_incident_is_there_and_labelled_consistently() {
    for sim in [&small(1), medium()] {
        let ids: HashSet<_> = sim.events.iter().map(|e| e.id).collect();
        let mut kind_of: HashMap<&str, &str> = HashMap::new();
        let mut labelled = HashSet::new();
        for label in &sim.labels {
            assert!(ids.contains(&label.id), "label for a missing event");
            assert!(labelled.insert(label.id), "an event labelled twice");
            let kind = kind_of.entry(&label.incident).or_insert(&label.kind);
            assert_eq!(
                *kind, label.kind,
                "incident {} has two kinds",
                label.incident
            );
        }
        let kinds: BTreeSet<&str> = kind_of.values().copied().collect();
        let all: BTreeSet<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(kinds, all);
        // Every injected incident has labelled events, and only those.
        let injected: BTreeSet<&str> = sim.incidents.iter().map(|(id, _)| id.as_str()).collect();
        let seen: BTreeSet<&str> = kind_of.keys().copied().collect();
        assert_eq!(injected, seen);
        // Attacks are a minority of the traffic, as in a real log.
        assert!(sim.labels.len() * 5 < sim.events.len());
    }
    let per_kind = medium()
        .incidents
        .iter()
        .filter(|(_, k)| *k == Kind::SnoopVip)
        .count();
    assert_eq!(per_kind, 2);
}

/// The values an event shows a detector, field by field.
fn fields(e: &AccessEvent) -> Vec<(&'static str, String)> {
    let json = serde_json::to_value(e).unwrap();
    let mut keys: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
    if let Some(d) = json["decision"].as_object() {
        keys.extend(d.keys().map(|k| format!("decision.{k}")));
    }
    let decision = e.decision.as_ref();
    let network = e
        .source
        .ip
        .as_deref()
        .map(|ip| ip.split('.').take(2).collect::<Vec<_>>().join("."));
    vec![
        ("keys", keys.join(",")),
        ("role", e.actor.role.clone()),
        ("department", format!("{:?}", e.actor.department)),
        ("organization", format!("{:?}", e.actor.organization)),
        ("action", format!("{:?}", e.action)),
        ("resource_type", format!("{:?}", e.resource_type)),
        ("purpose", e.purpose.clone()),
        ("outcome", format!("{:?}", e.outcome)),
        ("basis", format!("{:?}", decision.map(|d| &d.basis))),
        (
            "consents",
            format!("{}", decision.map_or(0, |d| d.consents.len())),
        ),
        (
            "reason",
            format!("{:?}", decision.and_then(|d| d.break_glass_reason.as_ref())),
        ),
        ("break_glass", e.break_glass.to_string()),
        ("confidentiality", format!("{:?}", e.confidentiality)),
        ("count", e.count.to_string()),
        ("patient_present", e.patient.is_some().to_string()),
        ("user_agent", format!("{:?}", e.source.user_agent)),
        ("network", format!("{network:?}")),
    ]
}

#[test]
fn no_value_of_any_field_exists_only_on_attack_events() {
    let sim = medium();
    let attack: HashSet<_> = sim.labels.iter().map(|l| l.id).collect();
    let kind_of: HashMap<_, _> = sim.labels.iter().map(|l| (l.id, l.kind.as_str())).collect();
    let mut benign: HashSet<(&str, String)> = HashSet::new();
    let mut benign_actors = HashSet::new();
    for e in sim.events.iter().filter(|e| !attack.contains(&e.id)) {
        benign.extend(fields(e));
        benign_actors.insert(e.actor.id.clone());
    }
    let mut leaks = BTreeSet::new();
    for e in sim.events.iter().filter(|e| attack.contains(&e.id)) {
        for field in fields(e) {
            if !benign.contains(&field) {
                leaks.insert(field);
            }
        }
        // Insiders act under accounts that also work honestly (outsiders may try any
        // account, or a username that does not exist).
        let outsider = ["stolen-credentials", "denied-burst"].contains(&kind_of[&e.id]);
        assert!(
            outsider || benign_actors.contains(&e.actor.id),
            "attack by an actor who never acts otherwise: {}",
            e.actor.id
        );
    }
    assert!(leaks.is_empty(), "values only attacks have: {leaks:?}");
}

#[test]
fn only_outsiders_bring_addresses_nobody_else_used() {
    let sim = medium();
    let kind_of: HashMap<_, _> = sim.labels.iter().map(|l| (l.id, l.kind.as_str())).collect();
    let benign_ips: HashSet<_> = sim
        .events
        .iter()
        .filter(|e| !kind_of.contains_key(&e.id))
        .filter_map(|e| e.source.ip.clone())
        .collect();
    for e in &sim.events {
        let Some(kind) = kind_of.get(&e.id) else {
            continue;
        };
        let ip = e.source.ip.clone().unwrap_or_default();
        let outsider = ["stolen-credentials", "denied-burst"].contains(kind);
        // Insiders work from the hospital's own networks, the VPN, or their known home.
        if !outsider && !benign_ips.contains(&ip) {
            assert!(
                ip.starts_with("10."),
                "{kind} from an address never seen otherwise: {ip}"
            );
        }
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("anomaly-sim-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn anomaly(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_anomaly"))
        .args(args)
        .env_remove("ANOMALY_ALERT_THRESHOLD")
        .output()
        .unwrap()
}

/// `anomaly evaluate --json` over `events` and `labels` with `extra` arguments: its report.
fn evaluate_json(
    events: &std::path::Path,
    labels: &std::path::Path,
    extra: &[&str],
) -> serde_json::Value {
    let mut args = vec![
        "evaluate",
        "--json",
        "--events",
        events.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = anomaly(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The clinical record's care facts: ordered by start, mostly about patients and users of the
/// log (a record may be cared for without being opened in the period), and hardly ever
/// covering an attack (the insider has no part in her care).
#[test]
fn care_facts_cover_care_and_not_attacks() {
    use anomaly::model::CareActor;
    let sim = medium();
    assert!(sim.care.len() > 100, "{} care facts", sim.care.len());
    assert!(sim.care.windows(2).all(|w| w[0].start <= w[1].start));
    let patients: HashSet<_> = sim
        .events
        .iter()
        .filter_map(|e| e.patient.clone())
        .collect();
    let users: HashSet<_> = sim.events.iter().map(|e| e.actor.id.clone()).collect();
    let known = sim
        .care
        .iter()
        .filter(|f| {
            patients.contains(&f.patient)
                && match &f.actor {
                    CareActor::User(id) => users.contains(id),
                    CareActor::Department { .. } => true,
                }
        })
        .count();
    assert!(
        known * 10 >= sim.care.len() * 8,
        "{known} of {}",
        sim.care.len()
    );
    let covers = |e: &AccessEvent| {
        sim.care.iter().any(|f| {
            Some(&f.patient) == e.patient.as_ref()
                && f.actor == CareActor::User(e.actor.id.clone())
                && f.start <= e.time
                && f.end.is_none_or(|end| e.time < end)
        })
    };
    let attack: HashSet<_> = sim.labels.iter().map(|l| l.id).collect();
    let (mut covered, mut attacks) = (0, 0);
    let (mut benign_covered, mut benign) = (0, 0);
    for e in sim.events.iter().filter(|e| e.patient.is_some()).step_by(7) {
        if attack.contains(&e.id) {
            attacks += 1;
            covered += usize::from(covers(e));
        } else {
            benign += 1;
            benign_covered += usize::from(covers(e));
        }
    }
    assert!(
        covered * 20 <= attacks,
        "{covered} of {attacks} attack events covered"
    );
    assert!(
        benign_covered * 10 >= benign,
        "{benign_covered} of {benign} benign events covered"
    );
    // Every member of staff who is a patient is labelled so, and only they.
    assert!(!sim.patient_labels.is_empty());
    assert!(sim
        .patient_labels
        .iter()
        .all(|l| l.labels == ["EMP"] && l.patient.starts_with("Patient/")));
    // A clinic visit's Encounter names the physician from check-in: the chart she opens before
    // writing the visit's Encounter is covered from its first read.
    let visits: Vec<&AccessEvent> = sim
        .events
        .iter()
        .filter(|e| {
            e.action == AccessAction::Create
                && e.resource_type.as_deref() == Some("Encounter")
                && !attack.contains(&e.id)
                // Admissions and the emergency department open encounters for others.
                && !matches!(
                    e.actor.department.as_deref(),
                    Some("Admissions" | "Emergency")
                )
        })
        .collect();
    let opened_covered = visits
        .iter()
        .filter(|v| {
            let mut opened = AccessEvent::clone(v);
            opened.time -= chrono::Duration::minutes(5);
            covers(v) && covers(&opened)
        })
        .count();
    assert!(
        !visits.is_empty() && opened_covered * 10 >= visits.len() * 9,
        "{opened_covered} of {} clinic visits covered from the chart's opening",
        visits.len()
    );
}

#[test]
fn simulate_then_evaluate_end_to_end() {
    let dir = scratch("e2e");
    let (events, labels, scores, care) = (
        dir.join("e.jsonl"),
        dir.join("l.jsonl"),
        dir.join("s.jsonl"),
        dir.join("c.jsonl"),
    );
    let out = anomaly(&[
        "simulate",
        "--small",
        "--seed",
        "2",
        "--out-events",
        events.to_str().unwrap(),
        "--out-labels",
        labels.to_str().unwrap(),
        "--out-care",
        care.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(&events).unwrap();
    let care_written = std::fs::read_to_string(&care).unwrap();
    let expected = small(2);
    assert_eq!(
        care_written.lines().count(),
        expected.care.len() + expected.patient_labels.len()
    );
    assert_eq!(written.lines().count(), small(2).events.len());

    let report = evaluate_json(&events, &labels, &[]);
    let sim = small(2);
    assert_eq!(report["events"], sim.events.len());
    assert_eq!(report["attack_events"], sim.labels.len());
    assert_eq!(report["incidents"], sim.incidents.len());
    assert_eq!(
        report["per_kind"].as_object().unwrap().len(),
        Kind::ALL.len()
    );
    let alerts = report["alerts"].as_u64().unwrap();
    let tp = report["true_positives"].as_u64().unwrap();
    let fp = report["false_positives"].as_u64().unwrap();
    assert_eq!(alerts, tp + fp);

    // The same figures from a replay file read with --scores.
    let out = anomaly(&["replay", "--events", events.to_str().unwrap()]);
    assert!(out.status.success());
    std::fs::write(&scores, &out.stdout).unwrap();
    let from_file = evaluate_json(&events, &labels, &["--scores", scores.to_str().unwrap()]);
    assert_eq!(from_file, report);

    // With the clinical record's care facts taught as the events reach them: the same events,
    // scored otherwise.
    let with_care = evaluate_json(&events, &labels, &["--care-facts", care.to_str().unwrap()]);
    assert_eq!(with_care["events"], report["events"]);
    assert_ne!(with_care["auc"], report["auc"]);

    // The table for people names every kind.
    let out = anomaly(&[
        "evaluate",
        "--events",
        events.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--scores",
        scores.to_str().unwrap(),
    ]);
    let table = String::from_utf8(out.stdout).unwrap();
    for kind in Kind::ALL {
        assert!(table.contains(kind.as_str()), "{table}");
    }
    assert!(table.contains("precision") && table.contains("incidents alerted"));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn evaluate_counts_a_hand_made_log_and_refuses_bad_input() {
    let dir = scratch("tiny");
    let id = |n: u32| format!("00000000-0000-4000-8000-{n:012}");
    let event = |n: u32, seconds: u32| {
        format!(
            r#"{{"id":"{}","time":"2026-03-02T09:00:{seconds:02}Z","actor":{{"id":"u1","role":"practitioner","organization":"Organization/h"}},"patient":"Patient/{n}","action":"read","resource_type":"Observation","count":1,"purpose":"TREAT","outcome":"permit","break_glass":false,"confidentiality":null,"source":{{"ip":"10.0.0.1","user_agent":null}}}}"#,
            id(n)
        )
    };
    // Six events; incident X = events 3 and 4 (alerted at 4), incident Y = event 6 (missed);
    // a false alarm on event 1.
    let events: Vec<String> = (1..=6).map(|n| event(n, n * 5)).collect();
    let labels = [(3, "X"), (4, "X"), (6, "Y")]
        .map(|(n, inc)| format!(r#"{{"id":"{}","incident":"{inc}","kind":"k{inc}"}}"#, id(n)));
    let scores: Vec<String> = (1..=6)
        .map(|n| {
            let (score, alert) = match n {
                1 => (0.9, true),
                4 => (0.99, true),
                6 => (0.6, false),
                _ => (0.0, false),
            };
            format!(r#"{{"id":"{}","score":{score},"alert":{alert}}}"#, id(n))
        })
        .collect();
    let (e, l, s) = (
        dir.join("e.jsonl"),
        dir.join("l.jsonl"),
        dir.join("s.jsonl"),
    );
    std::fs::write(&e, events.join("\n")).unwrap();
    std::fs::write(&l, labels.join("\n")).unwrap();
    std::fs::write(&s, scores.join("\n")).unwrap();
    let args = |extra: &[&str]| {
        let mut a = vec![
            "evaluate",
            "--json",
            "--events",
            e.to_str().unwrap(),
            "--labels",
            l.to_str().unwrap(),
            "--scores",
            s.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        anomaly(&a)
    };
    let out = args(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["events"], 6);
    assert_eq!(r["attack_events"], 3);
    assert_eq!(r["alerts"], 2);
    assert_eq!(r["precision"], 0.5);
    assert!((r["recall"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(r["false_positive_rate"], 1.0 / 3.0);
    assert_eq!(r["incidents_found"], 1);
    assert_eq!(r["incidents"], 2);
    assert_eq!(r["delay_median_seconds"], 5.0);
    assert_eq!(r["per_kind"]["kY"]["found"], 0);
    // A lower threshold finds Y too, with no delay.
    let r: serde_json::Value =
        serde_json::from_slice(&args(&["--threshold", "0.5"]).stdout).unwrap();
    assert_eq!(r["incidents_found"], 2);
    assert_eq!(r["delay_max_seconds"], 5.0);
    assert_eq!(r["delay_median_seconds"], 2.5);

    // A malformed label line: exit 2, naming the file and the line.
    std::fs::write(&l, format!("{}\n{{\"id\": 3}}\n", labels[0])).unwrap();
    let out = args(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("l.jsonl:2:"), "{err}");
    std::fs::remove_dir_all(dir).ok();
}
