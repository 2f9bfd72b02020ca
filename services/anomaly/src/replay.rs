//! Offline replay: `anomaly replay --events FILE.jsonl` scores a file of access events (one JSON
//! object per line, oldest first) with the same [`Detector`] the service uses and prints one
//! line per event, in order: `{"id": "...", "score": 0.0..1.0, "alert": true|false}`.
//!
//! No database or Redis is needed. The threshold is `ANOMALY_ALERT_THRESHOLD` (default 0.8) or
//! `--threshold X`; the model's calibration comes from `ANOMALY_TARGET_FPR`,
//! `ANOMALY_WARMUP_HOURS` and `ANOMALY_CALIBRATION_HOURS` as in the service. Blank lines are
//! ignored. Lines are read as another system's log may write them
//! ([`AccessEvent::parse_foreign`]: missing detail such as `source` or `count` takes its empty
//! value, a time without an offset is UTC, an id that is not a UUID is scored under one made
//! of it and its line names it as the log wrote it). A malformed line stops the replay: the
//! error goes to stderr with its line number and the exit status is 2, since scores after a
//! dropped event would differ from what the service computed. `--skip-malformed` warns on stderr instead and
//! goes on (the service dead-letters such messages and never scores them either). `-` as the
//! file reads stdin. `--parameters global.json` scores with a federated model's parameters
//! (see [`crate::federated`]).

use std::{
    collections::{HashMap, VecDeque},
    fs::File,
    io::{self, BufRead, BufReader, BufWriter, Write},
    path::PathBuf,
    process::ExitCode,
    sync::mpsc,
};

use chrono::{DateTime, Utc};
use custodian_events::AccessEvent;
use serde::Serialize;
use uuid::Uuid;

use crate::{
    configuration::{model_config_from_env, threshold_from_env},
    model::{
        incidents::MAX_REACH, CareFact, Contribution, Detector, Matured, ModelConfig, Scored,
        LONGEST_WAIT,
    },
};

/// How to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayOptions {
    pub threshold: f64,
    /// Warn about malformed lines and go on instead of stopping.
    pub skip_malformed: bool,
    /// Add each score's explanation and contributions to its line (`--explain`).
    pub explain: bool,
    /// Care facts from the clinical record (`--care-facts`), by start: each is taught when the
    /// events reach its start, as records would publish it.
    pub care: Vec<CareFact>,
    /// Patients' labels from the same file, taught before the first event.
    pub labels: Vec<PatientLabel>,
}

/// A patient's labels in a care facts file (`{"patient": "Patient/..", "labels": ["EMP"]}`):
/// her Patient resource's `meta.security` ActCode codes, as records publishes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PatientLabel {
    pub patient: String,
    pub labels: Vec<String>,
}

/// What a care facts file holds: care facts by start, and patients' labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordFacts {
    pub care: Vec<CareFact>,
    pub labels: Vec<PatientLabel>,
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    pub scored: u64,
    pub alerts: u64,
    pub skipped: u64,
    /// Late alerts raised after their event's line was written (none while every wait is
    /// within [`LONGEST_WAIT`] and at most [`MAX_HELD`] lines wait): alerts the output lost.
    pub late_lost: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("line {line}: malformed access event: {reason}")]
    Malformed { line: u64, reason: String },
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// An output line's id: the event's UUID, or its id as the log wrote it.
#[derive(Serialize)]
#[serde(untagged)]
enum LineId {
    Uuid(Uuid),
    Written(serde_json::Value),
}

#[derive(Serialize)]
struct Line<'a> {
    id: LineId,
    score: f64,
    alert: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    alerted_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explanation: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contributions: Option<&'a [Contribution]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    incident: Option<u64>,
}

/// Scores held back for as long as a late alert can come (see [`LateAlerts::for_detector`]), so that an alert can still
/// take the events just before it into its incident ([`Scored::joined`]), and an alert that
/// waited for an explanation and found none ([`Matured`]) can still be marked, before they are
/// written: those lines then say `"alert": true`, a score of at least the threshold, and
/// `alerted_at`, the event time the alert was raised. Lines leave in input order.
#[derive(Debug)]
pub struct LateAlerts {
    threshold: f64,
    /// Seconds of event time a line is held.
    hold: i64,
    held: VecDeque<(DateTime<Utc>, Scored, Option<DateTime<Utc>>)>,
    /// Position in `held` of each held id, offset by `released`.
    index: HashMap<Uuid, u64>,
    released: u64,
    /// Late alerts whose line had already left.
    lost: u64,
}

