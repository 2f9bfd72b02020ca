//! The detector end to end on a simulated hospital it was never tuned on (seed 21; tuning used
//! seeds 1 and 2): six days, so the model warms up (48 h), calibrates (48 h) and then runs on
//! its calibrated threshold. Floors well under what the model reaches, but that a model which
//! stops explaining accesses, or whose calibration drifts, would fail (this run reaches recall
//! 0.96, precision 0.91, FPR 0.37%, 9 of 9 incidents with the model of 2026-12-02 02:10;
//! attacks in the first four days meet a model still learning and the uncalibrated prior).
//! Scores are settled as `anomaly replay` writes them (late alerts marked).

#![allow(clippy::expect_used)] // test code

use std::collections::{HashMap, HashSet};

use anomaly::{
    evaluate,
    model::Detector,
    replay::{settle_all, RecordFacts},
    simulate::{simulate, Params, Simulation},
};

/// Six days of a 60-staff, 1,000-patient hospital, one incident of each kind (seed 21).
fn small_hospital() -> Simulation {
    simulate(&Params {
        days: 6,
        staff: 60,
        patients: 1_000,
        incidents_per_kind: 1,
        ..Params::standard(21)
    })
}

/// The simulation's labels as `anomaly evaluate` reads them.
fn labels_of(sim: &Simulation) -> Vec<evaluate::Label> {
    sim.labels
        .iter()
        .map(|l| evaluate::Label {
            id: l.id,
            incident: l.incident.clone(),
            kind: l.kind.clone(),
        })
        .collect()
}

/// Events as the JSON lines a log file holds.
fn jsonl_of(events: &[custodian_events::AccessEvent]) -> Vec<u8> {
    let mut jsonl = Vec::new();
    for e in events {
        serde_json::to_writer(&mut jsonl, e).expect("json");
        jsonl.push(b'\n');
    }
    jsonl
}

#[test]
fn a_small_simulated_hospital_is_caught_within_floors() {
    let sim = small_hospital();
    let labels: HashMap<_, _> = sim.labels.iter().map(|l| (l.id, &l.incident)).collect();
    let mut detector = Detector::default();
    let (mut tp, mut fp, mut fn_, mut tn) = (0u64, 0u64, 0u64, 0u64);
    let mut incidents = HashSet::new();
    let mut found = HashSet::new();
    // As `anomaly replay` settles them: late alerts (events an alert took into its incident,
    // alerts that waited for an explanation and found none) marked.
    let settled = settle_all(&mut detector, &sim.events);
    assert_eq!(settled.len(), sim.events.len());
    for (scored, _) in &settled {
        match (labels.get(&scored.id), scored.alert) {
            (Some(incident), true) => {
                tp += 1;
                incidents.insert(*incident);
                found.insert(*incident);
            }
            (Some(incident), false) => {
                fn_ += 1;
                incidents.insert(*incident);
            }
            (None, true) => fp += 1,
            (None, false) => tn += 1,
        }
    }
    let recall = tp as f64 / (tp + fn_) as f64;
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let fpr = fp as f64 / (fp + tn) as f64;
    let summary = format!(
        "recall {recall:.3} precision {precision:.3} fpr {fpr:.4} incidents {}/{}",
        found.len(),
        incidents.len()
    );
    eprintln!("{summary}");
    assert!(recall >= 0.85, "{summary}");
    assert!(precision >= 0.80, "{summary}");
    assert!(fpr <= 0.006, "{summary}");
    assert!(found.len() * 10 >= incidents.len() * 8, "{summary}");
    assert_eq!(
        detector.calibration().0,
        anomaly::model::Phase::Calibrated,
        "{summary}"
    );
}

/// A restart resumes from the saved state: a detector decoded from a snapshot taken mid-stream
/// (calibrated, with alerts waiting) scores the rest of the stream exactly as the one that
/// never stopped, and raises the same waiting alerts.
#[test]
fn a_detector_restored_from_its_snapshot_scores_as_if_it_never_stopped() {
    let sim = simulate(&Params {
        days: 5,
        staff: 40,
        patients: 500,
        incidents_per_kind: 1,
        ..Params::standard(22)
    });
    let config = anomaly::model::ModelConfig::default();
    let mut running = Detector::with_config(0.8, config);
    let from = sim.events.len() * 4 / 5;
    let mut cut = None;
    for (i, event) in sim.events.iter().enumerate() {
        running.score(event);
        if i >= from && running.waiting() > 0 {
            cut = Some(i + 1);
            break;
        }
    }
    let cut = cut.expect("an alert waiting in the last fifth of the stream");
    assert_eq!(running.calibration().0, anomaly::model::Phase::Calibrated);
    let bytes = running.encode_snapshot().expect("encoded");
    let mut restored = Detector::decode_snapshot(&bytes, 0.8, config).expect("decoded");
    assert_eq!(restored.calibration(), running.calibration());
    assert_eq!(restored.waiting(), running.waiting());
    assert_eq!(restored.observed(), running.observed());
    let mut alerts = 0;
    for event in &sim.events[cut..] {
        let (a, b) = (running.score(event), restored.score(event));
        assert_eq!(a, b, "event {}", event.id);
        alerts += usize::from(a.alert);
        assert_eq!(running.take_matured(), restored.take_matured());
    }
    assert!(alerts > 0);
    assert_eq!(running.finish(), restored.finish());

    // Another version's snapshot, or a damaged one, is refused (the service then relearns).
    let mut other = bytes.clone();
    other[3] ^= 0xff;
    assert!(Detector::decode_snapshot(&other, 0.8, config).is_err());
    assert!(Detector::decode_snapshot(&bytes[..bytes.len() / 2], 0.8, config).is_err());
    assert!(Detector::decode_snapshot(&[], 0.8, config).is_err());
}

