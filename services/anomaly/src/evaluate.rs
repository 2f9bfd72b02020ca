//! `anomaly evaluate --events FILE --labels FILE [--scores FILE] [--threshold X] [--json]`:
//! how well a detector finds the labelled incidents of an access log (from `anomaly simulate`,
//! or any log with a labels file).
//!
//! Without `--scores` the events are replayed through the service's [`crate::model::Detector`]
//! by [`crate::replay::replay_with`], exactly as `anomaly replay` would (same environment
//! settings: `ANOMALY_ALERT_THRESHOLD` and the model's); with `--scores` the replay
//! output of any scorer is read instead (one `{"id","score","alert"}` line per event). With
//! `--threshold` an event alerts when its score reaches it; otherwise the `alert` field (or the
//! detector's threshold) decides. `--parameters global.json` replays with a federated model's
//! parameters imported (see [`crate::federated`]).
//!
//! Labels are JSON lines `{"id": "<event id>", "incident": "...", "kind": "..."}`, one per
//! attack event; unlisted events are benign. An incident is found when at least one of its
//! events alerts; its delay is the event time from its first event to its first alert (for an
//! event that alerted late, taken into an incident by a later alert, the time of that alert:
//! its line's `alerted_at`).
//!
//! It is a report: exit 0 whatever the figures; 2 on bad input (with the file and line), 64 on
//! bad arguments.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt::Write as _,
    io::{self, BufRead, Write as _},
    path::{Path, PathBuf},
    process::ExitCode,
};

use chrono::{DateTime, Utc};
use custodian_events::{deserialize_foreign_event_id, AccessEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    configuration::{model_config_from_env, threshold_from_env},
    model::{Detector, GlobalParameters, ModelConfig},
    replay::{replay_detector, RecordFacts, ReplayError, ReplayOptions},
};

/// The false-positive rate the ranked recall is read at.
pub const RANKED_FPR: f64 = 0.005;

#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("{file}:{line}: {reason}")]
    Malformed {
        file: String,
        line: u64,
        reason: String,
    },
    #[error("{file}: {reason}")]
    Mismatch { file: String, reason: String },
    #[error("cannot read {file}: {source}")]
    Io { file: String, source: io::Error },
}

/// One attack event's label.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Label {
    /// As the events file wrote it: a UUID or another system's id ([`custodian_events::foreign_event_id`]).
    #[serde(deserialize_with = "deserialize_foreign_event_id")]
    pub id: Uuid,
    pub incident: String,
    pub kind: String,
}

/// One line of replay output.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct ScoreLine {
    #[serde(deserialize_with = "deserialize_foreign_event_id")]
    pub id: Uuid,
    pub score: f64,
    pub alert: bool,
    /// For an event that alerted late (taken into an incident by a later alert), the event
    /// time of that alert: the delay counts to it.
    #[serde(default)]
    pub alerted_at: Option<DateTime<Utc>>,
}

/// What the evaluation needs of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef {
    pub id: Uuid,
    pub time: DateTime<Utc>,
}

/// Recall of one kind of incident.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KindReport {
    pub incidents: usize,
    pub found: usize,
    pub incident_recall: f64,
    pub attack_events: usize,
    pub alerted_events: usize,
}

/// One incident's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentReport {
    pub incident: String,
    pub kind: String,
    pub events: usize,
    pub alerted: usize,
    pub first: DateTime<Utc>,
    /// Seconds of event time from the first event to the first alerted one.
    pub delay_seconds: Option<f64>,
    pub max_score: f64,
}

/// The figures. Ratios with an empty denominator are `None` (`null` in JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub events: usize,
    pub attack_events: usize,
    pub benign_events: usize,
    pub alerts: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    pub false_positive_rate: Option<f64>,
    pub incidents: usize,
    pub incidents_found: usize,
    pub delay_median_seconds: Option<f64>,
    pub delay_max_seconds: Option<f64>,
    /// Area under the ROC curve of the scores (attack vs benign events), ties counted half.
    pub auc: Option<f64>,
    /// Recall of attack events at the best threshold whose false-positive rate is at most
    /// [`RANKED_FPR`]: what the scores could do with a calibrated threshold.
    pub ranked_recall_at_fpr: Option<f64>,
    pub per_kind: BTreeMap<String, KindReport>,
    pub per_incident: Vec<IncidentReport>,
}

fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The evaluation proper. `scores` must hold exactly one line per event; with `threshold`,
/// alerts are `score >= threshold`, else each line's `alert`.
pub fn evaluate(
    events: &[EventRef],
    labels: &[Label],
    scores: &[ScoreLine],
    threshold: Option<f64>,
) -> Result<Report, EvaluateError> {
    let by_id: HashMap<Uuid, ScoreLine> = scores.iter().map(|s| (s.id, *s)).collect();
    if by_id.len() != scores.len() {
        return Err(EvaluateError::Mismatch {
            file: "scores".into(),
            reason: "an event id is scored more than once".into(),
        });
    }
    let known: HashSet<Uuid> = events.iter().map(|e| e.id).collect();
    if let Some(missing) = events.iter().find(|e| !by_id.contains_key(&e.id)) {
        return Err(EvaluateError::Mismatch {
            file: "scores".into(),
            reason: format!("no score for event {}", missing.id),
        });
    }
    if let Some(extra) = scores.iter().find(|s| !known.contains(&s.id)) {
        return Err(EvaluateError::Mismatch {
            file: "scores".into(),
            reason: format!("score for {} which is not in the events", extra.id),
        });
    }
    let mut label_of: HashMap<Uuid, &Label> = HashMap::new();
    for label in labels {
        if !known.contains(&label.id) {
            return Err(EvaluateError::Mismatch {
                file: "labels".into(),
                reason: format!("label for {} which is not in the events", label.id),
            });
        }
        label_of.insert(label.id, label);
    }
    let alerted = |s: &ScoreLine| match threshold {
        Some(t) => s.score >= t,
        None => s.alert,
    };

    let mut report = Report {
        events: events.len(),
        attack_events: 0,
        benign_events: 0,
        alerts: 0,
        true_positives: 0,
        false_positives: 0,
        precision: None,
        recall: None,
        f1: None,
        false_positive_rate: None,
        incidents: 0,
        incidents_found: 0,
        delay_median_seconds: None,
        delay_max_seconds: None,
        auc: None,
        ranked_recall_at_fpr: None,
        per_kind: BTreeMap::new(),
        per_incident: Vec::new(),
    };
    let mut incidents: BTreeMap<&str, IncidentReport> = BTreeMap::new();
    let mut ranked: Vec<(f64, bool)> = Vec::with_capacity(events.len());
    // Events in time order, so an incident's first (alerted) event is its earliest.
    let mut ordered: Vec<&EventRef> = events.iter().collect();
    ordered.sort_by_key(|e| e.time);
    for event in ordered {
        let Some(score) = by_id.get(&event.id) else {
            continue;
        };
        let alert = alerted(score);
        let label = label_of.get(&event.id);
        ranked.push((score.score, label.is_some()));
        report.alerts += usize::from(alert);
        match label {
            None => {
                report.benign_events += 1;
                report.false_positives += usize::from(alert);
            }
            Some(label) => {
                report.attack_events += 1;
                report.true_positives += usize::from(alert);
                let entry =
                    incidents
                        .entry(label.incident.as_str())
                        .or_insert_with(|| IncidentReport {
                            incident: label.incident.clone(),
                            kind: label.kind.clone(),
                            events: 0,
                            alerted: 0,
                            first: event.time,
                            delay_seconds: None,
                            max_score: 0.0,
                        });
                entry.events += 1;
                entry.max_score = entry.max_score.max(score.score);
                if alert {
                    entry.alerted += 1;
                    let at = score.alerted_at.unwrap_or(event.time).max(event.time);
                    let delay = (at - entry.first).num_milliseconds() as f64 / 1000.0;
                    entry.delay_seconds =
                        Some(entry.delay_seconds.map_or(delay, |d: f64| d.min(delay)));
                }
            }
        }
    }
    report.precision = ratio(report.true_positives, report.alerts);
    report.recall = ratio(report.true_positives, report.attack_events);
    report.f1 = match (report.precision, report.recall) {
        (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
        (Some(_), Some(_)) => Some(0.0),
        _ => None,
    };
    report.false_positive_rate = ratio(report.false_positives, report.benign_events);
    report.incidents = incidents.len();
    let mut delays = Vec::new();
    for incident in incidents.values() {
        let kind = report.per_kind.entry(incident.kind.clone()).or_default();
        kind.incidents += 1;
        kind.attack_events += incident.events;
        kind.alerted_events += incident.alerted;
        if let Some(delay) = incident.delay_seconds {
            kind.found += 1;
            report.incidents_found += 1;
            delays.push(delay);
        }
    }
    for kind in report.per_kind.values_mut() {
        kind.incident_recall = ratio(kind.found, kind.incidents).unwrap_or(0.0);
    }
    delays.sort_by(f64::total_cmp);
    report.delay_median_seconds = median(&delays);
    report.delay_max_seconds = delays.last().copied();
    let (auc, ranked_recall) = ranking(&mut ranked, report.attack_events, report.benign_events);
    report.auc = auc;
    report.ranked_recall_at_fpr = ranked_recall;
    report.per_incident = incidents.into_values().collect();
    Ok(report)
}

/// AUC (Mann-Whitney, ties half) and the recall at the lowest threshold whose false-positive
/// rate stays within [`RANKED_FPR`] (thresholds only between distinct scores).
fn ranking(
    ranked: &mut [(f64, bool)],
    positives: usize,
    negatives: usize,
) -> (Option<f64>, Option<f64>) {
    if positives == 0 || negatives == 0 {
        return (None, None);
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut area = 0.0;
    let mut best_recall = 0.0;
    let mut i = 0;
    while i < ranked.len() {
        // One group of equal scores moves together.
        let (mut gtp, mut gfp) = (0usize, 0usize);
        let score = ranked[i].0;
        while i < ranked.len() && ranked[i].0 == score {
            if ranked[i].1 {
                gtp += 1;
            } else {
                gfp += 1;
            }
            i += 1;
        }
        // Each benign event in the group is outranked by the positives above it, and ties
        // with the positives of its own group count half.
        area += gfp as f64 * (tp as f64 + gtp as f64 / 2.0);
        tp += gtp;
        fp += gfp;
        if fp as f64 / negatives as f64 <= RANKED_FPR {
            best_recall = tp as f64 / positives as f64;
        }
    }
    // `area` counts pairs (positive above negative); AUC is their share.
    let auc = area / (positives as f64 * negatives as f64);
    (Some(auc), Some(best_recall))
}

fn lines<R: BufRead>(
    file: &str,
    reader: R,
) -> impl Iterator<Item = Result<(u64, String), EvaluateError>> + use<R> {
    let file = file.to_string();
    reader
        .lines()
        .enumerate()
        .filter_map(move |(i, line)| match line {
            Ok(l) => crate::jsonl::content(&l).map(|text| Ok((i as u64 + 1, text.to_string()))),
            Err(source) => Some(Err(EvaluateError::Io {
                file: file.clone(),
                source,
            })),
        })
}

/// Parses an events file (each line a full access event, as the detector would get it).
pub fn read_events(file: &str, reader: impl BufRead) -> Result<Vec<EventRef>, EvaluateError> {
    lines(file, reader)
        .map(|line| {
            let (n, l) = line?;
            AccessEvent::parse_lenient(&l)
                .map(|e| EventRef {
                    id: e.id,
                    time: e.time,
                })
                .map_err(|e| EvaluateError::Malformed {
                    file: file.to_string(),
                    line: n,
                    reason: e.to_string(),
                })
        })
        .collect()
}

fn read_json<T: for<'de> Deserialize<'de>>(
    file: &str,
    reader: impl BufRead,
) -> Result<Vec<T>, EvaluateError> {
    lines(file, reader)
        .map(|line| {
            let (n, l) = line?;
            serde_json::from_str(&l).map_err(|e| EvaluateError::Malformed {
                file: file.to_string(),
                line: n,
                reason: e.to_string(),
            })
        })
        .collect()
}

pub fn read_labels(file: &str, reader: impl BufRead) -> Result<Vec<Label>, EvaluateError> {
    read_json(file, reader)
}

pub fn read_scores(file: &str, reader: impl BufRead) -> Result<Vec<ScoreLine>, EvaluateError> {
    let scores: Vec<ScoreLine> = read_json(file, reader)?;
    if let Some((i, s)) = scores
        .iter()
        .enumerate()
        .find(|(_, s)| !(0.0..=1.0).contains(&s.score))
    {
        return Err(EvaluateError::Malformed {
            file: file.to_string(),
            line: i as u64 + 1,
            reason: format!("score {} is outside [0, 1]", s.score),
        });
    }
    Ok(scores)
}

/// Scores `events` (the file's text) with the service's detector, through `anomaly replay`'s
/// own code and with the model settings it would read.
pub fn detect(
    file: &str,
    events: &[u8],
    threshold: f64,
    model: &ModelConfig,
) -> Result<Vec<ScoreLine>, EvaluateError> {
    detect_with(file, events, Detector::with_config(threshold, *model))
}

/// [`detect`] with a given detector (e.g. one that imported federated parameters).
pub fn detect_with(
    file: &str,
    events: &[u8],
    detector: Detector,
) -> Result<Vec<ScoreLine>, EvaluateError> {
    detect_with_care(file, events, detector, RecordFacts::default())
}

/// [`detect_with`], teaching the clinical record's care facts as the events reach them.
pub fn detect_with_care(
    file: &str,
    events: &[u8],
    detector: Detector,
    facts: RecordFacts,
) -> Result<Vec<ScoreLine>, EvaluateError> {
    let mut out = Vec::new();
    let options = ReplayOptions {
        threshold: detector.threshold(),
        skip_malformed: false,
        explain: false,
        care: facts.care,
        labels: facts.labels,
    };
    replay_detector(events, &mut out, io::sink(), &options, detector).map_err(|e| match e {
        ReplayError::Malformed { line, reason } => EvaluateError::Malformed {
            file: file.to_string(),
            line,
            reason,
        },
        ReplayError::Io(source) => EvaluateError::Io {
            file: file.to_string(),
            source,
        },
    })?;
    read_scores("replay output", out.as_slice())
}

fn f(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "n/a".to_string(), |x| format!("{x:.digits$}"))
}

/// The report as a table for people.
pub fn table(report: &Report) -> String {
    let mut s = String::new();
    let seconds = |x: Option<f64>| x.map_or_else(|| "n/a".into(), |x| format!("{x:.0} s"));
    let _ = writeln!(s, "events                  {:>9}", report.events);
    let _ = writeln!(
        s,
        "attack events           {:>9}   in {} incidents",
        report.attack_events, report.incidents
    );
    let _ = writeln!(
        s,
        "alerts                  {:>9}   ({} on attack events, {} on benign)",
        report.alerts, report.true_positives, report.false_positives
    );
    let _ = writeln!(s, "precision               {:>9}", f(report.precision, 3));
    let _ = writeln!(s, "recall (attack events)  {:>9}", f(report.recall, 3));
    let _ = writeln!(s, "F1                      {:>9}", f(report.f1, 3));
    let _ = writeln!(
        s,
        "false-positive rate     {:>9}   ({} of {} benign)",
        f(report.false_positive_rate, 4),
        report.false_positives,
        report.benign_events
    );
    let _ = writeln!(
        s,
        "incidents alerted       {:>9}",
        format!("{} of {}", report.incidents_found, report.incidents)
    );
    let _ = writeln!(
        s,
        "delay to first alert    median {}, max {}",
        seconds(report.delay_median_seconds),
        seconds(report.delay_max_seconds)
    );
    let _ = writeln!(
        s,
        "ranking (scores only)   AUC {}, recall at {}% FPR {}",
        f(report.auc, 3),
        RANKED_FPR * 100.0,
        f(report.ranked_recall_at_fpr, 3)
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<20} {:>9} {:>6} {:>7} {:>8} {:>8}",
        "kind", "incidents", "found", "recall", "events", "alerted"
    );
    for (kind, k) in &report.per_kind {
        let _ = writeln!(
            s,
            "{:<20} {:>9} {:>6} {:>7.2} {:>8} {:>8}",
            kind, k.incidents, k.found, k.incident_recall, k.attack_events, k.alerted_events
        );
    }
    s
}