/// Scores `events` (in order) as `anomaly replay` writes them: late alerts marked, each with
/// the event time it was raised at.
pub fn settle_all(
    detector: &mut Detector,
    events: &[AccessEvent],
) -> Vec<(Scored, Option<DateTime<Utc>>)> {
    let mut held = LateAlerts::for_detector(detector);
    let mut settled = Vec::with_capacity(events.len());
    for event in events {
        let scored = detector.score(event);
        held.matured(&detector.take_matured());
        settled.extend(held.push(event.time, scored));
    }
    held.matured(&detector.finish());
    settled.extend(held.finish());
    settled
}

/// Lines held at most, whatever the event times (a file out of time order cannot hold more).
pub const MAX_HELD: usize = 500_000;

impl LateAlerts {
    /// For a detector: held as long as the longest a late alert can come ([`LONGEST_WAIT`],
    /// whatever it waits for: its grace period or a visit's, a quiet look, a young one, a
    /// session's note, a glass broken alone) and reach back into its incident ([`MAX_REACH`]):
    /// the events a late alert takes in are marked as live ones are.
    pub fn for_detector(detector: &Detector) -> Self {
        Self {
            threshold: detector.threshold(),
            // A configured grace period or visit is at most `MAX_GRACE`, within the longest wait.
            hold: LONGEST_WAIT + MAX_REACH + 1,
            held: VecDeque::new(),
            index: HashMap::new(),
            released: 0,
            lost: 0,
        }
    }

    /// Marks a held line as alerting late, at `at`, in `incident`.
    fn late(&mut self, id: &Uuid, at: DateTime<Utc>, score: f64, incident: Option<u64>) {
        let Some(&position) = self.index.get(id) else {
            self.lost += 1;
            return;
        };
        if let Some((_, earlier, late)) = self.held.get_mut((position - self.released) as usize) {
            if !earlier.alert {
                earlier.alert = true;
                earlier.score = earlier.score.max(score).max(self.threshold);
                earlier.incident = incident;
                *late = Some(at);
            }
        }
    }

    /// Marks the lines of alerts that waited out their grace period ([`Detector::take_matured`])
    /// and the events each took into its incident.
    pub fn matured(&mut self, matured: &[Matured]) {
        for m in matured {
            self.late(&m.scored.id, m.at, m.scored.score, m.scored.incident);
            // The line says why it alerted late (a quiet look, a consult with no note), as the
            // live alert does.
            if let Some(&position) = self.index.get(&m.scored.id) {
                if let Some((_, line, _)) = self.held.get_mut((position - self.released) as usize) {
                    line.reasons.clone_from(&m.scored.reasons);
                    line.contributions.clone_from(&m.scored.contributions);
                    line.explanation.clone_from(&m.scored.explanation);
                }
            }
            for id in &m.scored.joined {
                self.late(id, m.at, self.threshold, m.scored.incident);
            }
        }
    }

    /// Adds one event's score (marking the held events it joined) and returns the lines that
    /// no later alert can reach any more.
    pub fn push(
        &mut self,
        time: DateTime<Utc>,
        scored: Scored,
    ) -> Vec<(Scored, Option<DateTime<Utc>>)> {
        for id in &scored.joined {
            self.late(id, time, self.threshold, scored.incident);
        }
        self.index
            .insert(scored.id, self.released + self.held.len() as u64);
        self.held.push_back((time, scored, None));
        let horizon = time - chrono::Duration::seconds(self.hold);
        let mut out = Vec::new();
        while let Some((t, _, _)) = self.held.front() {
            if *t >= horizon && self.held.len() <= MAX_HELD {
                break;
            }
            out.extend(self.pop());
        }
        out
    }

    /// Late alerts that came after their line had left (see [`ReplaySummary::late_lost`]).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Everything still held, in input order (at the end of the input).
    pub fn finish(&mut self) -> Vec<(Scored, Option<DateTime<Utc>>)> {
        std::iter::from_fn(|| self.pop()).collect()
    }

