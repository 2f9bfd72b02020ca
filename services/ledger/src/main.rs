use ledger::{
    configuration::Settings,
    startup::Application,
    witness::{configuration::WitnessSettings, startup::WitnessApplication},
};

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `ledger witness`: run as a witness of other logs (see `ledger::witness`).
    if std::env::args().nth(1).as_deref() == Some("witness") {
        custodian_telemetry::logging::init("witness");
        let witness = WitnessApplication::build(WitnessSettings::from_env()?).await?;
        witness.run_until_stopped().await?;
        return Ok(());
    }
    custodian_telemetry::logging::init("ledger");
    let settings = Settings::from_env()?;
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}
