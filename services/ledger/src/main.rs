use std::process::ExitCode;

use ledger::{configuration::Settings, startup::Application};

/// `ledger` serves; `ledger verify ...` checks a log (see `ledger::verify::cli`).
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("verify") => {
            actix_web::rt::System::new().block_on(ledger::verify::cli::run(&args[1..]))
        }
        _ => match actix_web::rt::System::new().block_on(serve()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ledger: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    custodian_telemetry::logging::init("ledger");
    let settings = Settings::from_env()?;
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}
