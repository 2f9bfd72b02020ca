use std::process::ExitCode;

use ledger::{
    configuration::Settings,
    startup::Application,
    witness::{configuration::WitnessSettings, startup::WitnessApplication},
};

/// `ledger` serves the log; `ledger witness` runs as a witness of other logs (see
/// `ledger::witness`); `ledger verify ...` checks a log (see `ledger::verify::cli`).
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let served = match args.first().map(String::as_str) {
        Some("verify") => {
            return actix_web::rt::System::new().block_on(ledger::verify::cli::run(&args[1..]))
        }
        Some("keygen") => return ledger::keygen::run(&args[1..]),
        Some("witness") => actix_web::rt::System::new().block_on(witness()),
        _ => actix_web::rt::System::new().block_on(serve()),
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ledger: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    custodian_telemetry::logging::init("ledger");
    let settings = Settings::from_env()?;
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}

async fn witness() -> Result<(), Box<dyn std::error::Error>> {
    custodian_telemetry::logging::init("witness");
    let witness = WitnessApplication::build(WitnessSettings::from_env()?).await?;
    witness.run_until_stopped().await?;
    Ok(())
}
