//! Building and running the service: database and migrations, Redis, the consent replica, the
//! outbox relay, and the HTTP server.

use std::{net::TcpListener, time::Duration};

use actix_web::{dev::Server, middleware::from_fn, web, App, HttpServer};
use custodian_auth::{DenyList, TokenVerifier};
use custodian_database::PostgresProbe;
use custodian_events::{
    consumer::{latest_id, StreamTail},
    group_commit,
    outbox::Relay,
    streams::{connect, RedisProbe},
    Streams, OUTBOX_MIGRATIONS,
};
use custodian_telemetry::tls::ListenTls;
use custodian_telemetry::{health, shutdown::BackgroundTasks, Metrics, Readiness};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use custodian_access::{AccessLog, Kernel, MembershipProbe, MembershipUpdater};
use custodian_policy::ConsentStore;

use custodian_fhir_search::registry::Registry;

use crate::{
    configuration::Settings,
    consent::{load_snapshot, Replica, ReplicaProbe, ReplicaUpdater},
    crypto::RecordCipher,
    metrics::RecordsMetrics,
    relationships::Relationships,
    routes::{self, metadata::Capability},
    state::AppState,
};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Database(#[from] custodian_database::DatabaseError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("events: {0}")]
    Events(#[from] custodian_events::EventError),
    #[error("encryption key: {0}")]
    Key(#[from] crate::crypto::CryptoError),
    #[error("recording the custodians of stored patients: {0}")]
    Backfill(String),
    #[error("the embedded R4 JSON Schema did not compile")]
    Schema,
    #[error("could not listen: {0}")]
    Io(#[from] std::io::Error),
}

pub struct Application {
    port: u16,
    server: Server,
    tasks: BackgroundTasks,
}

impl Application {
    /// Builds everything and binds the listener (port 0 picks a free one). Must run on the
    /// actix runtime (the snapshot loader uses awc).
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let cipher = RecordCipher::from_source(&settings.key)?;
        // Compile the R4 schema once, before the first write needs it.
        let schema_ready = tokio::task::spawn_blocking(crate::domain::validation::warm_up)
            .await
            .unwrap_or(false);
        if !schema_ready {
            return Err(StartupError::Schema);
        }
        let url = settings.database_url.expose().to_string();
        if settings.database_auto_create {
            custodian_database::ensure_database(&url).await?;
        }
        custodian_database::run_migrations(&url, OUTBOX_MIGRATIONS).await?;
        custodian_database::run_migrations(&url, MIGRATIONS).await?;
        let pool = custodian_database::pool(&url, settings.database_pool_size)?;
        let mut redis = connect(&settings.redis_url).await?;
        let streams = Streams::new(settings.stream_prefix.clone());

        let metrics = Metrics::new("records");
        let records_metrics = RecordsMetrics::new();
        for c in records_metrics.collectors() {
            metrics.register(c);
        }
        let mut tasks = BackgroundTasks::new();

        // The access kernel, and its consents: position first, then tail and snapshot (see
        // `consent`).
        let kernel = Kernel::new(settings.access.clone(), ConsentStore::new());
        for c in kernel.collectors() {
            metrics.register(c);
        }
        let replica = Replica::new(kernel.clone());
        let after = latest_id(&mut redis, &streams.consent()).await?;
        let tail = StreamTail::new(&settings.redis_url, streams.consent(), after).await?;
        tasks.spawn(tail.run(ReplicaUpdater(replica.clone()), tasks.token()));
        actix_web::rt::spawn(load_snapshot(
            settings.consent_url.clone(),
            replica.clone(),
            tasks.token(),
        ));

        // Consent and other records instances obey memberships only when signed with records'
        // stream key (access events are signed too, and not verified).
        let signer = custodian_events::signing::StreamSigner::from_env("records")
            .map_err(custodian_events::EventError::from)?;
        let relay = Relay::new(pool.clone(), redis.clone()).with_signer(signer);
        for c in relay.collectors() {
            metrics.register(c);
        }
        tasks.spawn(relay.clone().run(tasks.token()));
        tasks.spawn(custodian_database::keep_statistics(
            pool.clone(),
            &[
                "resources",
                "resource_versions",
                "search_index",
                "compartments",
                "patient_keys",
                "access_reference_sets",
                "access_references",
                "event_outbox",
            ],
            tasks.token().cancelled_owned(),
        ));
        crate::access::backfill_custodians(&pool, &cipher).await?;
        crate::facts::backfill(&pool, &cipher, Registry::global(), &settings.public_url)
            .await
            .map_err(|e| StartupError::Backfill(e.to_string()))?;
        crate::facts::backfill_references(&pool, &cipher, &settings.public_url)
            .await
            .map_err(|e| StartupError::Backfill(e.to_string()))?;
        // In the background: searches answer meanwhile (see `reindex`).
        tasks.spawn(crate::reindex::run(
            pool.clone(),
            cipher.clone(),
            Registry::global(),
            tasks.token(),
        ));

        // Memberships: position on the relationships stream first, then its tail (other
        // instances' writes), then the tables, so nothing committed in between is missed
        // (see `relationships`).
        let relationships = Relationships {
            stream: streams.relationships(),
            store: kernel.memberships().clone(),
        };
        let after = latest_id(&mut redis, &relationships.stream).await?;
        let tail =
            StreamTail::new(&settings.redis_url, relationships.stream.clone(), after).await?;
        tasks.spawn(tail.run(
            MembershipUpdater(relationships.store.clone()),
            tasks.token(),
        ));
        let unexpected = |e: crate::error::RecordsError| StartupError::Backfill(e.to_string());
        crate::relationships::backfill(&pool, &cipher, &relationships.stream)
            .await
            .map_err(unexpected)?;
        let snapshot = {
            let mut conn = pool
                .get()
                .await
                .map_err(|e| unexpected(crate::error::pool_error(e)))?;
            crate::relationships::snapshot(&mut conn)
                .await
                .map_err(unexpected)?
        };
        tracing::info!(containers = snapshot.len(), "membership replica loaded");
        relationships.store.load(snapshot);
        relay.wake();

        let verifier = TokenVerifier::remote(
            settings.jwks_url.clone(),
            settings.token_issuer.clone(),
            DenyList::new(),
        );
        // Defence in depth (the gateway refuses them first): identity's snapshot of suspended
        // users and revoked tokens, then the signed identity stream.
        let deny_probe = custodian_auth::deny::follow(
            custodian_auth::deny::DenySource {
                identity_url: settings.identity_url.clone(),
                redis_url: settings.redis_url.clone(),
                stream: streams.identity(),
                credential: None,
            },
            verifier.deny_list().clone(),
            &mut tasks,
        )
        .await?;
        let registry = Registry::global();
        let capability = Capability(
            routes::metadata::capability_statement(registry, &settings.public_url).to_string(),
        );
        let kernel_memberships = kernel.memberships().clone();
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            cipher,
            kernel,
            log: AccessLog::new(
                &streams,
                relay.clone(),
                custodian_database::pool(&url, group_commit::WRITERS)?,
            ),
            relay,
            public_url: settings.public_url.clone(),
            metrics: records_metrics,
            registry,
            relationships,
            export_retention: settings.export_retention,
        });
        // Expired exports are deleted, interrupted ones failed, whether or not anyone polls.
        tasks.spawn(crate::exports::sweep(
            state.pool.clone(),
            settings.export_retention,
            tasks.token(),
        ));
        let capability = web::Data::new(capability);
        let readiness = Readiness::new()
            .with(PostgresProbe(pool))
            .with(RedisProbe(redis))
            .with(ReplicaProbe(replica))
            .with(MembershipProbe(kernel_memberships))
            .with(deny_probe);
        let verifier = web::Data::new(verifier);
        let access_settings = web::Data::new(settings.access.clone());

        let listener = TcpListener::bind(settings.listen.address())?;
        let port = listener.local_addr()?.port();
        let server = HttpServer::new(move || {
            App::new()
                // Inner to `observe`, so a 406 is counted like any answer.
                .wrap(from_fn(custodian_fhir::http::negotiate))
                .wrap(from_fn(custodian_telemetry::http::observe))
                .app_data(state.clone())
                .app_data(capability.clone())
                .app_data(verifier.clone())
                .app_data(access_settings.clone())
                .configure(|cfg| health::configure(cfg, readiness.clone(), metrics.clone()))
                .configure(routes::configure)
        })
        .listen_tls(listener, settings.listen.tls.as_ref())?
        .run();
        tracing::info!(port, "records listening");
        // What parsing the schemas and the backfills freed goes back to the system.
        custodian_telemetry::memory::release_freed();
        Ok(Self {
            port,
            server,
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM/SIGINT, then stops the background tasks (the relay drains).
    pub async fn run_until_stopped(self) -> Result<(), std::io::Error> {
        let result = self.server.await;
        self.tasks.shutdown(Duration::from_secs(10)).await;
        result
    }
}
