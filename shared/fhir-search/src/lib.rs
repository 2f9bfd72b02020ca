//! The one FHIR search engine every service that holds FHIR resources uses (records for the
//! clinical data, consent for `Consent`), so a search means the same at `/fhir/Consent` as at
//! `/fhir/Observation`.
//!
//! - [`registry`]: the R4 search parameters and the index values a resource yields for them
//!   (each store keeps them in its `search_index`).
//! - [`value_set`]: the codes of a ValueSet, for `:in` and `:not-in`, listed exactly or refused.
//! - [`query`]: search parameters compiled to one SQL statement over the store's `resources`
//!   and `search_index`, with what the caller may see added by the store
//!   ([`query::SearchQuery::restrict_with`]).
//! - [`index`]: writing the index rows of resources' current versions.
//! - [`page`]: reading a page (keyset or offset), its total when cheap or asked, its links, and
//!   the searchset Bundle.
//!
//! A store provides two relations: `resources` (`resource_type`, `resource_id`, `version`,
//! `last_updated`, `deleted`, `patient_ref`, `confidentiality`: one row per resource, its
//! current version) and `search_index` (the rows [`registry::Registry::extract`] gives, by
//! `resource_type`, `resource_id`).

pub mod index;
pub mod page;
pub mod query;
pub mod registry;
pub mod value_set;

pub use query::{Handling, SearchQuery, Store};
pub use registry::Registry;
