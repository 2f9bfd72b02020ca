//! Builds `ledger witness`: its own database (created and migrated from
//! `migrations-witness/`), its key (file or generated once), and the HTTP server with
//! `/healthz`, `/readyz` and `/metrics` like every service.

use std::{net::TcpListener, sync::Arc};

use actix_web::{dev::Server, middleware::from_fn, web, App, HttpServer};
use custodian_database::PostgresProbe;
use custodian_telemetry::tls::ListenTls;
use custodian_telemetry::{Metrics, Readiness};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use super::{configuration::WitnessSettings, storage, Witness, WitnessMetrics};
use crate::{
    cosignature::Cosigner,
    signing::{self, SigningError},
};

pub const WITNESS_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations-witness");

#[derive(Debug, thiserror::Error)]
pub enum WitnessStartupError {
    #[error(transparent)]
    Database(#[from] custodian_database::DatabaseError),
    #[error("witness key: {0}")]
    Key(String),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("could not listen: {0}")]
    Bind(#[from] std::io::Error),
}

#[derive(Debug, thiserror::Error)]
enum KeyLoadError {
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Signing(#[from] SigningError),
}

pub struct WitnessApplication {
    port: u16,
    server: Server,
    witness: Arc<Witness>,
}

async fn load_cosigner(
    settings: &WitnessSettings,
    pool: &custodian_database::Pool,
) -> Result<Cosigner, WitnessStartupError> {
    let key_error = |e: String| WitnessStartupError::Key(e);
    let cosigner = match &settings.key_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| key_error(format!("{}: {e}", path.display())))?;
            let line = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .ok_or_else(|| key_error(format!("{}: holds no key", path.display())))?;
            let parsed = signing::parse_private_key(line).map_err(|e| key_error(e.to_string()))?;
            Cosigner::from_private_key(&parsed).map_err(|e| key_error(e.to_string()))?
        }
        None => {
            let mut conn = pool.get().await.map_err(|e| key_error(e.to_string()))?;
            let (name, private_key) =
                storage::load_or_create_key(&mut conn, &settings.name, || {
                    Ok::<_, KeyLoadError>(signing::generate_private_key()?)
                })
                .await
                .map_err(|e| key_error(e.to_string()))?;
            Cosigner::from_raw(&name, &private_key).map_err(|e| key_error(e.to_string()))?
        }
    };
    if cosigner.name() != settings.name {
        return Err(key_error(format!(
            "the key is named {:?}, but WITNESS_NAME is {:?}",
            cosigner.name(),
            settings.name
        )));
    }
    Ok(cosigner)
}

impl WitnessApplication {
    pub async fn build(settings: WitnessSettings) -> Result<Self, WitnessStartupError> {
        let db_url = settings.database.url.expose();
        if settings.database.auto_create {
            custodian_database::ensure_database(db_url).await?;
        }
        custodian_database::run_migrations(db_url, WITNESS_MIGRATIONS).await?;
        let pool = custodian_database::pool(db_url, settings.database.pool_size)?;
        let cosigner = load_cosigner(&settings, &pool).await?;

        let metrics = Metrics::new("witness");
        let witness_metrics = WitnessMetrics::register(&metrics)?;
        let witness = Arc::new(
            Witness::new(pool.clone(), cosigner, &settings.logs, witness_metrics)
                .map_err(|e| WitnessStartupError::Key(e.to_string()))?,
        );
        let readiness = Readiness::new().with(PostgresProbe(pool));

        let listener = TcpListener::bind(settings.listen.address())?;
        let port = listener.local_addr()?.port();
        let data = web::Data::from(witness.clone());
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(custodian_telemetry::http::observe))
                .app_data(data.clone())
                .configure(|cfg| {
                    custodian_telemetry::health::configure(cfg, readiness.clone(), metrics.clone())
                })
                .configure(super::routes::configure)
        })
        .listen_tls(listener, settings.listen.tls.as_ref())?
        .run();
        tracing::info!(
            port,
            name = %settings.name,
            verifier_key = %witness.cosigner().verifier_key(),
            logs = settings.logs.len(),
            "witness listening"
        );
        Ok(Self {
            port,
            server,
            witness,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn verifier_key(&self) -> String {
        self.witness.cosigner().verifier_key()
    }

    /// Stops the server (tests stop witnesses to show a dead one only delays publication).
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server stops (SIGTERM/SIGINT or the stop handle).
    pub async fn run_until_stopped(self) -> Result<(), std::io::Error> {
        self.server.await
    }
}
