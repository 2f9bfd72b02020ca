//! The FHIR REST API (R4 4.0.1) under `/fhir`, one file per interaction.

pub mod apply;
pub mod bundle;
pub mod conditional;
pub mod create;
pub mod delete;
pub mod erase;
pub mod everything;
pub mod export;
pub mod fhirpath_patch;
pub mod history;
pub mod http;
pub mod internal;
pub mod meta;
pub mod metadata;
pub mod operations;
pub mod parameters;
pub mod patch;
pub mod read;
pub mod search;
pub mod transaction;
pub mod update;
pub mod validate;
pub mod write;

use actix_web::{web, HttpResponse, ResponseError};

use crate::{domain::ResourceType, error::RecordsError, state::AppState};

/// Bodies up to 32 MiB (large Bundles and documents).
pub const MAX_BODY: usize = 32 << 20;

/// A FHIR path: methods it does not serve are a 405 with an `OperationOutcome`.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(custodian_fhir::http::method_not_allowed))
}

/// Registers every FHIR route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_BODY))
        .service(resource("/fhir/metadata").route(web::get().to(metadata::metadata)))
        .service(web::resource("/internal/memberships").route(web::get().to(internal::memberships)))
        // Every `$` path, from the one table the CapabilityStatement lists: before the generic
        // routes, whose segments would also match them.
        .configure(operations::configure)
        .service(
            web::resource(["/fhir", "/fhir/"])
                .route(web::post().to(transaction::bundle))
                .default_service(web::to(custodian_fhir::http::method_not_allowed)),
        )
        .service(resource("/fhir/_history").route(web::get().to(history::system_history)))
        .service(
            resource("/fhir/{type}/_search")
                .route(web::post().to(search::search_post))
                .route(web::get().to(search::search_get)),
        )
        .service(resource("/fhir/{type}/_history").route(web::get().to(history::type_history)))
        .service(
            resource("/fhir/{type}")
                .route(web::get().to(search::search_get))
                .route(web::post().to(create::create))
                .route(web::put().to(conditional::update))
                .route(web::delete().to(conditional::delete))
                .route(web::patch().to(patch::conditional_patch)),
        )
        .service(resource("/fhir/{type}/{id}/_history/{vid}").route(web::get().to(read::vread)))
        .service(resource("/fhir/{type}/{id}/_history").route(web::get().to(history::history)))
        .service(
            resource("/fhir/{type}/{id}")
                .route(web::get().to(read::read))
                .route(web::put().to(update::update))
                .route(web::delete().to(delete::delete))
                .route(web::patch().to(patch::patch)),
        );
}

/// Counts the interaction: `fhir_operations_total{interaction, resource_type, outcome}`.
pub fn observe(
    state: &AppState,
    interaction: &str,
    raw_type: &str,
    result: &Result<HttpResponse, RecordsError>,
) {
    let label = if ResourceType::parse(raw_type).is_ok() {
        raw_type
    } else {
        "unknown"
    };
    let outcome = match result {
        Ok(_) => "ok",
        Err(e) => match e.status_code().as_u16() {
            400 => "invalid",
            401 => "unauthenticated",
            403 => "denied",
            404 => "not_found",
            410 => "gone",
            412 => "precondition_failed",
            415 => "unsupported_media_type",
            406 => "not_acceptable",
            422 => "unprocessable",
            409 => "conflict",
            503 => "unavailable",
            _ => "error",
        },
    };
    state.metrics.operation(interaction, label, outcome);
}
