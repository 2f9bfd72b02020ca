//! `anomaly federate train --events FILE --out update.json [--epsilon E] [--delta D] [--clip C]
//! [--noise-seed N]` (a hospital: replays its events through the model, exports the parameters
//! with noise) and `anomaly federate aggregate --updates A.json B.json ... --out global.json`
//! (the aggregator: FedAvg). Nothing about an event is printed, only counts and the privacy.

use std::{
    fs::File,
    io::{self, BufReader, BufWriter, Write},
    path::PathBuf,
    process::ExitCode,
};

use super::{aggregate, clip_and_noise, FederatedError, Settings, Update};
use crate::{
    configuration::{model_config_from_env, threshold_from_env},
    model::Detector,
    replay::{replay_detector, ReplayOptions},
};

const USAGE: &str = "usage: anomaly federate train --events FILE.jsonl --out UPDATE.json [--epsilon 8] [--delta 1e-5] [--clip 1] [--noise-seed N]
       anomaly federate aggregate --updates A.json B.json ... --out GLOBAL.json";

#[derive(Debug, PartialEq)]
enum Command {
    Train {
        events: PathBuf,
        out: PathBuf,
        settings: Settings,
        noise_seed: Option<u64>,
    },
    Aggregate {
        updates: Vec<PathBuf>,
        out: PathBuf,
    },
}

fn number<T: std::str::FromStr>(flag: &str, value: Option<&String>) -> Result<T, String> {
    let raw = value.ok_or(format!("{flag} needs a value"))?;
    raw.parse()
        .map_err(|_| format!("{flag} {raw:?} is not a number"))
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    let (sub, rest) = args.split_first().ok_or("train or aggregate?")?;
    let mut events = None;
    let mut out = None;
    let mut updates = Vec::new();
    let mut settings = Settings::default();
    let mut noise_seed = None;
    let mut it = rest.iter().peekable();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--events" => events = Some(PathBuf::from(it.next().ok_or("--events needs a file")?)),
            "--out" => out = Some(PathBuf::from(it.next().ok_or("--out needs a file")?)),
            "--epsilon" => settings.epsilon = number("--epsilon", it.next())?,
            "--delta" => settings.delta = number("--delta", it.next())?,
            "--clip" => settings.clip = number("--clip", it.next())?,
            "--noise-seed" => noise_seed = Some(number("--noise-seed", it.next())?),
            "--updates" => {
                while let Some(file) = it.next_if(|a| !a.starts_with("--")) {
                    updates.push(PathBuf::from(file));
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let out = out.ok_or("--out is required")?;
    match sub.as_str() {
        "train" => {
            let s = settings;
            if !(s.epsilon > 0.0 && s.delta > 0.0 && s.delta < 1.0 && s.clip > 0.0) {
                return Err("--epsilon and --clip must be > 0, --delta within (0, 1)".into());
            }
            Ok(Command::Train {
                events: events.ok_or("--events is required")?,
                out,
                settings,
                noise_seed,
            })
        }
        "aggregate" if updates.is_empty() => Err("--updates needs at least one file".into()),
        "aggregate" => Ok(Command::Aggregate { updates, out }),
        "-h" | "--help" => Err(String::new()),
        other => Err(format!("unknown command {other:?}")),
    }
}

fn write_json<T: serde::Serialize>(path: &PathBuf, value: &T) -> Result<(), FederatedError> {
    let mut out = BufWriter::new(File::create(path)?);
    serde_json::to_writer(&mut out, value)?;
    out.flush()?;
    Ok(())
}

fn train(
    events: &PathBuf,
    out: &PathBuf,
    settings: Settings,
    noise_seed: Option<u64>,
) -> Result<String, String> {
    let threshold = threshold_from_env().map_err(|e| e.to_string())?;
    let model = model_config_from_env().map_err(|e| e.to_string())?;
    let input = File::open(events).map_err(|e| format!("{}: {e}", events.display()))?;
    let options = ReplayOptions {
        threshold,
        skip_malformed: false,
        explain: false,
        care: Vec::new(),
        labels: Vec::new(),
    };
    let detector = Detector::with_config(threshold, model);
    let (summary, detector) = replay_detector(
        BufReader::new(input),
        io::sink(),
        io::sink(),
        &options,
        detector,
    )
    .map_err(|e| format!("{}: {e}", events.display()))?;
    // The aggregator must not be able to predict the noise: fresh randomness unless a test
    // asks for a seed.
    let seed = noise_seed.unwrap_or_else(rand::random);
    let update = clip_and_noise(
        &detector.export_parameters(),
        settings.clip,
        settings.epsilon,
        settings.delta,
        seed,
    )
    .map_err(|e| e.to_string())?;
    write_json(out, &update).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(format!(
        "trained on {} events; update with epsilon {}, delta {}, clip {}, sigma {:.3} written",
        summary.scored, settings.epsilon, settings.delta, settings.clip, update.privacy.sigma
    ))
}

fn aggregate_files(updates: &[PathBuf], out: &PathBuf) -> Result<String, String> {
    let read = |path: &PathBuf| -> Result<Update, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    };
    let updates = updates.iter().map(read).collect::<Result<Vec<_>, _>>()?;
    let global = aggregate(&updates).map_err(|e| e.to_string())?;
    write_json(out, &global).map_err(|e| format!("{}: {e}", out.display()))?;
    let worst = updates
        .iter()
        .map(|u| u.privacy.epsilon)
        .fold(0.0f64, f64::max);
    Ok(format!(
        "averaged {} updates (largest epsilon {worst})",
        updates.len()
    ))
}

/// The `federate` subcommand; `args` are those after `federate`.
pub fn main(args: &[String]) -> ExitCode {
    let command = match parse_args(args) {
        Ok(c) => c,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if e.is_empty() { 0 } else { 64 });
        }
    };
    let result = match &command {
        Command::Train {
            events,
            out,
            settings,
            noise_seed,
        } => train(events, out, *settings, *noise_seed),
        Command::Aggregate { updates, out } => aggregate_files(updates, out),
    };
    match result {
        Ok(message) => {
            eprintln!("{message}");
            ExitCode::SUCCESS
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

    fn a(s: &[&str]) -> Result<Command, String> {
        parse_args(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn arguments() {
        assert_eq!(
            a(&["train", "--events", "e", "--out", "u", "--epsilon", "2"]),
            Ok(Command::Train {
                events: "e".into(),
                out: "u".into(),
                settings: Settings {
                    epsilon: 2.0,
                    ..Settings::default()
                },
                noise_seed: None,
            })
        );
        assert_eq!(
            a(&["aggregate", "--updates", "a", "b", "c", "--out", "g"]),
            Ok(Command::Aggregate {
                updates: vec!["a".into(), "b".into(), "c".into()],
                out: "g".into(),
            })
        );
        assert!(a(&["train", "--events", "e", "--out", "u", "--epsilon", "0"]).is_err());
        assert!(a(&["aggregate", "--out", "g"]).is_err());
        assert!(a(&["bogus", "--out", "g"]).is_err());
    }
}