    fn pop(&mut self) -> Option<(Scored, Option<DateTime<Utc>>)> {
        let (_, scored, late) = self.held.pop_front()?;
        self.released += 1;
        if self.index.get(&scored.id) == Some(&(self.released - 1)) {
            self.index.remove(&scored.id);
        }
        Some((scored, late))
    }
}

/// Scores every event of `input` and writes one JSON line per event to `output`. Warnings about
/// skipped lines go to `warnings`.
pub fn replay(
    input: impl BufRead + Send,
    output: impl Write,
    warnings: impl Write,
    options: &ReplayOptions,
) -> Result<ReplaySummary, ReplayError> {
    replay_with(input, output, warnings, options, &ModelConfig::default())
}

/// [`replay`] with the model's calibration settings (`ANOMALY_TARGET_FPR`,
/// `ANOMALY_WARMUP_HOURS`, `ANOMALY_CALIBRATION_HOURS`, as the service reads them).
pub fn replay_with(
    input: impl BufRead + Send,
    output: impl Write,
    warnings: impl Write,
    options: &ReplayOptions,
    model: &ModelConfig,
) -> Result<ReplaySummary, ReplayError> {
    let detector = Detector::with_config(options.threshold, *model);
    replay_detector(input, output, warnings, options, detector).map(|(summary, _)| summary)
}

/// [`replay`] with a given detector (e.g. one that imported federated parameters); returns it
/// as the events left it.
pub fn replay_detector(
    input: impl BufRead + Send,
    mut output: impl Write,
    mut warnings: impl Write,
    options: &ReplayOptions,
    mut detector: Detector,
) -> Result<(ReplaySummary, Detector), ReplayError> {
    for patient in &options.labels {
        detector.learn_patient_labels(&patient.patient, &patient.labels);
    }
    let mut summary = ReplaySummary::default();
    detector.explain_all(options.explain);
    let mut held = LateAlerts::for_detector(&detector);
    let mut care = options.care.iter().peekable();
    // Ids another system wrote otherwise than as this crate's UUIDs, until their line is out.
    let mut written_ids: HashMap<Uuid, serde_json::Value> = HashMap::new();
    // Parsing is about half the work: a second thread parses while this one scores, in order.
    std::thread::scope(|scope| -> Result<(), ReplayError> {
        let (batches, parsed) = mpsc::sync_channel::<io::Result<Vec<Parsed>>>(4);
        scope.spawn(move || parse_lines(input, &batches));
        for batch in parsed {
            for item in batch? {
                let event = match item {
                    Parsed::Event(event, written) => {
                        if let Some(written) = written {
                            written_ids.insert(event.id, written);
                        }
                        event
                    }
                    Parsed::Malformed { line, reason } if options.skip_malformed => {
                        writeln!(warnings, "warning: line {line} skipped: {reason}")?;
                        summary.skipped += 1;
                        continue;
                    }
                    Parsed::Malformed { line, reason } => {
                        return Err(ReplayError::Malformed { line, reason })
                    }
                };
                while let Some(fact) = care.next_if(|f| f.start <= event.time) {
                    detector.learn_relationship(fact);
                }
                let scored = detector.score(&event);
                summary.scored += 1;
                held.matured(&detector.take_matured());
                for (scored, late) in held.push(event.time, scored) {
                    let written = written_ids.remove(&scored.id);
                    write_line(&mut output, &mut summary, options, &scored, late, written)?;
                }
            }
        }
        Ok(())
    })?;
    held.matured(&detector.finish());
    for (scored, late) in held.finish() {
        let written = written_ids.remove(&scored.id);
        write_line(&mut output, &mut summary, options, &scored, late, written)?;
    }
    summary.late_lost = held.lost();
    output.flush()?;
    Ok((summary, detector))
}

/// One line of the input, parsed.
enum Parsed {
    /// The event, and its id as the log wrote it when that was not this crate's form of a UUID.
    Event(Box<AccessEvent>, Option<serde_json::Value>),
    Malformed {
        line: u64,
        reason: String,
    },
}

/// Lines parsed per batch sent to the scoring thread.
const PARSE_BATCH: usize = 1024;