/// The same hospital with what its clinical record says (care facts, and `EMP` on the staff
/// who are patients), taught as `anomaly evaluate --care-facts` teaches them: recall at least
/// as good as from the events alone, precision within the calibration's band, every incident
/// found.
#[test]
fn the_clinical_record_lifts_the_small_hospital() {
    let sim = small_hospital();
    let jsonl = jsonl_of(&sim.events);
    let events = evaluate::read_events("events", jsonl.as_slice()).expect("events");
    let labels = labels_of(&sim);
    let report = |facts: RecordFacts| {
        let scores = evaluate::detect_with_care("events", &jsonl, Detector::default(), facts)
            .expect("scores");
        evaluate::evaluate(&events, &labels, &scores, None).expect("report")
    };
    let alone = report(RecordFacts::default());
    let with_record = report(RecordFacts {
        care: sim.care.clone(),
        labels: sim.patient_labels.clone(),
    });
    let summary = format!(
        "alone: recall {:?} precision {:?} incidents {}/{}; with the record: recall {:?} precision {:?} incidents {}/{}",
        alone.recall, alone.precision, alone.incidents_found, alone.incidents,
        with_record.recall, with_record.precision, with_record.incidents_found, with_record.incidents
    );
    eprintln!("{summary}");
    assert!(with_record.recall.unwrap_or(0.0) >= 0.90, "{summary}");
    assert!(with_record.precision.unwrap_or(0.0) >= 0.85, "{summary}");
    assert_eq!(
        with_record.incidents_found, with_record.incidents,
        "{summary}"
    );
    // The threshold is calibrated to a false-positive rate in both runs: what the record
    // explains lowers the raw scores of benign traffic and with them the threshold, so precision
    // moves within a band either way (37 simulated hospitals: lower with the record by 0.01 to
    // 0.06 on 7, higher on others); recall must not fall.
    let at_least =
        |a: Option<f64>, b: Option<f64>, by: f64| a.unwrap_or(0.0) + by >= b.unwrap_or(0.0);
    assert!(
        at_least(with_record.recall, alone.recall, 0.01)
            && at_least(with_record.precision, alone.precision, 0.02),
        "{summary}"
    );
}

/// A hospital's log merged from several servers is ordered only to within seconds: the events
/// of one search interleave with the actor's other requests. Shuffled within ±3 s, the same
/// hospital scores about as well (before requests were told apart across interleaving, such a
/// shuffle made every list member a "first patient" and every event a new search: false
/// alerts rose fivefold on a simulated 120-staff hospital).
#[test]
fn a_log_a_few_seconds_out_of_order_scores_about_as_well() {
    // A 120-staff hospital's ward lists and searches, five days.
    let sim = simulate(&Params {
        days: 5,
        incidents_per_kind: 1,
        ..Params::standard(23)
    });
    let labels = labels_of(&sim);
    let report = |events: &[custodian_events::AccessEvent]| {
        let jsonl = jsonl_of(events);
        let refs = evaluate::read_events("events", jsonl.as_slice()).expect("events");
        let scores = evaluate::detect_with_care(
            "events",
            &jsonl,
            Detector::default(),
            RecordFacts::default(),
        )
        .expect("scores");
        evaluate::evaluate(&refs, &labels, &scores, None).expect("report")
    };
    let ordered = report(&sim.events);
    // A fixed linear congruential draw: the same shuffle every run.
    let mut state = 21u64;
    let mut jittered: Vec<(i64, custodian_events::AccessEvent)> = sim
        .events
        .iter()
        .map(|e| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let jitter = (state >> 33) as i64 % 6_001 - 3_000;
            (e.time.timestamp_millis() + jitter, e.clone())
        })
        .collect();
    jittered.sort_by_key(|(t, _)| *t);
    let moved = jittered
        .iter()
        .zip(&sim.events)
        .filter(|((_, a), b)| a.id != b.id)
        .count();
    let shuffled: Vec<_> = jittered.into_iter().map(|(_, e)| e).collect();
    let shuffled = report(&shuffled);
    let summary = format!(
        "{moved} of {} events moved; ordered: fp {} recall {:?} incidents {}; shuffled: fp {} recall {:?} incidents {}",
        sim.events.len(),
        ordered.false_positives, ordered.recall, ordered.incidents_found,
        shuffled.false_positives, shuffled.recall, shuffled.incidents_found
    );
    eprintln!("{summary}");
    assert!(moved * 4 >= sim.events.len(), "{summary}");
    assert!(
        shuffled.false_positives * 10 <= ordered.false_positives * 13 + 100,
        "{summary}"
    );
    assert!(
        shuffled.recall.unwrap_or(0.0) + 0.05 >= ordered.recall.unwrap_or(0.0),
        "{summary}"
    );
    assert!(
        shuffled.incidents_found + 1 >= ordered.incidents_found,
        "{summary}"
    );
}
