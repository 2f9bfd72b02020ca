//! The checkpoint signer: every interval, integrate what other replicas stored and sign a
//! checkpoint when the tree grew.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use crate::service::LedgerService;

pub async fn run(ledger: Arc<LedgerService>, interval: Duration, token: CancellationToken) {
    // The first tick is one interval away: opening the ledger already signed its state.
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = ticker.tick() => {}
        }
        if let Err(e) = ledger.catch_up().await {
            tracing::warn!(error = %e, "could not integrate stored leaves");
            continue;
        }
        if let Err(e) = ledger.sign_current(false).await {
            tracing::warn!(error = %e, "could not sign a checkpoint");
        }
    }
    // Sign what was appended before stopping, so the last entries are covered.
    if let Err(e) = ledger.sign_current(false).await {
        tracing::warn!(error = %e, "could not sign the final checkpoint");
    }
    tracing::info!("checkpoint signer stopped");
}
