//! `GET /.well-known/jwks.json`

use actix_web::{http::header, web, HttpResponse};

use crate::state::AppState;

/// The public keys tokens are signed with: the active key and keys retired less than one
/// token lifetime ago.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "discovery",
    responses((status = 200, description = "A JSON Web Key Set (RFC 7517)", content_type = "application/json", body = serde_json::Value))
)]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(state.keys.jwks())
}
