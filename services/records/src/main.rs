use records::{configuration::Settings, startup::Application};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    custodian_telemetry::logging::init("records");
    let settings = Settings::from_env().map_err(std::io::Error::other)?;
    let app = Application::build(settings).await.map_err(|e| {
        tracing::error!(error = %e, "records could not start");
        std::io::Error::other(e)
    })?;
    app.run_until_stopped().await
}
