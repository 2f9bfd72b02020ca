//! Building and running the service: database (created when missing, migrated), Redis, the
//! detector rebuilt from recent scores and taught the stored relationships (dismissals, care
//! facts) and patient labels, the access-stream consumer, the relationships-stream consumer, the outbox relay
//! (which signs the alerts) and the webhook worker as background tasks, the deny list
//! (identity's snapshot, then the signed identity stream), and the HTTP server.

use std::{
    net::TcpListener,
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{dev::Server, middleware::from_fn, web, App, HttpServer};
use custodian_access::{AccessLog, AccessSettings};
use custodian_auth::{
    deny::{self, DenySource},
    DenyList, TokenVerifier,
};
use custodian_database::{ensure_database, pool, run_migrations, Pool, PostgresProbe};
use custodian_events::{
    consumer::GroupConsumer,
    group_commit,
    outbox::Relay,
    signing::StreamSigner,
    streams::{connect, RedisProbe},
    EventError, Streams, OUTBOX_MIGRATIONS,
};
use custodian_telemetry::tls::{ListenTls, ServerTls};
use custodian_telemetry::{health, shutdown::BackgroundTasks, Metrics, Readiness};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use crate::{
    care_facts::{CareFacts, RELATIONSHIPS_GROUP},
    configuration::Settings,
    consumer::{rebuild, AccessScorer, Rebuilt, SharedDetector, SnapshotSchedule},
    domain::{labels, relationships},
    error::ApiError,
    metrics::AnomalyMetrics,
    model::Detector,
    routes::{self, Review},
    webhook::{Webhook, WebhookWaker},
};

/// The service's own tables (`scored_events`, `alerts`, `alert_feedback`, `relationships`,
/// `patient_labels`, `webhook_deliveries`, `detector_snapshots` ...).
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The consumer group anomaly reads the access stream in.
pub const CONSUMER_GROUP: &str = "anomaly";

/// How long background tasks get to finish after the HTTP server stopped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] custodian_database::DatabaseError),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("could not get a database connection: {0}")]
    Pool(String),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Events(#[from] custodian_events::EventError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("could not bind {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

pub struct Application {
    port: u16,
    server: Server,
    background: BackgroundTasks,
    /// The webhook worker (on the actix runtime: its HTTP client is not `Send`).
    webhook: Option<tokio::task::JoinHandle<()>>,
    pool: Pool,
    detector: SharedDetector,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let database = &settings.database;
        if database.auto_create {
            ensure_database(database.url.expose()).await?;
        }
        run_migrations(database.url.expose(), OUTBOX_MIGRATIONS).await?;
        run_migrations(database.url.expose(), MIGRATIONS).await?;
        let pool = pool(database.url.expose(), database.pool_size)?;
        let redis = connect(settings.redis.url.expose()).await?;
        let streams = Streams::new(settings.redis.stream_prefix.clone());

        let detector: SharedDetector = Arc::new(Mutex::new(Detector::with_config(
            settings.anomaly.alert_threshold,
            settings.anomaly.model,
        )));
        {
            let mut conn = pool
                .get()
                .await
                .map_err(|e| StartupError::Pool(e.to_string()))?;
            match rebuild(&mut conn, &detector).await? {
                Rebuilt::Snapshot { events_after } => tracing::info!(
                    events_after,
                    "detector restored from its saved state and the scores stored after it"
                ),
                Rebuilt::Recent { events } => tracing::info!(
                    events,
                    "no saved detector state: windows rebuilt from recent scores"
                ),
            }
            let taught = relationships::replay(&mut conn, &detector).await?;
            let labelled = labels::replay(&mut conn, &detector).await?;
            tracing::info!(
                relationships = taught,
                patients_labelled = labelled,
                "detector taught the stored relationships and patient labels"
            );
        }

        let metrics = Metrics::new("anomaly");
        let anomaly_metrics = AnomalyMetrics::new()?;
        for collector in anomaly_metrics.collectors() {
            metrics.register(collector);
        }
        // Identity suspends users on alerts, so it obeys only alerts signed with this key.
        let signer = StreamSigner::load_trusted("anomaly", &settings.signing_key_file)
            .map_err(EventError::from)?;
        let relay = Relay::new(pool.clone(), redis.clone()).with_signer(signer);
        for collector in relay.collectors() {
            metrics.register(collector);
        }

        let mut background = BackgroundTasks::new();
        let (webhook, webhook_waker) = match settings.webhook.clone() {
            Some(webhook_settings) => {
                let worker = Webhook::new(pool.clone(), webhook_settings, anomaly_metrics.clone());
                let waker = worker.waker();
                let token = background.token();
                (Some(actix_web::rt::spawn(worker.run(token))), waker)
            }
            None => (None, WebhookWaker::default()),
        };
        let consumer = GroupConsumer::new(
            settings.redis.url.expose(),
            streams.access(),
            CONSUMER_GROUP,
            &settings.consumer_name,
        )
        .await?
        .claiming(settings.redis.claim);
        let scorer = AccessScorer {
            pool: pool.clone(),
            detector: detector.clone(),
            alerts_stream: streams.alerts(),
            suspend: settings.anomaly.suspend,
            suspend_confidence: settings.anomaly.suspend_confidence,
            relay: relay.clone(),
            metrics: anomaly_metrics.clone(),
            webhook: webhook_waker,
            snapshots: SnapshotSchedule::every(settings.anomaly.snapshot_every),
        };
        background.spawn(scorer.clone().raise_late_alerts(background.token()));
        background.spawn(consumer.run_batched(scorer, background.token()));
        // Care facts records reads from clinical data (signed by records).
        let care = GroupConsumer::new(
            settings.redis.url.expose(),
            streams.relationships(),
            RELATIONSHIPS_GROUP,
            &settings.consumer_name,
        )
        .await?
        .claiming(settings.redis.claim);
        background.spawn(care.run_batched(
            CareFacts {
                pool: pool.clone(),
                detector: detector.clone(),
                metrics: anomaly_metrics.clone(),
            },
            background.token(),
        ));
        let review = Review {
            log: AccessLog::new(
                &streams,
                relay.clone(),
                custodian_database::pool(database.url.expose(), group_commit::WRITERS)?,
            ),
            detector: detector.clone(),
            metrics: anomaly_metrics,
        };
        background.spawn(relay.run(background.token()));
        background.spawn(custodian_database::keep_statistics(
            pool.clone(),
            &[
                "scored_events",
                "relationships",
                "alert_events",
                "event_outbox",
            ],
            background.token().cancelled_owned(),
        ));

        // Suspended users and revoked tokens are refused here too, not only at the gateway.
        let deny = DenyList::new();
        let deny_probe = deny::follow(
            DenySource {
                identity_url: settings.identity_url.clone(),
                redis_url: settings.redis.url.expose().to_string(),
                stream: streams.identity(),
                credential: Some(settings.internal_token.clone()),
            },
            deny.clone(),
            &mut background,
        )
        .await?;
        let verifier = TokenVerifier::remote(
            settings.auth.jwks_url.clone(),
            settings.auth.issuer.clone(),
            deny,
        );
        let readiness = Readiness::new()
            .with(PostgresProbe(pool.clone()))
            .with(RedisProbe(redis))
            .with(deny_probe);

        let address = settings.listen.address();
        let listener = TcpListener::bind(&address).map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { address, source })?
            .port();
        let server = run(
            listener,
            settings.listen.tls.as_ref(),
            Shared {
                pool: pool.clone(),
                verifier,
                access: settings.access.clone(),
                review,
            },
            readiness,
            metrics,
        )?;
        Ok(Self {
            port,
            server,
            background,
            webhook,
            pool,
            detector,
        })
    }

    /// The port bound (useful with `PORT=0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The pool, for tests that look at the tables.
    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    /// The live detector (tests and diagnostics).
    pub fn detector(&self) -> SharedDetector {
        self.detector.clone()
    }

    /// A handle to stop the HTTP server (tests stop apps to clean up).
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT (or the handle stops the server), then stops the consumer
    /// and the relay and waits for them.
    pub async fn run_until_stopped(self) -> Result<(), std::io::Error> {
        let result = self.server.await;
        self.background.shutdown(SHUTDOWN_GRACE).await;
        if let Some(webhook) = self.webhook {
            if tokio::time::timeout(SHUTDOWN_GRACE, webhook).await.is_err() {
                tracing::warn!("the webhook worker did not stop within the grace period");
            }
        }
        result
    }
}

/// What every worker's handlers share.
struct Shared {
    pool: Pool,
    verifier: TokenVerifier,
    access: AccessSettings,
    review: Review,
}

fn run(
    listener: TcpListener,
    tls: Option<&ServerTls>,
    shared: Shared,
    readiness: Readiness,
    metrics: Metrics,
) -> Result<Server, StartupError> {
    let pool = web::Data::new(shared.pool);
    let verifier = web::Data::new(shared.verifier);
    let access = web::Data::new(shared.access);
    let review = web::Data::new(shared.review);
    let server = HttpServer::new(move || {
        let readiness = readiness.clone();
        let metrics = metrics.clone();
        App::new()
            .wrap(from_fn(custodian_telemetry::http::observe))
            .app_data(pool.clone())
            .app_data(verifier.clone())
            .app_data(access.clone())
            .app_data(review.clone())
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| ApiError::invalid(e.to_string()).into()),
            )
            .configure(move |cfg| health::configure(cfg, readiness, metrics))
            .configure(routes::configure)
    })
    .listen_tls(listener, tls)
    .map_err(|source| StartupError::Bind {
        address: "listener".into(),
        source,
    })?
    .run();
    Ok(server)
}
