//! Who may do what with consents is the access kernel's decision
//! (`custodian_access::consents`); this module names it for the service.

pub use custodian_access::consents::*;
