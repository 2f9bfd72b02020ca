use ledger::{configuration::Settings, startup::Application};

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    custodian_telemetry::logging::init("ledger");
    let settings = Settings::from_env()?;
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}
