//! What every handler shares.

use custodian_access::{AccessLog, Kernel};
use custodian_database::Pool;
use custodian_events::{outbox::Relay, AccessEvent};
use diesel_async::AsyncPgConnection;

use custodian_fhir_search::registry::Registry;

use crate::{
    crypto::RecordCipher, error::RecordsError, metrics::RecordsMetrics,
    relationships::Relationships,
};

pub struct AppState {
    pub pool: Pool,
    pub cipher: RecordCipher,
    /// Decides every access.
    pub kernel: Kernel,
    /// Where access events go.
    pub log: AccessLog,
    pub relay: Relay,
    /// Base URL clients see, without a trailing slash.
    pub public_url: String,
    pub metrics: RecordsMetrics,
    pub registry: &'static Registry,
    /// Memberships and care facts: where they are published, and the kernel's replica.
    pub relationships: Relationships,
    /// How long a finished `$export` job is served.
    pub export_retention: std::time::Duration,
}

impl AppState {
    /// What this service's searches search (its registry, the types it holds).
    pub fn search_store(&self) -> crate::search::Store {
        crate::search::store(self.registry)
    }

    pub async fn connection(
        &self,
    ) -> Result<custodian_database::PooledConnection<AsyncPgConnection>, RecordsError> {
        self.pool.get().await.map_err(crate::error::pool_error)
    }

    /// `{public}/fhir/{type}/{id}`.
    pub fn full_url(&self, resource_type: &str, id: &str) -> String {
        format!("{}/fhir/{resource_type}/{id}", self.public_url)
    }

    /// Writes access events to the outbox on `conn` (inside the caller's transaction, if any).
    pub async fn enqueue_events(
        &self,
        conn: &mut AsyncPgConnection,
        events: &[AccessEvent],
    ) -> Result<(), RecordsError> {
        Ok(self.log.enqueue(conn, events).await?)
    }

    /// Writes events outside any transaction and wakes the relay.
    pub async fn record(
        &self,
        conn: &mut AsyncPgConnection,
        events: &[AccessEvent],
    ) -> Result<(), RecordsError> {
        Ok(self.log.record(conn, events).await?)
    }
}