const USAGE: &str = "usage: anomaly evaluate --events FILE --labels FILE [--scores FILE] [--threshold X] [--json] [--parameters GLOBAL.json] [--care-facts FILE]";

#[derive(Debug, PartialEq)]
struct Args {
    events: PathBuf,
    labels: PathBuf,
    scores: Option<PathBuf>,
    threshold: Option<f64>,
    json: bool,
    parameters: Option<PathBuf>,
    /// Care facts to teach while replaying (`anomaly simulate --out-care`).
    care: Option<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let (mut events, mut labels, mut scores, mut threshold, mut json) =
        (None, None, None, None, false);
    let mut parameters = None;
    let mut care = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--events" => events = Some(PathBuf::from(it.next().ok_or("--events needs a file")?)),
            "--labels" => labels = Some(PathBuf::from(it.next().ok_or("--labels needs a file")?)),
            "--scores" => scores = Some(PathBuf::from(it.next().ok_or("--scores needs a file")?)),
            "--threshold" => {
                let raw = it.next().ok_or("--threshold needs a value")?;
                let t: f64 = raw
                    .parse()
                    .map_err(|_| format!("--threshold {raw:?} is not a number"))?;
                if !(0.0..=1.0).contains(&t) {
                    return Err("--threshold must be within [0, 1]".into());
                }
                threshold = Some(t);
            }
            "--json" => json = true,
            "--parameters" => {
                parameters = Some(PathBuf::from(it.next().ok_or("--parameters needs a file")?));
            }
            "--care-facts" => {
                care = Some(PathBuf::from(it.next().ok_or("--care-facts needs a file")?));
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        events: events.ok_or("--events is required")?,
        labels: labels.ok_or("--labels is required")?,
        scores,
        threshold,
        json,
        parameters,
        care,
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, EvaluateError> {
    std::fs::read(path).map_err(|source| EvaluateError::Io {
        file: path.display().to_string(),
        source,
    })
}

fn run(args: &Args) -> Result<Report, EvaluateError> {
    let events_name = args.events.display().to_string();
    let events_text = read_file(&args.events)?;
    let events = read_events(&events_name, events_text.as_slice())?;
    let labels_name = args.labels.display().to_string();
    let labels = read_labels(&labels_name, read_file(&args.labels)?.as_slice())?;
    let (scores, threshold) = match &args.scores {
        Some(path) => {
            let name = path.display().to_string();
            (
                read_scores(&name, read_file(path)?.as_slice())?,
                args.threshold,
            )
        }
        None => {
            let threshold = match args.threshold {
                Some(t) => t,
                None => threshold_from_env().map_err(|e| EvaluateError::Mismatch {
                    file: "environment".into(),
                    reason: e.to_string(),
                })?,
            };
            let model = model_config_from_env().map_err(|e| EvaluateError::Mismatch {
                file: "environment".into(),
                reason: e.to_string(),
            })?;
            let mut detector = Detector::with_config(threshold, model);
            if let Some(path) = &args.parameters {
                let name = path.display().to_string();
                let parameters: GlobalParameters = serde_json::from_slice(&read_file(path)?)
                    .map_err(|e| EvaluateError::Mismatch {
                        file: name.clone(),
                        reason: e.to_string(),
                    })?;
                detector
                    .import_parameters(&parameters)
                    .map_err(|e| EvaluateError::Mismatch {
                        file: name,
                        reason: e.to_string(),
                    })?;
            }
            let care = match &args.care {
                Some(path) => crate::replay::read_care_facts(path).map_err(|reason| {
                    EvaluateError::Mismatch {
                        file: path.display().to_string(),
                        reason,
                    }
                })?,
                None => RecordFacts::default(),
            };
            (
                detect_with_care(&events_name, &events_text, detector, care)?,
                None,
            )
        }
    };
    evaluate(&events, &labels, &scores, threshold)
}

/// The `evaluate` subcommand; `args` are those after `evaluate`.
pub fn main(args: &[String]) -> ExitCode {
    let args = match parse_args(args) {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if e.is_empty() { 0 } else { 64 });
        }
    };
    match run(&args) {
        Ok(report) => {
            let text = if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(json) => json + "\n",
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                table(&report)
            };
            // A reader that stops early (`| head`) is not an error; print! would panic.
            match io::stdout().lock().write_all(text.as_bytes()) {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
    }

    fn label(n: u128, incident: &str, kind: &str) -> Label {
        Label {
            id: id(n),
            incident: incident.into(),
            kind: kind.into(),
        }
    }

    /// Ten events: 1-4 benign, 5-7 incident A (snoop), 8-9 incident B (burst), 10 benign.
    /// Alerts on 2 (benign), 6 and 7 (A), none of B.
    fn tiny() -> (Vec<EventRef>, Vec<Label>, Vec<ScoreLine>) {
        let events = (1..=10)
            .map(|n| EventRef {
                id: id(n),
                time: at(n as i64 * 10),
            })
            .collect();
        let labels = vec![
            label(5, "A", "snoop-vip"),
            label(6, "A", "snoop-vip"),
            label(7, "A", "snoop-vip"),
            label(8, "B", "denied-burst"),
            label(9, "B", "denied-burst"),
        ];
        let scores = (1..=10)
            .map(|n| {
                let score = match n {
                    2 => 0.9,
                    6 => 0.85,
                    7 => 0.95,
                    8 | 9 => 0.5,
                    _ => 0.1,
                };
                ScoreLine {
                    id: id(n),
                    score,
                    alert: score >= 0.8,
                    alerted_at: None,
                }
            })
            .collect();
        (events, labels, scores)
    }

    #[test]
    fn arithmetic_on_a_tiny_file() {
        let (events, labels, scores) = tiny();
        let r = evaluate(&events, &labels, &scores, None).unwrap();
        assert_eq!((r.events, r.attack_events, r.benign_events), (10, 5, 5));
        assert_eq!((r.alerts, r.true_positives, r.false_positives), (3, 2, 1));
        assert!((r.precision.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert!((r.recall.unwrap() - 0.4).abs() < 1e-9);
        assert!((r.false_positive_rate.unwrap() - 0.2).abs() < 1e-9);
        assert_eq!((r.incidents, r.incidents_found), (2, 1));
        // A starts at event 5 (50 s), first alert at event 6 (60 s).
        assert_eq!(r.delay_median_seconds, Some(10.0));
        assert_eq!(r.delay_max_seconds, Some(10.0));
        assert_eq!(r.per_kind["snoop-vip"].found, 1);
        assert_eq!(r.per_kind["denied-burst"].found, 0);
        assert_eq!(r.per_kind["denied-burst"].incident_recall, 0.0);
        // Ranking: positives 0.95, 0.85, 0.5, 0.5, 0.1 against negatives 0.9, 0.1 x4.
        // Pairs won: 0.95 beats 5; 0.85 beats 4; each 0.5 beats 4; 0.1 ties 4 (half).
        let auc = (5.0 + 4.0 + 4.0 + 4.0 + 2.0) / 25.0;
        assert!((r.auc.unwrap() - auc).abs() < 1e-9, "{:?}", r.auc);
        // No threshold keeps 0 of 5 benign at <= 0.5%: only above 0.95, where recall is 1/5.
        assert_eq!(r.ranked_recall_at_fpr, Some(0.2));
    }

    #[test]
    fn a_threshold_overrides_the_alert_field() {
        let (events, labels, scores) = tiny();
        let r = evaluate(&events, &labels, &scores, Some(0.5)).unwrap();
        assert_eq!((r.alerts, r.true_positives, r.false_positives), (5, 4, 1));
        assert_eq!(r.incidents_found, 2);
        // B: both its events alert, delay 0; A: 10 s.
        assert_eq!(r.delay_median_seconds, Some(5.0));
        assert_eq!(r.delay_max_seconds, Some(10.0));
    }

    #[test]
    fn a_late_alert_counts_its_delay_to_when_it_was_raised() {
        let (events, labels, mut scores) = tiny();
        // A's first event (50 s) was taken into the incident by an alert raised at 75 s; its
        // own first alert on its merits is at 60 s: the delay is 10 s, not 0.
        scores[4].alert = true;
        scores[4].alerted_at = Some(at(75));
        let r = evaluate(&events, &labels, &scores, None).unwrap();
        assert_eq!(r.true_positives, 3);
        assert_eq!(r.delay_median_seconds, Some(10.0));
        // Alone (the 60 s and 70 s alerts gone), the late one's delay is 25 s.
        scores[5].alert = false;
        scores[6].alert = false;
        let r = evaluate(&events, &labels, &scores, None).unwrap();
        assert_eq!(r.delay_median_seconds, Some(25.0));
    }

    #[test]
    fn nothing_alerted_has_no_precision() {
        let (events, labels, scores) = tiny();
        let r = evaluate(&events, &labels, &scores, Some(1.0)).unwrap();
        assert_eq!(r.alerts, 0);
        assert_eq!(r.precision, None);
        assert_eq!(r.recall, Some(0.0));
        assert_eq!(r.delay_median_seconds, None);
        assert!(table(&r).contains("n/a"));
    }

    #[test]
    fn mismatched_inputs_are_refused() {
        let (events, labels, mut scores) = tiny();
        scores.pop();
        assert!(matches!(
            evaluate(&events, &labels, &scores, None),
            Err(EvaluateError::Mismatch { .. })
        ));
        let (events, mut labels, scores) = tiny();
        labels.push(label(99, "C", "enumeration"));
        let err = evaluate(&events, &labels, &scores, None).unwrap_err();
        assert!(err.to_string().contains("not in the events"), "{err}");
    }

    #[test]
    fn another_systems_event_ids_join_events_labels_and_scores() {
        let events = r#"{"id":"evt-7","time":"2026-03-02T08:00:00Z","actor":{"id":"u1","role":"practitioner"},"action":"read","outcome":"permit"}
{"id":8,"time":"2026-03-02T08:00:05Z","actor":{"id":"u1","role":"practitioner"},"action":"read","outcome":"permit"}"#;
        let events = read_events("e.jsonl", events.as_bytes()).expect("events");
        let labels = read_labels(
            "l.jsonl",
            r#"{"id":"evt-7","incident":"A","kind":"x"}"#.as_bytes(),
        )
        .expect("labels");
        let scores = read_scores(
            "s.jsonl",
            "{\"id\":\"evt-7\",\"score\":0.9,\"alert\":true}\n{\"id\":8,\"score\":0.1,\"alert\":false}"
                .as_bytes(),
        )
        .expect("scores");
        assert_eq!(labels[0].id, events[0].id);
        assert_eq!((scores[0].id, scores[1].id), (events[0].id, events[1].id));
        assert_ne!(events[0].id, events[1].id);
        assert!(read_labels(
            "l.jsonl",
            r#"{"id":null,"incident":"A","kind":"x"}"#.as_bytes()
        )
        .is_err());
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let text = "{\"id\":\"00000000-0000-0000-0000-000000000001\",\"incident\":\"A\",\"kind\":\"x\"}\n\nnot json\n";
        let err = read_labels("l.jsonl", text.as_bytes()).unwrap_err();
        assert!(err.to_string().starts_with("l.jsonl:3:"), "{err}");
        let err = read_scores(
            "s.jsonl",
            "{\"id\":\"00000000-0000-0000-0000-000000000001\",\"score\":1.5,\"alert\":true}"
                .as_bytes(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
    }

    #[test]
    fn arguments() {
        let a = |s: &[&str]| parse_args(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let args = a(&[
            "--events",
            "e",
            "--labels",
            "l",
            "--json",
            "--threshold",
            "0.7",
        ])
        .unwrap();
        assert_eq!(args.threshold, Some(0.7));
        assert!(args.json);
        assert!(a(&["--events", "e"]).is_err());
        assert!(a(&["--events", "e", "--labels", "l", "--threshold", "7"]).is_err());
    }
}
