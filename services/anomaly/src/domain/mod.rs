//! Rows and queries: what was scored ([`scored`]) and the alerts raised ([`alerts`]). Query
//! functions return diesel results only; callers decide what an error means.

pub mod alerts;
pub mod scored;
