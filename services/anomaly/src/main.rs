//! `anomaly` runs the service; `anomaly replay --events FILE.jsonl` scores a file offline;
//! `anomaly simulate` writes a labelled synthetic hospital log; `anomaly evaluate` scores one;
//! `anomaly federate train|aggregate` is federated training across hospitals.

use std::process::ExitCode;

use anomaly::{configuration::Settings, startup::Application};

const USAGE: &str = "usage: anomaly [replay --events FILE.jsonl | simulate ... | evaluate ... | federate train|aggregate ...]
  with no command: the service (configured from ANOMALY_* environment variables)
  anomaly COMMAND --help: the command's options";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("replay") => anomaly::replay::main(&args[1..]),
        Some("simulate") => anomaly::simulate::main(&args[1..]),
        Some("evaluate") => anomaly::evaluate::main(&args[1..]),
        Some("federate") => anomaly::federated::cli::main(&args[1..]),
        None => serve(),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("unknown command {other:?}\n{USAGE}");
            ExitCode::from(64)
        }
    }
}

fn serve() -> ExitCode {
    custodian_telemetry::logging::init("anomaly");
    let result = actix_web::rt::System::new().block_on(async {
        let settings = Settings::from_env().map_err(|e| e.to_string())?;
        let app = Application::build(settings)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(port = app.port(), "anomaly listening");
        app.run_until_stopped().await.map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "anomaly failed");
            eprintln!("anomaly: {e}");
            ExitCode::FAILURE
        }
    }
}
