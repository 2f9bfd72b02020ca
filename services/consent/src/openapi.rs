//! The OpenAPI document: every public path, including the `/consent/Consent` twins of the
//! `/fhir/Consent` interactions and the health and metrics endpoints.

use utoipa::{openapi::OpenApi as OpenApiDocument, Modify, OpenApi};

use crate::routes::{consent, decide, internal};

#[derive(OpenApi)]
#[openapi(
    info(title = "Custodian consent", description = "Patients' consents as enforceable contracts (FHIR R4 Consent)."),
    paths(
        consent::create,
        consent::search,
        consent::search_post,
        consent::type_history,
        consent::patch,
        consent::validate,
        consent::conditional_update,
        consent::conditional_delete,
        consent::read,
        consent::vread,
        consent::history,
        consent::update,
        consent::delete,
        decide::decide,
        internal::list,
        healthz,
        readyz,
        metrics,
    ),
    components(schemas(decide::DecideRequest, decide::DecideResponse)),
    modifiers(&ConsentPrefix),
    tags(
        (name = "Consent", description = "FHIR R4 Consent interactions, under /fhir and /consent"),
        (name = "decide", description = "Access decisions over stored consents"),
        (name = "internal", description = "Service-to-service (never forwarded by the gateway)"),
        (name = "operations", description = "Health and metrics"),
    )
)]
struct ApiDoc;

/// The service's OpenAPI document.
pub fn openapi() -> OpenApiDocument {
    let mut doc = ApiDoc::openapi();
    custodian_auth::openapi::finish(&mut doc, "consent");
    doc
}

/// The Consent interactions are served under `/consent` too: document the twins.
struct ConsentPrefix;

impl Modify for ConsentPrefix {
    fn modify(&self, openapi: &mut OpenApiDocument) {
        let twins: Vec<(String, utoipa::openapi::PathItem)> = openapi
            .paths
            .paths
            .iter()
            .filter_map(|(path, item)| {
                let rest = path.strip_prefix("/fhir/Consent")?;
                let mut item = item.clone();
                for operation in custodian_auth::openapi::operations_mut(&mut item) {
                    operation.operation_id = operation
                        .operation_id
                        .take()
                        .map(|id| format!("{id}_under_consent"));
                }
                Some((format!("/consent/Consent{rest}"), item))
            })
            .collect();
        openapi.paths.paths.extend(twins);
    }
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process is alive", body = Object)))]
#[allow(dead_code)]
fn healthz() {}

/// Readiness: PostgreSQL and Redis answer.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Object),
        (status = 503, description = "A dependency is failing", body = Object),
    )
)]
#[allow(dead_code)]
fn readyz() {}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
#[allow(dead_code)]
fn metrics() {}

#[cfg(test)]
mod tests {
    use super::openapi;

    #[test]
    fn documents_every_public_path() {
        let doc = openapi();
        for path in [
            "/fhir/Consent",
            "/fhir/Consent/{id}",
            "/fhir/Consent/{id}/_history/{vid}",
            "/fhir/Consent/{id}/_history",
            "/consent/Consent/{id}/_history",
            "/consent/Consent",
            "/consent/Consent/{id}",
            "/consent/Consent/{id}/_history/{vid}",
            "/consent/decide",
            "/internal/consents",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            assert!(
                doc.paths.paths.contains_key(path),
                "{path} is not documented"
            );
        }
        let put = doc.paths.paths["/consent/Consent/{id}"]
            .put
            .as_ref()
            .unwrap();
        assert_eq!(
            put.operation_id.as_deref(),
            Some("consent_update_under_consent")
        );
        let json = doc.to_json().unwrap();
        assert!(json.contains("\"smart\""));
    }
}
