//! Building and running the service: database and migrations, Redis, the outbox relay, the
//! token verifier, and the HTTP server.

use std::{net::TcpListener, time::Duration};

use actix_web::{dev::Server, error::InternalError, middleware, web, App, HttpServer};
use custodian_access::{AccessLog, MembershipStore, MembershipUpdater};
use custodian_auth::{DenyList, TokenVerifier};
use custodian_database::PostgresProbe;
use custodian_events::{
    consumer::{latest_id, StreamTail},
    group_commit,
    outbox::Relay,
    streams::RedisProbe,
    Streams, OUTBOX_MIGRATIONS,
};
use custodian_telemetry::tls::ListenTls;
use custodian_telemetry::{shutdown::BackgroundTasks, Metrics, Readiness};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use crate::{
    configuration::Settings,
    error::{ConsentError, StartupError},
    metrics::ConsentMetrics,
    routes::{self, AppState},
};

/// Consent's own tables.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Largest request body: a Consent with an embedded signature or attachment stays well below.
const MAX_BODY_BYTES: usize = 1 << 20;

/// How long background tasks get to drain after the HTTP server stopped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// `application/json`, `application/fhir+json` and other `+json` types.
fn is_json(mime: actix_web::mime::Mime) -> bool {
    mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json")
}

pub struct Application {
    port: u16,
    server: Server,
    background: BackgroundTasks,
}

impl Application {
    /// Prepares the database, connects to Redis, starts the outbox relay and binds the listener.
    /// Must run inside an actix system (`#[actix_web::main]` or `#[actix_web::test]`).
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let database_url = settings.database.url.expose();
        if settings.database.auto_create {
            custodian_database::ensure_database(database_url).await?;
        }
        custodian_database::run_migrations(database_url, OUTBOX_MIGRATIONS).await?;
        custodian_database::run_migrations(database_url, MIGRATIONS).await?;
        let pool = custodian_database::pool(database_url, settings.database.pool_size)?;
        reindex(&pool).await?;
        let redis = custodian_events::streams::connect(settings.redis.url.expose()).await?;

        let metrics = Metrics::new("consent");
        let consent_metrics =
            ConsentMetrics::new().map_err(|e| StartupError::Metrics(e.to_string()))?;
        for collector in consent_metrics.collectors() {
            metrics.register(collector);
        }
        // Records obeys consent changes only when signed with consent's stream key.
        let signer = custodian_events::signing::StreamSigner::from_env("consent")?;
        let relay = Relay::new(pool.clone(), redis.clone()).with_signer(signer);
        for collector in relay.collectors() {
            metrics.register(collector);
        }
        let mut background = BackgroundTasks::new();
        background.spawn(relay.clone().run(background.token()));
        background.spawn(custodian_database::keep_statistics(
            pool.clone(),
            &[
                "consents",
                "consent_history",
                "search_index",
                "search_index_versions",
                "event_outbox",
            ],
            background.token().cancelled_owned(),
        ));

