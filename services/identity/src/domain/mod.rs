//! Input that has been checked: once parsed, a value is valid everywhere it travels.
//!
//! - [`Username`]: lower-cased login names.
//! - [`Password`]: a password of acceptable length; its `Debug` never shows it.
//! - [`reference`]: FHIR references (`Organization/<id>`, `Practitioner/<id>`, `Patient/<id>`).
//! - [`Label`]: short free text (names, departments, reasons).

mod label;
mod password;
pub mod reference;
mod username;

pub use label::Label;
pub use password::Password;
pub use reference::{OrganizationId, ResourceReference};
pub use username::Username;

/// Why input was refused; the message is safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);
