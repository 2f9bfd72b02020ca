//! Offline replay: `anomaly replay --events FILE.jsonl` scores a file of access events (one JSON
//! object per line, oldest first) with the same [`Detector`] the service uses and prints one
//! line per event, in order: `{"id": "...", "score": 0.0..1.0, "alert": true|false}`.
//!
//! No database or Redis is needed. The threshold is `ANOMALY_ALERT_THRESHOLD` (default 0.8) or
//! `--threshold X`; the model's calibration comes from `ANOMALY_TARGET_FPR`,
//! `ANOMALY_WARMUP_HOURS` and `ANOMALY_CALIBRATION_HOURS` as in the service. Blank lines are ignored. A malformed line stops the replay: the error goes
//! to stderr with its line number and the exit status is 2, since scores after a dropped event
//! would differ from what the service computed. `--skip-malformed` warns on stderr instead and
//! goes on (the service dead-letters such messages and never scores them either). `-` as the
//! file reads stdin. `--parameters global.json` scores with a federated model's parameters
//! (see [`crate::federated`]).

use std::{
    fs::File,
    io::{self, BufRead, BufReader, BufWriter, Write},
    path::PathBuf,
    process::ExitCode,
};

use custodian_events::AccessEvent;
use serde::Serialize;
use uuid::Uuid;

use crate::{
    configuration::{model_config_from_env, threshold_from_env},
    model::{Detector, ModelConfig},
};

/// How to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayOptions {
    pub threshold: f64,
    /// Warn about malformed lines and go on instead of stopping.
    pub skip_malformed: bool,
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    pub scored: u64,
    pub alerts: u64,
    pub skipped: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("line {line}: malformed access event: {reason}")]
    Malformed { line: u64, reason: String },
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

#[derive(Serialize)]
struct Line {
    id: Uuid,
    score: f64,
    alert: bool,
}

/// Scores every event of `input` and writes one JSON line per event to `output`. Warnings about
/// skipped lines go to `warnings`.
pub fn replay(
    input: impl BufRead,
    output: impl Write,
    warnings: impl Write,
    options: &ReplayOptions,
) -> Result<ReplaySummary, ReplayError> {
    replay_with(input, output, warnings, options, &ModelConfig::default())
}

/// [`replay`] with the model's calibration settings (`ANOMALY_TARGET_FPR`,
/// `ANOMALY_WARMUP_HOURS`, `ANOMALY_CALIBRATION_HOURS`, as the service reads them).
pub fn replay_with(
    input: impl BufRead,
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
    input: impl BufRead,
    mut output: impl Write,
    mut warnings: impl Write,
    options: &ReplayOptions,
    mut detector: Detector,
) -> Result<(ReplaySummary, Detector), ReplayError> {
    let mut summary = ReplaySummary::default();
    for (index, line) in input.lines().enumerate() {
        let number = index as u64 + 1;
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let event = match AccessEvent::parse(&line) {
            Ok(event) => event,
            Err(e) if options.skip_malformed => {
                writeln!(warnings, "warning: line {number} skipped: {e}")?;
                summary.skipped += 1;
                continue;
            }
            Err(e) => {
                return Err(ReplayError::Malformed {
                    line: number,
                    reason: e.to_string(),
                })
            }
        };
        let scored = detector.score(&event);
        summary.scored += 1;
        summary.alerts += u64::from(scored.alert);
        let json = serde_json::to_string(&Line {
            id: scored.id,
            score: scored.score,
            alert: scored.alert,
        })
        .map_err(io::Error::other)?;
        writeln!(output, "{json}")?;
    }
    output.flush()?;
    Ok((summary, detector))
}

const USAGE: &str = "usage: anomaly replay --events FILE.jsonl [--threshold X] [--skip-malformed] [--parameters GLOBAL.json]";

#[derive(Debug, PartialEq)]
struct Args {
    events: PathBuf,
    threshold: Option<f64>,
    skip_malformed: bool,
    parameters: Option<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut events = None;
    let mut threshold = None;
    let mut skip_malformed = false;
    let mut parameters = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--events" => events = Some(PathBuf::from(it.next().ok_or("--events needs a file")?)),
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
        parameters,
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
    let options = ReplayOptions {
        threshold,
        skip_malformed: args.skip_malformed,
    };
    let input: Box<dyn BufRead> = if args.events.as_os_str() == "-" {
        Box::new(BufReader::new(io::stdin().lock()))
    } else {
        match File::open(&args.events) {
            Ok(file) => Box::new(BufReader::new(file)),
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
    let output = BufWriter::new(io::stdout().lock());
    match replay_detector(input, output, io::stderr(), &options, detector) {
        Ok((summary, _)) => {
            eprintln!(
                "replayed {} events: {} alerts, {} malformed lines skipped",
                summary.scored, summary.alerts, summary.skipped
            );
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
            assert_eq!(line.as_object().map(|o| o.len()), Some(3));
        }
        assert_eq!(lines[19]["alert"], true);
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
                parameters: None,
            })
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
