//! Graceful shutdown: actix-web drains in-flight requests on SIGTERM/SIGINT; afterwards the
//! background tasks (stream consumers, outbox relays) are told to stop and awaited, so a
//! message being processed is acknowledged or left pending, never half-done.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Background work a service runs beside its HTTP server.
#[derive(Default)]
pub struct BackgroundTasks {
    token: CancellationToken,
    handles: Vec<JoinHandle<()>>,
}

impl BackgroundTasks {
    pub fn new() -> Self {
        Self::default()
    }

    /// The token tasks watch to know when to stop.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    pub fn spawn<F>(&mut self, future: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.handles.push(tokio::spawn(future));
    }

    /// Signals every task and waits up to `grace` for them to finish.
    pub async fn shutdown(self, grace: Duration) {
        self.token.cancel();
        for handle in self.handles {
            if tokio::time::timeout(grace, handle).await.is_err() {
                tracing::warn!("background task did not stop within the grace period");
            }
        }
        tracing::info!("background tasks stopped");
    }
}
