//! Bundles are the FHIR REST core's (`custodian_fhir::bundle`).

pub use custodian_fhir::bundle::{raw, Bundle, Entry, Link, Request, Response, Search};
