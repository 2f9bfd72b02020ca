//! Rows, queries and the FHIR view of them: what was scored ([`scored`]), the alerts raised
//! ([`alerts`]), the other events of their incidents ([`alert_events`]) and their [`kind`],
//! the security team's [`feedback`], the [`relationships`] and patient [`labels`] the detector
//! is taught, its saved
//! state ([`snapshots`]), alerts as FHIR `DetectedIssue`s ([`detected_issue`]), and who may
//! read and review them ([`access`]). Query functions return diesel results only; callers
//! decide what an error means.

pub mod access;
pub mod alert_events;
pub mod alerts;
pub mod detected_issue;
pub mod feedback;
pub mod kind;
pub mod labels;
pub mod relationships;
pub mod scored;
pub mod snapshots;
