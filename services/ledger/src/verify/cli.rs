//! The `ledger verify` command line: arguments, the source, the summary, the exit code.

use std::process::ExitCode;

use crate::cosignature::CosignatureVerifier;

use super::{http::HttpSource, postgres::PgSource, verify, Report, SourceError, Trust};

pub const USAGE: &str = "\
usage: ledger verify (--database postgres://... | --url http://host:port [--token-file FILE])
                     (--key VKEY)... [--trust-served-keys]
                     [(--witness VKEY)... [--quorum N]] [--json]

Checks the whole log: every checkpoint's signature (and witness cosignatures),
every leaf's payload against its leaf hash, indices dense from 0, and the leaves against
every checkpoint's root. From --url the token must see every entry (auditor or admin), and
the consistency proofs between checkpoints are checked too.

  --key VKEY            a trusted log verifier key (repeatable: any one may sign)
  --trust-served-keys   with --url, also trust the key the log serves at /ledger/key
  --witness VKEY        a witness's cosignature verifier key (type 0x04, repeatable)
  --quorum N            witnesses that must have cosigned a checkpoint (default: all given);
                        the newest checkpoints may still await cosignatures, but one must
                        have the quorum, and every cosignature by a given witness must verify
  --json                one JSON report on stdout

Exit status: 0 verified, 1 the log is not intact (the first bad leaf is named), 2 could
not verify (bad arguments, unreachable source).";

/// Exit status when the log was checked and found damaged.
pub const EXIT_DAMAGED: u8 = 1;
/// Exit status when verification could not run.
pub const EXIT_UNVERIFIED: u8 = 2;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub database: Option<String>,
    pub url: Option<String>,
    pub token_file: Option<String>,
    pub keys: Vec<String>,
    pub trust_served_keys: bool,
    pub witnesses: Vec<String>,
    pub quorum: Option<usize>,
    pub json: bool,
}

impl Args {
    /// Parses the arguments after `verify`.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut parsed = Args::default();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--database" => parsed.database = Some(value()?),
                "--url" => parsed.url = Some(value()?),
                "--token-file" => parsed.token_file = Some(value()?),
                "--key" => parsed.keys.push(value()?),
                "--witness" => parsed.witnesses.push(value()?),
                "--quorum" => {
                    let n = value()?;
                    parsed.quorum = Some(
                        n.parse()
                            .map_err(|_| format!("--quorum {n:?} is not a number"))?,
                    );
                }
                "--trust-served-keys" => parsed.trust_served_keys = true,
                "--json" => parsed.json = true,
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        match (&parsed.database, &parsed.url) {
            (Some(_), Some(_)) => return Err("give --database or --url, not both".into()),
            (None, None) => return Err("give --database or --url".into()),
            _ => {}
        }
        if parsed.database.is_some() && (parsed.trust_served_keys || parsed.token_file.is_some()) {
            return Err("--trust-served-keys and --token-file go with --url".into());
        }
        if parsed.keys.is_empty() && !parsed.trust_served_keys {
            return Err("give at least one --key (or --trust-served-keys with --url)".into());
        }
        if parsed.quorum.unwrap_or(0) > parsed.witnesses.len() {
            return Err("--quorum is larger than the number of --witness keys".into());
        }
        Ok(parsed)
    }

    fn quorum(&self) -> usize {
        self.quorum.unwrap_or(self.witnesses.len())
    }
}

/// `host:port/name` of a PostgreSQL URL, without user, password or parameters.
fn database_label(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('?').next().unwrap_or(rest).to_string()
}

/// Runs `ledger verify` with the arguments after `verify`; prints the report.
pub async fn run(args: &[String]) -> ExitCode {
    let args = match Args::parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ledger verify: {e}\n\n{USAGE}");
            return ExitCode::from(EXIT_UNVERIFIED);
        }
    };
    match verify_with(&args).await {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(json) => println!("{json}"),
                    Err(e) => {
                        eprintln!("ledger verify: {e}");
                        return ExitCode::from(EXIT_UNVERIFIED);
                    }
                }
            } else {
                print!("{}", summary(&report));
            }
            if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_DAMAGED)
            }
        }
        Err(e) => {
            if args.json {
                println!("{}", serde_json::json!({ "ok": false, "error": e.0 }));
            }
            eprintln!("ledger verify: could not verify: {e}");
            ExitCode::from(EXIT_UNVERIFIED)
        }
    }
}

