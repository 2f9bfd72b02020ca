//! The route table: every endpoint identity serves, mounted in one place.

pub mod admin;
pub mod internal;
pub mod token;
pub mod well_known;

use actix_web::web;

use crate::error::{form_error, json_error, path_error};

/// Mounts every endpoint (health and metrics are mounted by `startup`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(64 * 1024)
            .error_handler(json_error),
    )
    .app_data(
        web::FormConfig::default()
            .limit(16 * 1024)
            .error_handler(form_error),
    )
    .app_data(web::PathConfig::default().error_handler(path_error))
    .route("/auth/token", web::post().to(token::issue::token))
    .route("/auth/revoke", web::post().to(token::revoke::revoke))
    .route(
        "/.well-known/jwks.json",
        web::get().to(well_known::jwks::jwks),
    )
    .route(
        "/.well-known/openid-configuration",
        web::get().to(well_known::discovery::openid_configuration),
    )
    .route(
        "/.well-known/smart-configuration",
        web::get().to(well_known::discovery::smart_configuration),
    )
    .route(
        "/fhir/.well-known/smart-configuration",
        web::get().to(well_known::discovery::fhir_smart_configuration),
    )
    .route(
        "/auth/admin/organizations",
        web::post().to(admin::organizations::create),
    )
    .route(
        "/auth/admin/organizations",
        web::get().to(admin::organizations::list),
    )
    .route("/auth/admin/users", web::post().to(admin::users::create))
    .route("/auth/admin/users/{id}", web::get().to(admin::users::read))
    .route(
        "/auth/admin/users/{id}/suspend",
        web::post().to(admin::users::suspend),
    )
    .route(
        "/auth/admin/users/{id}/reinstate",
        web::post().to(admin::users::reinstate),
    )
    .route(
        "/auth/admin/users/{id}/unlock",
        web::post().to(admin::users::unlock),
    )
    .route(
        "/auth/admin/clients",
        web::post().to(admin::clients::create),
    )
    .route(
        "/auth/admin/clients/{id}/unlock",
        web::post().to(admin::clients::unlock),
    )
    .route(
        "/auth/admin/keys/rotate",
        web::post().to(admin::keys::rotate),
    )
    .route(
        "/internal/suspended",
        web::get().to(internal::suspended::suspended),
    );
}
