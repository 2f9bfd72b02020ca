//! `/internal/*`: service-to-service endpoints the gateway never forwards.

pub mod suspended;
