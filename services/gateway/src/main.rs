//! Runs the gateway with settings from the environment.

use gateway::{configuration::Settings, startup::Application};

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    custodian_telemetry::logging::init("gateway");
    let settings = Settings::from_env()?;
    let application = Application::build(settings).await?;
    application.run_until_stopped().await?;
    Ok(())
}
