//! `GET /.well-known/openid-configuration`, `GET /.well-known/smart-configuration` and
//! `GET /fhir/.well-known/smart-configuration`.
//!
//! They describe only what identity really does: no authorization endpoint (so no
//! authorization code flow, no launch), two grants, confidential clients with a shared secret.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{state::AppState, tokens::all_scopes};

/// Authorization server metadata (RFC 8414) with SMART App Launch's `capabilities`.
#[derive(Serialize, ToSchema)]
pub struct Configuration {
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub grant_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub capabilities: Vec<String>,
}

fn configuration(issuer: &str) -> Configuration {
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Configuration {
        issuer: issuer.to_string(),
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        token_endpoint: format!("{issuer}/auth/token"),
        revocation_endpoint: format!("{issuer}/auth/revoke"),
        grant_types_supported: strings(&["client_credentials", "password"]),
        token_endpoint_auth_methods_supported: strings(&[
            "client_secret_post",
            "client_secret_basic",
        ]),
        // Holding the token is the right to revoke it: no client authentication.
        revocation_endpoint_auth_methods_supported: strings(&["none"]),
        scopes_supported: all_scopes(),
        response_types_supported: Vec::new(),
        capabilities: strings(&[
            "client-confidential-symmetric",
            "permission-patient",
            "permission-user",
        ]),
    }
}

fn answer(state: &AppState) -> HttpResponse {
    HttpResponse::Ok().json(configuration(&state.tokens.issuer))
}

/// OpenID Provider / OAuth2 authorization server metadata.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "discovery",
    responses((status = 200, description = "Server metadata", body = Configuration)))]
pub async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    answer(&state)
}

/// SMART App Launch configuration.
#[utoipa::path(get, path = "/.well-known/smart-configuration", tag = "discovery",
    responses((status = 200, description = "SMART configuration", body = Configuration)))]
pub async fn smart_configuration(state: web::Data<AppState>) -> HttpResponse {
    answer(&state)
}

/// SMART App Launch configuration, under the FHIR base URL where SMART clients look for it.
#[utoipa::path(get, path = "/fhir/.well-known/smart-configuration", tag = "discovery",
    responses((status = 200, description = "SMART configuration", body = Configuration)))]
pub async fn fhir_smart_configuration(state: web::Data<AppState>) -> HttpResponse {
    answer(&state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_come_from_the_issuer() {
        let c = configuration("https://custodian.example");
        assert_eq!(c.token_endpoint, "https://custodian.example/auth/token");
        assert_eq!(
            c.jwks_uri,
            "https://custodian.example/.well-known/jwks.json"
        );
        assert!(c.grant_types_supported.contains(&"password".to_string()));
        assert!(c.response_types_supported.is_empty());
        for scope in [
            "patient/*.rs",
            "user/*.cruds",
            "system/*.cruds",
            "openid",
            "launch/patient",
        ] {
            assert!(c.scopes_supported.iter().any(|s| s == scope), "{scope}");
        }
    }
}
