//! What every handler shares.

use custodian_database::Pool;
use custodian_events::{outbox::Relay, AccessEvent, Streams};
use diesel_async::AsyncPgConnection;

use crate::{
    access::AccessControl, crypto::RecordCipher, domain::search_params::Registry,
    error::RecordsError, metrics::RecordsMetrics,
};

pub struct AppState {
    pub pool: Pool,
    pub cipher: RecordCipher,
    pub access: AccessControl,
    pub streams: Streams,
    pub relay: Relay,
    /// Base URL clients see, without a trailing slash.
    pub public_url: String,
    pub metrics: RecordsMetrics,
    pub registry: &'static Registry,
}

impl AppState {
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
        let stream = self.streams.access();
        let rows: Vec<(String, uuid::Uuid, serde_json::Value)> = events
            .iter()
            .map(|e| {
                Ok((
                    stream.clone(),
                    e.id,
                    serde_json::to_value(e).map_err(|e| RecordsError::Internal(e.to_string()))?,
                ))
            })
            .collect::<Result<_, RecordsError>>()?;
        custodian_events::outbox::enqueue_many(conn, &rows).await?;
        Ok(())
    }

    /// Writes events outside any transaction and wakes the relay.
    pub async fn record(
        &self,
        conn: &mut AsyncPgConnection,
        events: &[AccessEvent],
    ) -> Result<(), RecordsError> {
        self.enqueue_events(conn, events).await?;
        self.relay.wake();
        Ok(())
    }
}
