//! How the journal's writes reach the database: retried while it is unavailable and, with
//! fast commit, kept until flushed and written again after a restart of the server.

use std::time::Duration;

use mfg_common::shutdown::CancellationToken;

use super::Writer;
use crate::alerting::store::{AlertWrite, Written};

/// How often the journal asks where the database's log stands while fast writes are kept
/// and no write tells it.
pub(super) const CHECK: Duration = Duration::from_secs(1);

fn warn_restarted(write: &AlertWrite) {
    tracing::warn!(
        events = write.events.len(),
        alerts = write.alerts.len(),
        "the database server restarted: writing again the alert changes it may have lost \
         before flushing them"
    );
}

impl Writer {
    /// Asks the database where its log stands, between writes, while fast writes are kept:
    /// those flushed are forgotten, and all are written again if the server restarted.
    pub(super) async fn check(&mut self, shutdown: &CancellationToken) {
        let position = match self.store.log_position().await {
            Ok(Some(position)) => position,
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(%error, "the alert journal's check failed; it checks again");
                return;
            }
        };
        if let Some(mut again) = self.unflushed.observed(position) {
            warn_restarted(&again);
            self.write(&mut again, shutdown).await;
        }
    }

    /// Writes a group, retrying while the database is unavailable, and gives its events the
    /// cursors the database gave out; `false` when it gives up after shutdown began. A fast
    /// write is kept until it is known to be on disk, and written again with the others kept
    /// if the database server restarted meanwhile (see [`Unflushed`]).
    pub(super) async fn write(
        &mut self,
        write: &mut AlertWrite,
        shutdown: &CancellationToken,
    ) -> bool {
        if write.is_empty() {
            return true;
        }
        let Some(written) = self.write_retrying(write, shutdown).await else {
            return false;
        };
        for (event, cursor) in write.events.iter_mut().zip(written.cursors) {
            event.cursor = cursor;
        }
        let mut position = written.position.filter(|_| !self.durable);
        let mut kept: &AlertWrite = write;
        let mut again: Option<AlertWrite>;
        while let Some(at) = position {
            match self.unflushed.committed(kept, at) {
                None => return true,
                Some(merged) => {
                    // Every event of it has its cursor: it is written as it was.
                    warn_restarted(&merged);
                    again = Some(merged);
                    kept = again.as_ref().expect("just set");
                    let Some(written) = self.write_retrying(kept, shutdown).await else {
                        return false;
                    };
                    position = written.position;
                }
            }
        }
        true
    }

    /// Writes until it succeeds; `None` when it gives up after shutdown began.
    pub(super) async fn write_retrying(
        &self,
        write: &AlertWrite,
        shutdown: &CancellationToken,
    ) -> Option<Written> {
        let mut backoff = Duration::from_millis(50);
        let mut attempts_after_shutdown = 0;
        let mut retry: Option<AlertWrite> = None;
        loop {
            match self
                .store
                .write_alerts(retry.as_ref().unwrap_or(write))
                .await
            {
                Ok(written) => return Some(written),
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "writing alerts failed");
                }
            }
            // The attempt may have been committed all the same: the next looks for its events.
            retry.get_or_insert_with(|| AlertWrite {
                retried: true,
                ..write.clone()
            });
            if shutdown.is_cancelled() {
                attempts_after_shutdown += 1;
                if attempts_after_shutdown > 3 {
                    tracing::error!(
                        events = write.events.len(),
                        "alerts not written at shutdown: the evaluator re-raises what still holds"
                    );
                    return None;
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}