/// Parses `input` line by line (blank lines skipped) into batches; stops at the first read
/// error (sent on) or when the receiver is gone.
fn parse_lines(mut input: impl BufRead, batches: &mpsc::SyncSender<io::Result<Vec<Parsed>>>) {
    let mut line = String::new();
    let mut number = 0u64;
    let mut batch = Vec::with_capacity(PARSE_BATCH);
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                let _ = batches.send(Err(e));
                return;
            }
        }
        number += 1;
        let Some(text) = crate::jsonl::content(&line) else {
            continue;
        };
        batch.push(match AccessEvent::parse_foreign(text) {
            Ok((event, written)) => Parsed::Event(Box::new(event), written),
            Err(e) => Parsed::Malformed {
                line: number,
                reason: e.to_string(),
            },
        });
        if batch.len() == PARSE_BATCH
            && batches
                .send(Ok(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(PARSE_BATCH),
                )))
                .is_err()
        {
            return;
        }
    }
    if !batch.is_empty() {
        let _ = batches.send(Ok(batch));
    }
}

fn write_line(
    output: &mut impl Write,
    summary: &mut ReplaySummary,
    options: &ReplayOptions,
    scored: &Scored,
    alerted_at: Option<DateTime<Utc>>,
    written: Option<serde_json::Value>,
) -> Result<(), ReplayError> {
    summary.alerts += u64::from(scored.alert);
    let json = serde_json::to_string(&Line {
        id: written.map_or(LineId::Uuid(scored.id), LineId::Written),
        score: scored.score,
        alert: scored.alert,
        alerted_at,
        explanation: options.explain.then_some(scored.explanation.as_str()),
        contributions: options.explain.then_some(scored.contributions.as_slice()),
        incident: scored.incident.filter(|_| options.explain),
    })
    .map_err(io::Error::other)?;
    writeln!(output, "{json}")?;
    Ok(())
}

/// Bytes read from the events file at a time.
const READ_BUFFER: usize = 1 << 20;

const USAGE: &str = "usage: anomaly replay --events FILE.jsonl [--threshold X] [--skip-malformed] [--explain] [--parameters GLOBAL.json] [--care-facts FILE.jsonl]";

#[derive(Debug, PartialEq)]
struct Args {
    events: PathBuf,
    threshold: Option<f64>,
    skip_malformed: bool,
    explain: bool,
    parameters: Option<PathBuf>,
    care: Option<PathBuf>,
}

/// Reads a care facts file (one [`CareFact`] or [`PatientLabel`] per line, blank lines
/// ignored), the care facts ordered by start.
pub fn read_care_facts(path: &std::path::Path) -> Result<RecordFacts, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut facts = RecordFacts::default();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        let Some(line) = crate::jsonl::content(&line) else {
            continue;
        };
        let malformed = |e: serde_json::Error| {
            format!("{}:{}: malformed care fact: {e}", path.display(), n + 1)
        };
        let value: serde_json::Value = serde_json::from_str(line).map_err(malformed)?;
        if value.get("labels").is_some() {
            facts
                .labels
                .push(serde_json::from_value(value).map_err(malformed)?);
        } else {
            facts
                .care
                .push(serde_json::from_value(value).map_err(malformed)?);
        }
    }
    facts.care.sort_by_key(|f| f.start);
    Ok(facts)
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut events = None;
    let mut threshold = None;
    let mut skip_malformed = false;
    let mut explain = false;
    let mut parameters = None;
    let mut care = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--events" => events = Some(PathBuf::from(it.next().ok_or("--events needs a file")?)),
            "--care-facts" => {
                care = Some(PathBuf::from(it.next().ok_or("--care-facts needs a file")?));
            }
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
            "--skip-malformed" => skip_malformed = true,
            "--explain" => explain = true,
            "--parameters" => {
                parameters = Some(PathBuf::from(it.next().ok_or("--parameters needs a file")?));
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        events: events.ok_or("--events is required")?,
        threshold,
        skip_malformed,
        explain,
        parameters,
        care,
    })
}

