//! `/openapi.json`: the committed document merging every service's API (kept fresh by a test
//! elsewhere), and `/docs`: Swagger UI (assets vendored into the binary, no CDN) showing it.

use actix_web::{http::header, web, HttpResponse};
use utoipa_swagger_ui::{Config, SwaggerUi};

/// The merged OpenAPI document of the whole suite.
pub const MERGED_OPENAPI: &str = include_str!("../../../../openapi/openapi.json");

/// The merged OpenAPI document of every service behind the gateway.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "gateway",
    responses((status = 200, description = "The merged OpenAPI document", content_type = "application/json"))
)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(MERGED_OPENAPI)
}

/// Swagger UI for the merged document (`/docs` redirects to `/docs/`).
#[utoipa::path(
    get,
    path = "/docs",
    tag = "gateway",
    responses((status = 308, description = "Redirect to the Swagger UI at /docs/"))
)]
pub async fn docs() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

/// Mounts `/openapi.json`, `/docs` and the Swagger UI under `/docs/`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi_json))
        .route("/docs", web::get().to(docs))
        .service(SwaggerUi::new("/docs/{_:.*}").config(Config::new(["/openapi.json"])));
}
