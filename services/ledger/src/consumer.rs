//! The access-stream handler: every access event becomes a leaf, exactly once.
//!
//! The consumer hands over every message of a read at once ([`BatchHandler`]): the whole batch
//! is appended in one transaction, one commit (and one fsync) for up to 200 events.
//!
//! Malformed events are rejected (the consumer dead-letters them); database failures are
//! retried (the message stays pending and is redelivered). Redelivery of an event already
//! appended is harmless: storage ignores a known `event_id`.

use std::sync::Arc;

use custodian_events::{
    consumer::{BatchHandler, Handler, HandlerError},
    AccessEvent,
};

use crate::{error::LedgerError, service::LedgerService};

/// The consumer group the ledger reads the access stream in.
pub const GROUP: &str = "ledger";

pub struct AccessEventHandler {
    ledger: Arc<LedgerService>,
}

impl AccessEventHandler {
    pub fn new(ledger: Arc<LedgerService>) -> Self {
        Self { ledger }
    }
}

impl Handler for AccessEventHandler {
    async fn handle(&self, payload: &str) -> Result<(), HandlerError> {
        let event = AccessEvent::parse(payload).map_err(|e| HandlerError::Reject(e.to_string()))?;
        match self.ledger.append(&[(payload.to_string(), event)]).await {
            Ok(_) => Ok(()),
            Err(LedgerError::Validation(reason)) => Err(HandlerError::Reject(reason)),
            Err(e) => Err(HandlerError::Retry(e.to_string())),
        }
    }
}

impl BatchHandler for AccessEventHandler {
    async fn handle_batch(&self, payloads: &[String]) -> Vec<Result<(), HandlerError>> {
        let mut outcomes: Vec<Option<Result<(), HandlerError>>> =
            Vec::with_capacity(payloads.len());
        let mut valid = Vec::with_capacity(payloads.len());
        for payload in payloads {
            match AccessEvent::parse(payload) {
                Ok(event) => {
                    valid.push((payload.clone(), event));
                    outcomes.push(None);
                }
                Err(e) => outcomes.push(Some(Err(HandlerError::Reject(e.to_string())))),
            }
        }
        let appended: Result<(), String> = if valid.is_empty() {
            Ok(())
        } else {
            self.ledger
                .append(&valid)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        outcomes
            .into_iter()
            .map(|o| match o {
                Some(rejected) => rejected,
                None => appended.clone().map_err(HandlerError::Retry),
            })
            .collect()
    }
}
