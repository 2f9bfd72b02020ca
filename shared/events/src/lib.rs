//! Events between services: the access-event schema, the stream names, the transactional outbox
//! that makes publishing survive a Redis outage, and the consumers that read streams.
//!
//! - [`access`]: the access event every read, search, write or denial produces
//!   (schema in `shared/events/access-event.schema.json`).
//! - [`streams`]: stream keys, namespaced by a configurable prefix.
//! - [`outbox`]: `enqueue` inside the caller's transaction; [`outbox::Relay`] publishes.
//! - [`consumer`]: consumer-group reading with ack-after-processing, and a tail reader for
//!   replicas that must see every message.
//! - [`signing`]: producers sign the messages others obey (consent changes, suspensions,
//!   revocations, alerts, memberships); consumers verify them before any handler sees them.
//! - [`relationships`]: memberships and care relationships records reads from clinical data.

pub mod access;
pub mod alert;
pub mod consumer;
pub mod group_commit;
pub mod identity;
pub mod outbox;
pub mod relationships;
pub mod signing;
pub mod streams;

pub use access::{
    deserialize_foreign_event_id, foreign_event_id, AccessAction, AccessEvent, AccessOutcome,
    Actor, DecisionRecord, Source,
};
pub use alert::Alert;
pub use identity::IdentityEvent;
pub use relationships::{
    CareChange, CareFact, Member, MembershipChange, PatientLabels, RelationshipEvent,
};
pub use streams::Streams;

use diesel_migrations::{embed_migrations, EmbeddedMigrations};

/// The outbox table's migration; producers run it beside their own.
pub const OUTBOX_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("database: {0}")]
    Database(String),
    #[error("malformed event: {0}")]
    Malformed(String),
    #[error("signing: {0}")]
    Signing(String),
}
