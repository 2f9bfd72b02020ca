//! The gateway: Custodian's one public entry. It routes each path to the service that serves it
//! (paths and query strings unchanged), refuses missing, invalid or revoked tokens and suspended
//! users at the edge, and serves the merged OpenAPI document and its Swagger UI.
//!
//! - [`configuration`]: settings from the environment.
//! - [`routing`]: which service serves a path, which paths are public (pure functions).
//! - [`methods`]: the methods each documented path declares (others are a 405 with `Allow`).
//! - [`routes`]: the proxy handler, `/openapi.json` and `/docs`.
//! - [`forwarding`]: `X-Forwarded-*` as the services behind should see them (`TRUSTED_PROXIES`).
//! - [`readiness`]: `/readyz` checks of the services behind.
//! - [`metrics`]: upstream and authentication metrics.
//! - [`error`]: every failure as a FHIR `OperationOutcome`.
//! - [`startup`]: building and running the application.
//!
//! The request path makes no call to identity: signing keys are cached (refreshed when an
//! unknown key id appears), recent verifications are reused, and the deny list is in memory,
//! loaded from identity's snapshot and fed by the (signed) identity stream
//! ([`custodian_auth::deny::follow`]).

pub mod configuration;
pub mod error;
pub mod forwarding;
pub mod methods;
pub mod metrics;
pub mod readiness;
pub mod routes;
pub mod routing;
pub mod startup;

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Custodian gateway", description = "The gateway's own endpoints. Every other path is forwarded to the service that serves it; see /openapi.json for the whole API."),
    paths(
        routes::docs::openapi_json,
        routes::docs::docs,
        routes::health::healthz,
        routes::health::readyz,
        routes::health::metrics,
    ),
    tags(
        (name = "gateway", description = "API documentation"),
        (name = "operations", description = "Health probes and metrics")
    )
)]
struct ApiDoc;

/// The OpenAPI document of the gateway's own endpoints (merged into `openapi/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![utoipa::openapi::server::ServerBuilder::new()
        .url("/")
        .description(Some(
            "The gateway that serves this document (its public URL): every path below is reached \
             through it",
        ))
        .build()]);
    custodian_auth::openapi::finish(&mut doc, "gateway");
    doc
}
