//! Building and running the gateway: Redis, the deny list (identity's snapshot and the signed
//! identity stream), the token verifier, and the HTTP server with one pooled upstream client
//! per worker.

use std::{net::TcpListener, time::Duration};

use actix_web::{dev::Server, middleware::from_fn, web, App, HttpServer};
use custodian_auth::{
    deny::{self, DenySource},
    DenyList, TokenVerifier,
};
use custodian_events::{
    streams::{connect, RedisProbe},
    Streams,
};
use custodian_telemetry::tls::ListenTls;
use custodian_telemetry::{health, http::observe, shutdown::BackgroundTasks, Metrics, Readiness};

use crate::{
    configuration::Settings,
    error::StartupError,
    methods::MethodTable,
    metrics::GatewayMetrics,
    readiness::UpstreamProbe,
    routes::{self, proxy::ProxyState},
    routing::Upstream,
};

/// Connections each worker keeps to the services behind it.
const UPSTREAM_CONNECTIONS_PER_WORKER: usize = 512;
/// Idle pooled connections are dropped before the services' own keep-alive (actix-web's
/// default is 5 s) closes them, so a request is rarely sent on a connection being closed.
const UPSTREAM_IDLE: Duration = Duration::from_secs(4);

pub struct Application {
    port: u16,
    server: Server,
    tasks: BackgroundTasks,
    deny: DenyList,
}

impl Application {
    /// Connects to Redis, loads the deny list and binds `HOST:PORT` (port 0 picks a free one).
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let redis_url = settings.redis_url.expose();
        let redis = connect(redis_url)
            .await
            .map_err(|e| StartupError::Redis(e.to_string()))?;
        let deny = DenyList::new();
        let mut tasks = BackgroundTasks::new();
        let deny_probe = deny::follow(
            DenySource {
                identity_url: settings.upstreams.identity.base().to_string(),
                redis_url: redis_url.to_string(),
                stream: Streams::new(settings.stream_prefix.clone()).identity(),
                credential: Some(settings.internal_token.clone()),
            },
            deny.clone(),
            &mut tasks,
        )
        .await
        .map_err(|e| StartupError::Redis(e.to_string()))?;

        let verifier = TokenVerifier::remote(
            settings.jwks_url.clone(),
            settings.token_issuer.clone(),
            deny.clone(),
        );
        // Warm the key cache so the first request does not wait for it (best effort: unknown
        // key ids trigger a fetch anyway).
        let warm = verifier.clone();
        actix_web::rt::spawn(async move {
            if let Err(e) = warm.refresh().await {
                tracing::warn!(error = %e, "token keys not fetched yet");
            }
        });

        let metrics = Metrics::new("gateway");
        let state = web::Data::new(ProxyState {
            upstreams: settings.upstreams.clone(),
            max_body_bytes: settings.max_body_bytes,
            verifier,
            metrics: GatewayMetrics::new(&metrics),
            trusted_proxies: settings.trusted_proxies.clone(),
            methods: MethodTable::from_document(routes::docs::MERGED_OPENAPI)?,
        });
        let mut readiness = Readiness::new().with(RedisProbe(redis)).with(deny_probe);
        for upstream in Upstream::ALL {
            readiness = readiness.with(UpstreamProbe {
                upstream,
                url: settings.upstreams.get(upstream).clone(),
            });
        }

        let listener = TcpListener::bind(settings.listen.address())?;
        let port = listener.local_addr()?.port();
        let timeout = settings.upstream_timeout;
        let server = HttpServer::new(move || {
            let client = awc::Client::builder()
                .timeout(timeout)
                .disable_redirects()
                .no_default_headers()
                .connector(
                    awc::Connector::new()
                        .limit(UPSTREAM_CONNECTIONS_PER_WORKER)
                        .conn_keep_alive(UPSTREAM_IDLE)
                        .openssl(custodian_telemetry::tls::upstream_connector()),
                )
                .finish();
            let (readiness, metrics) = (readiness.clone(), metrics.clone());
            App::new()
                .wrap(from_fn(observe))
                .configure(move |cfg| health::configure(cfg, readiness, metrics))
                .configure(routes::docs::configure)
                .app_data(state.clone())
                .app_data(web::Data::new(client))
                .configure(routes::proxy::configure)
                .default_service(web::to(routes::proxy::forward))
        })
        .listen_tls(listener, settings.listen.tls.as_ref())?
        .run();
        tracing::info!(port, public_url = %settings.public_url, "gateway listening");
        Ok(Self {
            port,
            server,
            tasks,
            deny,
        })
    }

    /// The port the server bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The deny list the gateway enforces (for tests and diagnostics).
    pub fn deny_list(&self) -> DenyList {
        self.deny.clone()
    }

    /// Serves until the server stops (SIGTERM/SIGINT), then stops the background tasks.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.tasks.shutdown(Duration::from_secs(5)).await;
        served
    }
}
