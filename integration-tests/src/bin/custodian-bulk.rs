//! `custodian-bulk`: move a hospital's data in and out of a running suite, with progress bars.
//!
//! ```text
//! custodian-bulk synth  --patients N [--seed S] --out FILE.ndjson
//! custodian-bulk import [--batch 200] [--concurrency 4] FILE...   (NDJSON, or Bundle JSON)
//! custodian-bulk export [--kickoff /fhir/Patient/$export?_type=Observation] --out DIR
//! ```
//! `import` and `export` talk to the gateway (`--gateway`, or `GATEWAY_URL`, default
//! http://127.0.0.1:8080) with a bearer token (`--token` or `FHIR_TOKEN`), or sign in with
//! `--username` and `--password`.

use std::{path::PathBuf, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};
use integration_tests::{api::Gateway, bulk};

struct Args {
    command: String,
    options: std::collections::HashMap<String, String>,
    files: Vec<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let command = args
        .next()
        .ok_or("usage: custodian-bulk synth|import|export [options] [files]")?;
    let mut options = std::collections::HashMap::new();
    let mut files = Vec::new();
    while let Some(arg) = args.next() {
        match arg.strip_prefix("--") {
            Some(name) => {
                let value = args
                    .next()
                    .ok_or_else(|| format!("--{name} needs a value"))?;
                options.insert(name.to_string(), value);
            }
            None => files.push(PathBuf::from(arg)),
        }
    }
    Ok(Args {
        command,
        options,
        files,
    })
}

fn number(args: &Args, name: &str, default: usize) -> Result<usize, String> {
    args.options
        .get(name)
        .map(|v| v.parse().map_err(|_| format!("--{name} takes a number")))
        .transpose()
        .map(|v| v.unwrap_or(default))
}

async fn token(args: &Args, gateway: &Gateway) -> Result<String, String> {
    if let Some(token) = args
        .options
        .get("token")
        .cloned()
        .or_else(|| std::env::var("FHIR_TOKEN").ok())
    {
        return Ok(token);
    }
    match (args.options.get("username"), args.options.get("password")) {
        (Some(u), Some(p)) => gateway.login(u, p).await.map_err(|e| e.to_string()),
        _ => Err("give --token (or FHIR_TOKEN), or --username and --password".into()),
    }
}

async fn run(args: Args) -> Result<(), String> {
    let gateway = Gateway::new(
        args.options
            .get("gateway")
            .cloned()
            .or_else(|| std::env::var("GATEWAY_URL").ok())
            .unwrap_or_else(|| "http://127.0.0.1:8080".into()),
    );
    match args.command.as_str() {
        "synth" => {
            let patients = number(&args, "patients", 100)?;
            let seed = number(&args, "seed", 1)? as u64;
            let out = args
                .options
                .get("out")
                .ok_or("--out FILE.ndjson is required")?;
            let resources = bulk::synthesize(seed, patients);
            bulk::write_ndjson(std::path::Path::new(out), &resources).map_err(|e| e.to_string())?;
            println!(
                "{} resources for {patients} patients in {out}",
                resources.len()
            );
            Ok(())
        }
        "import" => {
            let resources = bulk::read_resources(&args.files)?;
            let token = token(&args, &gateway).await?;
            let bar = ProgressBar::new(resources.len() as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:40}] {pos}/{len} resources ({per_sec}, {eta} left)",
                )
                .map_err(|e| e.to_string())?
                .progress_chars("=> "),
            );
            let done = bulk::import(
                &gateway,
                &token,
                resources,
                number(&args, "batch", 200)?,
                number(&args, "concurrency", 4)?,
                &|n| bar.inc(n as u64),
            )
            .await
            .map_err(|e| e.to_string())?;
            bar.finish();
            println!(
                "imported {} resources in {} transaction Bundles, {:.1} s, {:.0} resources/s",
                done.resources,
                done.bundles,
                done.seconds,
                done.per_second()
            );
            Ok(())
        }
        "export" => {
            let token = token(&args, &gateway).await?;
            let kickoff = args
                .options
                .get("kickoff")
                .cloned()
                .unwrap_or_else(|| "/fhir/Patient/$export".into());
            let out = PathBuf::from(args.options.get("out").ok_or("--out DIR is required")?);
            let spinner = ProgressBar::new_spinner();
            spinner.enable_steady_tick(Duration::from_millis(120));
            let files = bulk::export(
                &gateway,
                &token,
                &kickoff,
                &out,
                Duration::from_millis(500),
                &|progress| spinner.set_message(progress.to_string()),
            )
            .await
            .map_err(|e| e.to_string())?;
            spinner.finish_and_clear();
            for f in &files {
                println!(
                    "{:>8} {:<20} {}",
                    f.count,
                    f.resource_type,
                    f.path.display()
                );
            }
            println!("{} files in {}", files.len(), out.display());
            Ok(())
        }
        other => Err(format!("unknown command {other} (synth, import, export)")),
    }
}

#[actix_web::main]
async fn main() {
    let result = match parse_args() {
        Ok(args) => run(args).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        eprintln!("custodian-bulk: {e}");
        std::process::exit(1);
    }
}
