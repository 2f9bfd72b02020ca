//! Builds the application: database (created and migrated), Redis, the ledger loaded from its
//! leaves, the access-stream consumer and the checkpoint signer in the background, the deny list
//! (identity's snapshot, then the signed identity stream), and the HTTP server bound to
//! `HOST:PORT` (port 0 picks a free one; [`Application::port`] says which).

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::{dev::Server, middleware::from_fn, web, App, HttpServer};
use custodian_auth::{
    deny::{self, DenySource},
    DenyList, TokenVerifier,
};
use custodian_database::PostgresProbe;
use custodian_events::{consumer::GroupConsumer, streams::RedisProbe, Streams};
use custodian_telemetry::tls::ListenTls;
use custodian_telemetry::{shutdown::BackgroundTasks, Metrics, Readiness};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use crate::{
    checkpointer,
    configuration::Settings,
    consumer::{AccessEventHandler, GROUP},
    keys::{self, KeyDirectory},
    service::{LedgerMetrics, LedgerService},
    witnessing::{self, WitnessingMetrics},
};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How long background tasks get to finish after the server stopped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] custodian_database::DatabaseError),
    #[error("redis: {0}")]
    Redis(String),
    #[error("ledger: {0}")]
    Ledger(String),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("could not listen: {0}")]
    Bind(#[from] std::io::Error),
}

pub struct Application {
    port: u16,
    server: Server,
    tasks: BackgroundTasks,
    ledger: Arc<LedgerService>,
}

/// Stops a running application (tests restart the app on the same database).
#[derive(Clone)]
pub struct StopHandle {
    server: actix_web::dev::ServerHandle,
}

impl StopHandle {
    pub async fn stop(&self) {
        self.server.stop(true).await;
    }
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let db_url = settings.database.url.expose();
        if settings.database.auto_create {
            custodian_database::ensure_database(db_url).await?;
        }
        custodian_database::run_migrations(db_url, MIGRATIONS).await?;
        let pool = custodian_database::pool(db_url, settings.database.pool_size)?;

        let redis_url = settings.redis.url.expose();
        let redis = custodian_events::streams::connect(redis_url)
            .await
            .map_err(|e| StartupError::Redis(e.to_string()))?;

        let signing_keys = {
            let mut conn = pool
                .get()
                .await
                .map_err(|e| StartupError::Ledger(e.to_string()))?;
            keys::load(
                &mut conn,
                &settings.origin,
                settings.signing_key_file.as_deref(),
            )
            .await
            .map_err(|e| StartupError::Ledger(e.to_string()))?
        };
        let key_directory = web::Data::new(KeyDirectory {
            retired: signing_keys.retired,
            witnesses: settings
                .witnessing
                .witnesses
                .iter()
                .map(|w| (w.name().to_string(), w.verifier.verifier_key().to_string()))
                .collect(),
            witness_quorum: settings.witnessing.quorum,
        });

        let metrics = Metrics::new("ledger");
        let ledger_metrics = LedgerMetrics::register(&metrics)?;
        let witnessing_metrics = WitnessingMetrics::register(&metrics, &settings.witnessing)?;
        let ledger = LedgerService::open(
            pool.clone(),
            signing_keys.signer,
            ledger_metrics,
            settings.witnessing.quorum,
        )
        .await
        .map_err(|e| StartupError::Ledger(e.to_string()))?;
        witnessing::restore_published(&ledger, &settings.witnessing)
            .await
            .map_err(|e| StartupError::Ledger(e.to_string()))?;

        let mut tasks = BackgroundTasks::new();
        let streams = Streams::new(settings.redis.stream_prefix.clone());
        let consumer =
            GroupConsumer::new(redis_url, streams.access(), GROUP, &settings.consumer_name)
                .await
                .map_err(|e| StartupError::Redis(e.to_string()))?
                .claiming(settings.redis.claim);
        tasks.spawn(consumer.run_batched(AccessEventHandler::new(ledger.clone()), tasks.token()));
        tasks.spawn(custodian_database::keep_statistics(
            pool.clone(),
            &["leaves", "checkpoints"],
            tasks.token().cancelled_owned(),
        ));
        tasks.spawn(checkpointer::run(
            ledger.clone(),
            settings.checkpoint_interval,
            tasks.token(),
        ));
        // Its HTTP client is tied to this thread's runtime: a local task, stopped by the token.
        actix_web::rt::spawn(witnessing::run(
            ledger.clone(),
            settings.witnessing.clone(),
            witnessing_metrics,
            settings.checkpoint_interval,
            tasks.token(),
        ));

        // Suspended users and revoked tokens are refused here too, not only at the gateway.
        let deny = DenyList::new();
        let deny_probe = deny::follow(
            DenySource {
                identity_url: settings.identity_url.clone(),
                redis_url: redis_url.to_string(),
                stream: streams.identity(),
                credential: Some(settings.internal_token.clone()),
            },
            deny.clone(),
            &mut tasks,
        )
        .await
        .map_err(|e| StartupError::Redis(e.to_string()))?;
        let verifier = TokenVerifier::remote(&settings.auth.jwks_url, &settings.auth.issuer, deny);
        let readiness = Readiness::new()
            .with(PostgresProbe(pool.clone()))
            .with(RedisProbe(redis))
            .with(deny_probe);

        let listener = TcpListener::bind(settings.listen.address())?;
        let port = listener.local_addr()?.port();
        let data = web::Data::from(ledger.clone());
        let access = web::Data::new(settings.access.clone());
        let public_url = web::Data::new(crate::routes::audit_event::PublicUrl(
            settings.public_url.clone(),
        ));
        let server = HttpServer::new(move || {
            App::new()
                // Inner to `observe`, so a 406 is counted like any answer.
                .wrap(from_fn(custodian_fhir::http::negotiate))
                .wrap(from_fn(custodian_telemetry::http::observe))
                .app_data(data.clone())
                .app_data(web::Data::new(verifier.clone()))
                .app_data(access.clone())
                .app_data(key_directory.clone())
                .app_data(public_url.clone())
                .configure(|cfg| {
                    custodian_telemetry::health::configure(cfg, readiness.clone(), metrics.clone())
                })
                .configure(crate::routes::configure)
        })
        .listen_tls(listener, settings.listen.tls.as_ref())?
        .run();
        tracing::info!(port, origin = %settings.origin, "ledger listening");
        Ok(Self {
            port,
            server,
            tasks,
            ledger,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The ledger's state (tests read the tree directly).
    pub fn ledger(&self) -> Arc<LedgerService> {
        self.ledger.clone()
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            server: self.server.handle(),
        }
    }

    /// Serves until the server stops (SIGTERM/SIGINT or [`StopHandle::stop`]), then stops the
    /// consumer and the signer and waits for them.
    pub async fn run_until_stopped(self) -> Result<(), std::io::Error> {
        let result = self.server.await;
        self.tasks.shutdown(SHUTDOWN_GRACE).await;
        result
    }
}
