//! The identity service's entry point: configuration from the environment, then the server.

use identity::{configuration::Settings, startup::Application};

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    custodian_telemetry::logging::init("identity");
    let settings = Settings::from_env()?;
    let application = Application::build(settings).await?;
    tracing::info!(port = application.port(), "identity listening");
    application.run_until_stopped().await?;
    Ok(())
}
