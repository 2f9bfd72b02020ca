//! Building and running the application: database and migrations, signing keys, the first
//! administrator, background tasks (outbox relay, alerts consumer, identity stream tail, key
//! reloads) and the HTTP server.

use std::{net::TcpListener, time::Duration};

use actix_web::{dev::Server, middleware::from_fn, web, App, HttpServer};
use custodian_access::AccessLog;
use custodian_auth::{deny::DenyListUpdater, DenyList, TokenVerifier};
use custodian_database::{DatabaseError, PostgresProbe};
use custodian_events::{
    consumer::{latest_id, GroupConsumer, StreamTail},
    group_commit,
    outbox::Relay,
    signing::StreamSigner,
    streams::{self, RedisProbe},
    EventError, IdentityEvent, Streams, OUTBOX_MIGRATIONS,
};
use custodian_telemetry::tls::ListenTls;
use custodian_telemetry::{health, http::observe, shutdown::BackgroundTasks, Metrics, Readiness};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use tokio_util::sync::CancellationToken;

use crate::{
    bootstrap::{self, BootstrapError},
    configuration::Settings,
    consumers::SuspendOnAlert,
    error::Unexpected,
    hashing,
    keys::{KeyError, Keys},
    login::Logins,
    metrics::IdentityMetrics,
    models::{revoked_token, user},
    routes,
    state::AppState,
    suspension::Suspensions,
};

/// Identity's own tables.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The consumer group identity reads the alerts stream in.
pub const ALERTS_GROUP: &str = "identity";

/// How often keys are re-read, so a rotation on another replica reaches this one.
const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error("redis: {0}")]
    Redis(String),
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("could not listen: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Unexpected(#[from] Unexpected),
}

impl From<EventError> for StartupError {
    fn from(e: EventError) -> Self {
        StartupError::Redis(e.to_string())
    }
}

impl From<redis::RedisError> for StartupError {
    fn from(e: redis::RedisError) -> Self {
        StartupError::Redis(e.to_string())
    }
}

pub struct Application {
    port: u16,
    server: Server,
    tasks: BackgroundTasks,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let database_url = settings.database.url.expose();
        if settings.database.auto_create {
            custodian_database::ensure_database(database_url).await?;
        }
        custodian_database::run_migrations(database_url, OUTBOX_MIGRATIONS).await?;
        custodian_database::run_migrations(database_url, MIGRATIONS).await?;
        let pool = custodian_database::pool(database_url, settings.database.pool_size)?;
        let redis_url = settings.redis.url.expose();
        let redis = streams::connect(redis_url).await?;
        let streams = Streams::new(settings.redis.stream_prefix.clone());

        let metrics = Metrics::new("identity");
        let identity_metrics = IdentityMetrics::register(&metrics)?;
        // Suspensions and revocations are obeyed only when signed with identity's stream key.
        let signer = StreamSigner::from_env("identity").map_err(EventError::from)?;
        let relay = Relay::new(pool.clone(), redis.clone()).with_signer(signer);
        for collector in relay.collectors() {
            metrics.register(collector);
        }

        let deny = DenyList::new();
        let verifier = TokenVerifier::local(settings.tokens.issuer.clone(), deny.clone());
        let keys = Keys::load(pool.clone(), verifier.clone(), settings.tokens.ttl_seconds).await?;
        if let Some(admin) = &settings.admin {
            bootstrap::ensure_admin(&pool, admin).await?;
        }
        let dummy_hash = hashing::hash(uuid::Uuid::new_v4().to_string())
            .await
            .map_err(Unexpected::from)?;

        // The deny list identity's own verifier uses: read the stream position first, then the
        // snapshot, then tail from that position, so nothing in between is missed.
        let identity_after = latest_id(&mut redis.clone(), &streams.identity()).await?;
        load_deny_list(&pool, &deny).await?;

        let access_log = AccessLog::new(
            &streams,
            relay.clone(),
            custodian_database::pool(database_url, group_commit::WRITERS)?,
        );
        let suspensions = Suspensions::new(
            pool.clone(),
            streams.clone(),
            relay.clone(),
            identity_metrics.clone(),
            deny.clone(),
            access_log.clone(),
        );
        let mut tasks = BackgroundTasks::new();
        tasks.spawn(relay.clone().run(tasks.token()));
        tasks.spawn(custodian_database::keep_statistics(
            pool.clone(),
            &["users", "revoked_tokens", "login_lockouts", "event_outbox"],
            tasks.token().cancelled_owned(),
        ));
        let alerts = GroupConsumer::new(
            redis_url,
            streams.alerts(),
            ALERTS_GROUP,
            &settings.consumer_name,
        )
        .await?
        .claiming(settings.redis.claim);
        tasks.spawn(alerts.run(SuspendOnAlert(suspensions.clone()), tasks.token()));
        let tail = StreamTail::new(redis_url, streams.identity(), identity_after).await?;
        tasks.spawn(tail.run(DenyListUpdater(deny.clone()), tasks.token()));
        tasks.spawn(reload_keys(keys.clone(), tasks.token()));
        let logins = Logins::new(
            settings.login.clone(),
            pool.clone(),
            access_log.clone(),
            identity_metrics.clone(),
            dummy_hash,
        );
        tasks.spawn(logins.clone().run_sweeper(tasks.token()));

        let access = web::Data::new(settings.access.clone());
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            keys,
            tokens: settings.tokens.clone(),
            streams,
            relay,
            metrics: identity_metrics,
            verifier: verifier.clone(),
            suspensions,
            access: settings.access.clone(),
            access_log,
            logins,
        });
        let verifier = web::Data::new(verifier);
        let readiness = Readiness::new()
            .with(PostgresProbe(pool))
            .with(RedisProbe(redis));

        let listener = TcpListener::bind(settings.address())?;
        let port = listener.local_addr()?.port();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(observe))
                .app_data(state.clone())
                .app_data(access.clone())
                .app_data(verifier.clone())
                .configure(|cfg| health::configure(cfg, readiness.clone(), metrics.clone()))
                .configure(routes::configure)
        })
        .shutdown_timeout(20)
        .listen_tls(listener, settings.tls.as_ref())?
        .run();
        Ok(Self {
            port,
            server,
            tasks,
        })
    }

    /// The port the server listens on (useful with `PORT=0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM/SIGINT, lets in-flight requests finish, then stops the background
    /// tasks (the relay publishes what is left in the outbox first).
    pub async fn run_until_stopped(self) -> Result<(), std::io::Error> {
        let served = self.server.await;
        self.tasks.shutdown(Duration::from_secs(10)).await;
        served
    }
}

async fn load_deny_list(
    pool: &custodian_database::Pool,
    deny: &DenyList,
) -> Result<(), Unexpected> {
    let mut conn = pool.get().await?;
    let suspended = user::suspended_ids(&mut conn).await?;
    deny.load_suspended(suspended.into_iter().map(|id| id.to_string()));
    for (jti, expires_at) in revoked_token::active(&mut conn).await? {
        deny.apply(&IdentityEvent::TokenRevoked { jti, expires_at });
    }
    Ok(())
}

async fn reload_keys(keys: Keys, token: CancellationToken) {
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tokio::time::sleep(KEY_RELOAD_INTERVAL) => {}
        }
        if let Err(e) = keys.reload().await {
            tracing::warn!(error = %e, "signing keys could not be reloaded");
        }
    }
}