        // Suspended users and revoked tokens: identity's snapshot, then the signed stream.
        let deny = DenyList::new();
        let deny_probe = custodian_auth::deny::follow(
            custodian_auth::deny::DenySource {
                identity_url: settings.identity_url.clone(),
                redis_url: settings.redis.url.expose().to_string(),
                stream: Streams::new(settings.redis.stream_prefix.clone()).identity(),
                credential: None,
            },
            deny.clone(),
            &mut background,
        )
        .await?;
        let verifier = TokenVerifier::remote(&settings.auth.jwks_url, &settings.auth.issuer, deny);
        // Memberships: position on the relationships stream first, then its tail (signed by
        // records), then records' snapshot (see `memberships`).
        let streams = Streams::new(settings.redis.stream_prefix.clone());
        let memberships = MembershipStore::new();
        let mut position = redis.clone();
        let after = latest_id(&mut position, &streams.relationships()).await?;
        let tail =
            StreamTail::new(settings.redis.url.expose(), streams.relationships(), after).await?;
        background.spawn(tail.run(MembershipUpdater(memberships.clone()), background.token()));
        actix_web::rt::spawn(crate::memberships::load_snapshot(
            settings.records_url.clone(),
            memberships.clone(),
            background.token(),
        ));
        // Not gated on memberships: records waits for consent's snapshot before it is ready,
        // so consent waiting for records' would leave neither ready (and an orchestrator routes
        // nothing to a pod that is not). Decisions wait for them instead: `/consent/decide`
        // answers 503 until they are loaded, and consent visibility is narrower until then.
        let readiness = Readiness::new()
            .with(PostgresProbe(pool.clone()))
            .with(RedisProbe(redis.clone()))
            .with(deny_probe);
        let log = AccessLog::new(
            &streams,
            relay.clone(),
            custodian_database::pool(database_url, group_commit::WRITERS)?,
        );
        let state = web::Data::new(AppState {
            pool,
            streams,
            relay,
            log,
            metrics: consent_metrics,
            public_url: settings.public_url.clone(),
            memberships,
        });
        // The access kernel's `Caller` extractor reads these (trusted proxies for the source).
        let access = web::Data::new(settings.access.clone());

        let listener = TcpListener::bind(settings.listen.address())?;
        let port = listener.local_addr()?.port();
        let verifier = web::Data::new(verifier);
        let server = HttpServer::new(move || {
            let readiness = readiness.clone();
            let metrics = metrics.clone();
            App::new()
                // Inner to `observe`, so a 406 is counted like any answer.
                .wrap(middleware::from_fn(custodian_fhir::http::negotiate))
                .wrap(middleware::from_fn(custodian_telemetry::http::observe))
                .app_data(state.clone())
                .app_data(verifier.clone())
                .app_data(access.clone())
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .app_data(
                    web::JsonConfig::default()
                        .limit(MAX_BODY_BYTES)
                        .content_type(is_json)
                        .error_handler(|err, _| {
                            let message =
                                format!("the body is not an acceptable JSON request: {err}");
                            InternalError::from_response(
                                err,
                                actix_web::ResponseError::error_response(
                                    &ConsentError::bad_request(message),
                                ),
                            )
                            .into()
                        }),
                )
                .app_data(web::QueryConfig::default().error_handler(|err, _| {
                    let message = format!("the query string is malformed: {err}");
                    InternalError::from_response(
                        err,
                        actix_web::ResponseError::error_response(&ConsentError::bad_request(
                            message,
                        )),
                    )
                    .into()
                }))
                .configure(move |cfg| {
                    custodian_telemetry::health::configure(cfg, readiness, metrics)
                })
                .configure(routes::configure)
                .default_service(web::to(routes::not_found))
        })
        .listen_tls(listener, settings.listen.tls.as_ref())?
        .shutdown_timeout(30)
        .run();
        // Compile the R4 schema now rather than on the first write, then give back what
        // parsing it freed.
        tokio::task::spawn_blocking(custodian_fhir::validate::warm_up)
            .await
            .ok();
        custodian_telemetry::memory::release_freed();
        Ok(Self {
            port,
            server,
            background,
        })
    }

    /// The port the server listens on (useful with `PORT=0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server (tests stop it before dropping their database).
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT (or the handle stops it), then stops the background tasks.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.background.shutdown(SHUTDOWN_GRACE).await;
        served
    }
}

/// The search index rewritten for the running code (consents are few: before serving).
async fn reindex(pool: &custodian_database::Pool) -> Result<(), StartupError> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| StartupError::SearchIndex(e.to_string()))?;
    let indexed = crate::store::reindex(&mut conn)
        .await
        .map_err(|e| StartupError::SearchIndex(e.to_string()))?;
    if indexed > 0 {
        tracing::info!(indexed, "search index of consents rewritten");
    }
    Ok(())
}
