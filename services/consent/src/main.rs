//! The consent service's entry point: configuration from the environment, then serve until
//! SIGTERM/SIGINT.

use consent::{configuration::Settings, startup::Application};

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    custodian_telemetry::logging::init("consent");
    let settings = Settings::from_env()?;
    let application = Application::build(settings).await?;
    tracing::info!(port = application.port(), "consent service listening");
    application.run_until_stopped().await?;
    Ok(())
}