/// Builds the trust and the source the arguments name and verifies.
pub async fn verify_with(args: &Args) -> Result<Report, SourceError> {
    let witnesses = args
        .witnesses
        .iter()
        .map(|w| CosignatureVerifier::parse(w))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SourceError(e.to_string()))?;
    let mut trust = Trust {
        log_keys: args.keys.clone(),
        keys_served_by_log: false,
        witnesses,
        quorum: args.quorum(),
    };
    if let Some(url) = &args.database {
        // Over TLS as the URL's sslmode says, like the service's own connections.
        let mut conn = custodian_database::connect(url)
            .await
            .map_err(|e| SourceError(format!("database: {e}")))?;
        let mut source = PgSource::new(&mut conn, database_label(url));
        return verify(&mut source, &trust).await;
    }
    let url = args.url.as_deref().unwrap_or_default();
    let token = match &args.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| SourceError(format!("token file {path}: {e}")))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let mut source = HttpSource::new(url, token);
    if args.trust_served_keys {
        let served = source.served_key().await?;
        if !trust.log_keys.contains(&served) {
            trust.log_keys.push(served);
            trust.keys_served_by_log = true;
        }
    }
    verify(&mut source, &trust).await
}

/// The human summary.
pub fn summary(report: &Report) -> String {
    let mut out = String::new();
    let verdict = if report.ok { "OK" } else { "FAILED" };
    out.push_str(&format!("ledger verify: {verdict}\n"));
    if let Some(message) = &report.message {
        match report.first_bad_leaf {
            Some(leaf) => out.push_str(&format!("  first bad leaf: {leaf}\n")),
            None => out.push_str("  first bad leaf: none (a checkpoint's own problem)\n"),
        }
        out.push_str(&format!("  problem:     {message}\n"));
        out.push_str("  verified before it:\n");
    }
    out.push_str(&format!("  source:      {}\n", report.source));
    out.push_str(&format!(
        "  leaves:      {} (indices dense from 0, every payload hashes to its leaf hash)\n",
        report.leaves
    ));
    let signed = report
        .signed_size
        .map_or("none".to_string(), |s| format!("latest of size {s}"));
    out.push_str(&format!(
        "  checkpoints: {} ({signed}): signatures valid, sizes growing, each root equal to the leaves' root at its size\n",
        report.checkpoints
    ));
    out.push_str(&format!(
        "  consistency: every checkpoint's root is computed from one sequence of leaves, so each extends the previous{}\n",
        if report.consistency_proofs > 0 {
            format!("; {} served consistency proofs verified", report.consistency_proofs)
        } else {
            String::new()
        }
    ));
    if report.unsigned_leaves > 0 {
        out.push_str(&format!(
            "  unsigned:    {} leaves after the latest checkpoint (checked, not yet signed)\n",
            report.unsigned_leaves
        ));
    }
    out.push_str(&format!("  keys:        {}\n", report.keys.join(", ")));
    if report.keys_served_by_log {
        out.push_str(
            "               (including the key the log itself serves, trusted on --trust-served-keys: \
             this proves the log agrees with itself, not that it is the log you meant)\n",
        );
    }
    if report.quorum > 0 {
        out.push_str(&format!(
            "  witnesses:   {} of {} cosigned {} checkpoints, the newest at size {}; every cosignature by them verified\n",
            report.quorum,
            report.witnesses,
            report.witnessed_checkpoints,
            report
                .witnessed_size
                .map_or_else(|| "-".to_string(), |s| s.to_string()),
        ));
    } else {
        out.push_str("  witnesses:   not checked (quorum 0)\n");
    }
    out.push_str(&format!("  time:        {:.2} s\n", report.seconds));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        Args::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn arguments_are_checked() {
        let a = args(&["--database", "postgres://x/y", "--key", "k", "--json"]).unwrap();
        assert_eq!(a.database.as_deref(), Some("postgres://x/y"));
        assert!(a.json);
        assert_eq!(a.quorum(), 0);
        let a = args(&[
            "--url",
            "http://g",
            "--trust-served-keys",
            "--witness",
            "w1",
            "--witness",
            "w2",
        ])
        .unwrap();
        assert_eq!(a.quorum(), 2, "all witnesses by default");
        for bad in [
            vec![],
            vec!["--database", "d"],
            vec!["--database", "d", "--url", "u", "--key", "k"],
            vec!["--database", "d", "--trust-served-keys"],
            vec!["--database", "d", "--key"],
            vec!["--database", "d", "--key", "k", "--quorum", "1"],
            vec!["--database", "d", "--key", "k", "--bogus"],
        ] {
            assert!(args(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn database_labels_hold_no_credentials() {
        assert_eq!(
            database_label("postgres://user:secret@db:5432/custodian_ledger?sslmode=require"),
            "db:5432/custodian_ledger"
        );
        assert_eq!(database_label("postgres://db/x"), "db/x");
    }
}