/// The `replay` subcommand; `args` are those after `replay`.
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
    let threshold = match args.threshold {
        Some(t) => t,
        None => match threshold_from_env() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(64);
            }
        },
    };
    let model = match model_config_from_env() {
        Ok(model) => model,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(64);
        }
    };
    let facts = match &args.care {
        Some(path) => match read_care_facts(path) {
            Ok(facts) => facts,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => RecordFacts::default(),
    };
    let options = ReplayOptions {
        threshold,
        skip_malformed: args.skip_malformed,
        explain: args.explain,
        care: facts.care,
        labels: facts.labels,
    };
    let input: Box<dyn BufRead + Send> = if args.events.as_os_str() == "-" {
        Box::new(BufReader::with_capacity(READ_BUFFER, io::stdin()))
    } else {
        match File::open(&args.events) {
            Ok(file) => Box::new(BufReader::with_capacity(READ_BUFFER, file)),
            Err(e) => {
                eprintln!("error: cannot open {}: {e}", args.events.display());
                return ExitCode::from(66);
            }
        }
    };
    let mut detector = Detector::with_config(threshold, model);
    if let Some(path) = &args.parameters {
        let imported = crate::federated::read_parameters(path)
            .and_then(|p| detector.import_parameters(&p).map_err(Into::into));
        if let Err(e) = imported {
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    let output = BufWriter::with_capacity(READ_BUFFER, io::stdout().lock());
    match replay_detector(input, output, io::stderr(), &options, detector) {
        Ok((summary, _)) => {
            eprintln!(
                "replayed {} events: {} alerts, {} malformed lines skipped",
                summary.scored, summary.alerts, summary.skipped
            );
            if summary.late_lost > 0 {
                eprintln!(
                    "warning: {} late alerts came after their lines were written",
                    summary.late_lost
                );
            }
            ExitCode::SUCCESS
        }
        Err(ReplayError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::event;
    use custodian_events::AccessOutcome;

    fn options() -> ReplayOptions {
        ReplayOptions {
            threshold: 0.8,
            skip_malformed: false,
            explain: false,
            care: Vec::new(),
            labels: Vec::new(),
        }
    }

    fn burst_file() -> String {
        (0..20)
            .map(|i| {
                let e = event(
                    "dr-b",
                    i * 2,
                    Some(&format!("Patient/p{i}")),
                    AccessOutcome::Deny,
                );
                serde_json::to_string(&e).expect("json")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A VIP's record opened by a stranger; then again by a user whose care for her starts
    /// between the two: only the second is explained.
    #[test]
    fn care_facts_are_taught_when_the_events_reach_their_start() {
        use crate::model::{CareActor, CareVia};
        let vip = |actor: &str, seconds: i64| {
            let mut e = event(actor, seconds, Some("Patient/vip"), AccessOutcome::Permit);
            e.confidentiality = Some("V".into());
            // Departments of their own: neither explains the other's access.
            e.actor.department = Some(format!("dept-of-{actor}"));
            serde_json::to_string(&e).expect("json")
        };
        let input = [vip("dr-early", 0), vip("dr-cares", 3_600)].join("\n");
        let scores = |care: Vec<CareFact>| {
            let mut out = Vec::new();
            let options = ReplayOptions { care, ..options() };
            replay(input.as_bytes(), &mut out, io::sink(), &options).expect("replay");
            String::from_utf8(out)
                .expect("utf-8")
                .lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).expect("line")["score"].clone()
                })
                .map(|s| s.as_f64().expect("score"))
                .collect::<Vec<_>>()
        };
        let fact = |actor: &str, start: i64| CareFact {
            patient: "Patient/vip".into(),
            actor: CareActor::User(actor.into()),
            via: CareVia::EncounterParticipant,
            start: crate::model::tests::base() + chrono::Duration::seconds(start),
            end: None,
        };
        let without = scores(Vec::new());
        let with = scores(vec![fact("dr-early", 1_800), fact("dr-cares", 1_800)]);
        assert!(without[1] >= 0.8, "{without:?}");
        // Taught at its start: too late for the first access, in time for the second.
        assert_eq!(with[0], without[0]);
        assert!(with[1] < 0.5, "{with:?}");
    }

    #[test]
    fn a_care_facts_file_is_read_in_order_of_start_and_refused_when_malformed() {
        let dir = std::env::temp_dir().join(format!("care-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("care.jsonl");
        let line = |start: &str| {
            format!(
                r#"{{"patient":"Patient/1","actor":{{"department":{{"organization":"Organization/h","department":"Cardiology"}}}},"via":"encounter-service-provider","start":"{start}"}}"#
            )
        };
        std::fs::write(
            &path,
            [
                line("2026-03-02T10:00:00Z"),
                String::new(),
                line("2026-03-01T10:00:00Z"),
            ]
            .join("\n"),
        )
        .expect("write");
        let facts = read_care_facts(&path).expect("read");
        assert_eq!(facts.care.len(), 2);
        assert!(facts.care[0].start < facts.care[1].start);
        assert!(facts.care[0].end.is_none());
        assert!(facts.labels.is_empty());
        // Patients' labels may share the file.
        std::fs::write(
            &path,
            [
                line("2026-03-02T10:00:00Z"),
                r#"{"patient":"Patient/7","labels":["EMP"]}"#.into(),
            ]
            .join("\n"),
        )
        .expect("write");
        let facts = read_care_facts(&path).expect("read");
        assert_eq!(facts.care.len(), 1);
        assert_eq!(
            facts.labels,
            vec![PatientLabel {
                patient: "Patient/7".into(),
                labels: vec!["EMP".into()]
            }]
        );
        std::fs::write(&path, "{\"patient\": 1}").expect("write");
        assert!(read_care_facts(&path).is_err_and(|e| e.contains(":1:")));
        assert!(read_care_facts(&dir.join("missing.jsonl")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn prints_one_line_per_event_in_order() {
        let input = burst_file();
        let mut out = Vec::new();
        let summary = replay(input.as_bytes(), &mut out, io::sink(), &options()).expect("replay");
        assert_eq!(summary.scored, 20);
        assert!(summary.alerts > 0);
        let out = String::from_utf8(out).expect("utf-8");
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), 20);
        for (line, json) in lines.iter().zip(input.lines()) {
            let event = AccessEvent::parse(json).expect("event");
            assert_eq!(line["id"], event.id.to_string());
            let score = line["score"].as_f64().expect("score");
            assert!((0.0..=1.0).contains(&score));
            assert_eq!(line["alert"], score >= 0.8);
            // `alerted_at` only on lines an alert took late.
            let keys: Vec<&String> = line.as_object().expect("object").keys().collect();
            assert!(
                keys.len() == 3
                    || (keys.len() == 4 && line["alert"] == true && line["alerted_at"].is_string()),
                "{keys:?}"
            );
        }
        assert_eq!(lines[19]["alert"], true);
    }

    #[test]
    fn explain_adds_the_reasons_to_each_line_and_changes_no_score() {
        let input = burst_file();
        let (mut plain, mut explained) = (Vec::new(), Vec::new());
        replay(input.as_bytes(), &mut plain, io::sink(), &options()).expect("replay");
        let explain = ReplayOptions {
            explain: true,
            ..options()
        };
        replay(input.as_bytes(), &mut explained, io::sink(), &explain).expect("replay");
        let parse = |bytes: &[u8]| -> Vec<serde_json::Value> {
            String::from_utf8_lossy(bytes)
                .lines()
                .map(|l| serde_json::from_str(l).expect("json line"))
                .collect()
        };
        let (plain, explained) = (parse(&plain), parse(&explained));
        assert_eq!(plain.len(), explained.len());
        for (p, e) in plain.iter().zip(&explained) {
            assert_eq!(p["id"], e["id"]);
            assert_eq!(p["score"], e["score"]);
        }
        let last = &explained[19];
        assert_eq!(last["alert"], true);
        assert!(last["incident"].is_u64(), "{last}");
        let text = last["explanation"].as_str().expect("explanation");
        assert!(text.contains("distinct patients"), "{text}");
        let features: Vec<&str> = last["contributions"]
            .as_array()
            .expect("contributions")
            .iter()
            .filter_map(|c| c["feature"].as_str())
            .collect();
        assert!(features.contains(&"distinct_patients"), "{features:?}");
    }

    #[test]
    fn same_input_same_output() {
        let input = burst_file();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        replay(input.as_bytes(), &mut a, io::sink(), &options()).expect("replay");
        replay(input.as_bytes(), &mut b, io::sink(), &options()).expect("replay");
        assert_eq!(a, b);
    }

    #[test]
    fn another_systems_event_ids_come_back_as_it_wrote_them_with_the_same_scores() {
        let input = burst_file();
        // Ids of another log: strings, numbers, a UUID in capitals.
        let written: Vec<serde_json::Value> = (0..20)
            .map(|i| match i % 3 {
                0 => serde_json::json!(format!("evt-{i:06}")),
                1 => serde_json::json!(1000 + i),
                _ => serde_json::json!(uuid::Uuid::new_v4().to_string().to_uppercase()),
            })
            .collect();
        let foreign: String = input
            .lines()
            .zip(&written)
            .map(|(line, id)| {
                let mut event: serde_json::Value = serde_json::from_str(line).expect("json");
                event["id"] = id.clone();
                format!("{event}\n")
            })
            .collect();
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        replay(input.as_bytes(), &mut ours, io::sink(), &options()).expect("replay");
        replay(foreign.as_bytes(), &mut theirs, io::sink(), &options()).expect("replay");
        let lines = |out: &[u8]| -> Vec<serde_json::Value> {
            String::from_utf8_lossy(out)
                .lines()
                .map(|l| serde_json::from_str(l).expect("json line"))
                .collect()
        };
        let (ours, theirs) = (lines(&ours), lines(&theirs));
        assert_eq!(theirs.len(), 20);
        for ((mine, line), id) in ours.iter().zip(&theirs).zip(&written) {
            assert_eq!(&line["id"], id);
            assert_eq!(line["score"], mine["score"]);
            assert_eq!(line["alert"], mine["alert"]);
        }
    }

    #[test]
    fn a_file_written_with_a_byte_order_mark_and_windows_line_ends_replays_the_same() {
        let input = burst_file();
        let windows = format!("\u{feff}{}", input.replace('\n', "\r\n"));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        replay(input.as_bytes(), &mut a, io::sink(), &options()).expect("replay");
        replay(windows.as_bytes(), &mut b, io::sink(), &options()).expect("replay");
        assert_eq!(a, b);
    }

    #[test]
    fn malformed_lines_stop_with_their_number_or_are_skipped() {
        let input = format!("{}\n\nnot json\n{}", burst_file(), burst_file());
        let err = replay(input.as_bytes(), io::sink(), io::sink(), &options()).unwrap_err();
        assert!(
            matches!(err, ReplayError::Malformed { line: 22, .. }),
            "{err}"
        );
        assert!(err.to_string().starts_with("line 22:"));

        let mut warnings = Vec::new();
        let skipping = ReplayOptions {
            skip_malformed: true,
            ..options()
        };
        let summary =
            replay(input.as_bytes(), io::sink(), &mut warnings, &skipping).expect("replay");
        assert_eq!(summary.skipped, 1);
        assert_eq!(summary.scored, 40);
        assert!(String::from_utf8_lossy(&warnings).contains("line 22"));
    }

    #[test]
    fn arguments() {
        let a = |s: &[&str]| parse_args(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            a(&["--events", "x.jsonl"]),
            Ok(Args {
                events: "x.jsonl".into(),
                threshold: None,
                skip_malformed: false,
                explain: false,
                parameters: None,
                care: None,
            })
        );
        assert_eq!(
            a(&["--events", "x", "--care-facts", "c.jsonl"]).map(|a| a.care),
            Ok(Some("c.jsonl".into()))
        );
        assert!(a(&["--events", "x", "--care-facts"]).is_err());
        assert_eq!(
            a(&["--events", "x", "--explain"]).map(|a| a.explain),
            Ok(true)
        );
        assert_eq!(
            a(&["--events", "x", "--threshold", "0.5", "--skip-malformed"]).map(|a| a.threshold),
            Ok(Some(0.5))
        );
        assert_eq!(
            a(&["--events", "x", "--parameters", "g.json"]).map(|a| a.parameters),
            Ok(Some("g.json".into()))
        );
        assert!(a(&[]).is_err());
        assert!(a(&["--events", "x", "--threshold", "2"]).is_err());
        assert!(a(&["--events", "x", "--bogus"]).is_err());
    }
}
