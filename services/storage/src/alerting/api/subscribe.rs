//! `SubscribeAlerts`: a tenant's alert events, live, after a replay of what the subscriber
//! missed.
//!
//! The first message names the tenant, the filters and the cursor to resume after (zero: new
//! events only). The server subscribes to the journal's live events first, then replays the
//! stored events after the cursor, then goes on live, skipping what it already sent: nothing
//! is missed in between. Later messages change the filters, or ack a cursor (recorded; a
//! subscriber resumes from what it handled by naming it when it reconnects).
//!
//! A subscriber that reads slowly holds only its own task: events wait in a buffer of
//! [`OUTBOUND`] messages, and the journal's fan-out keeps a bounded backlog for it. Past that
//! it is told it lagged (`SubscriptionLagged`, with the last cursor it was sent), and the server
//! resumes it from the stored log, so it still receives every event, in order.

use std::{collections::HashSet, sync::Arc};

use mfg_common::shutdown::CancellationToken;
use mfg_proto::storage::v1::{
    self as pb, subscribe_alerts_request::Message as Inbound,
    subscribe_alerts_response::Message as Outbound,
};
use tokio::sync::{broadcast, mpsc};
use tonic::{Status, Streaming};
use uuid::Uuid;

use crate::alerting::api::convert;
use crate::{
    alerting::{
        Alerting,
        domain::{alert::AlertEvent, alert_rule::Severity},
    },
    error::StorageError,
};

/// How many messages wait for a slow subscriber in its own buffer.
pub const OUTBOUND: usize = 256;
/// How many stored events one replay query reads.
const REPLAY_PAGE: i64 = 500;

/// What a subscriber wants.
#[derive(Debug, Default)]
pub struct Filters {
    severities: HashSet<Severity>,
    machine_ids: HashSet<String>,
    rule_ids: HashSet<Uuid>,
}

impl Filters {
    /// Parses a subscription's filters.
    pub fn parse(subscription: &pb::AlertSubscription) -> Result<Self, StorageError> {
        let mut filters = Self::default();
        for (i, value) in subscription.severities.iter().enumerate() {
            let severity = match pb::Severity::try_from(*value) {
                Ok(pb::Severity::Critical) => Severity::Critical,
                Ok(pb::Severity::Major) => Severity::Major,
                Ok(pb::Severity::Minor) => Severity::Minor,
                Ok(pb::Severity::Warning) => Severity::Warning,
                _ => {
                    return Err(StorageError::invalid(
                        format!("subscribe.severities[{i}]"),
                        format!("{value} is not a severity"),
                    ));
                }
            };
            filters.severities.insert(severity);
        }
        filters.machine_ids = subscription.machine_ids.iter().cloned().collect();
        for (i, id) in subscription.rule_ids.iter().enumerate() {
            let id = Uuid::parse_str(id).map_err(|_| {
                StorageError::invalid(format!("subscribe.rule_ids[{i}]"), "must be a UUID")
            })?;
            filters.rule_ids.insert(id);
        }
        Ok(filters)
    }

    /// Whether an event passes.
    pub fn pass(&self, event: &AlertEvent) -> bool {
        let alert = &event.alert;
        (self.severities.is_empty() || self.severities.contains(&alert.severity))
            && (self.machine_ids.is_empty() || self.machine_ids.contains(&alert.machine_id))
            && (self.rule_ids.is_empty() || self.rule_ids.contains(&alert.rule_id))
    }
}

/// One subscription's task.
pub struct Subscription {
    /// The alerting operations.
    pub alerting: Alerting,
    /// The tenant.
    pub tenant: Uuid,
    /// The filters.
    pub filters: Filters,
    /// The last cursor sent (or resumed after).
    pub sent: u64,
    /// The live events, subscribed to before the replay.
    pub live: broadcast::Receiver<Arc<AlertEvent>>,
    /// Ends the subscription when the service stops.
    pub shutdown: CancellationToken,
    /// Its place under the key's and the tenant's caps, held while it runs.
    pub _slot: crate::alerting::subscribers::SubscriberSlot,
    /// Where lags are counted.
    pub metrics: Arc<crate::metrics::StorageMetrics>,
}

type Sender = mpsc::Sender<Result<pb::SubscribeAlertsResponse, Status>>;

async fn send(outbound: &Sender, message: Outbound) -> bool {
    outbound
        .send(Ok(pb::SubscribeAlertsResponse {
            message: Some(message),
        }))
        .await
        .is_ok()
}

impl Subscription {
    /// Serves the subscription until the client goes away or the stream fails.
    pub async fn run(
        mut self,
        mut inbound: Streaming<pb::SubscribeAlertsRequest>,
        outbound: Sender,
    ) {
        if self.sent > 0 && !self.replay(&outbound).await {
            return;
        }
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => {
                    let status = Status::unavailable(
                        "the storage service is shutting down: resume after the last cursor received",
                    );
                    let _ = outbound.send(Err(status)).await;
                    return;
                }
                message = inbound.message() => match message {
                    Ok(Some(pb::SubscribeAlertsRequest { message: Some(Inbound::Subscribe(change)) })) => {
                        if change.tenant_id != self.tenant.to_string() {
                            let status = Status::invalid_argument(
                                "a subscription stays with its tenant: open another stream for another one",
                            );
                            let _ = outbound.send(Err(status)).await;
                            return;
                        }
                        match Filters::parse(&change) {
                            Ok(filters) => self.filters = filters,
                            Err(error) => {
                                let _ = outbound.send(Err(error.into())).await;
                                return;
                            }
                        }
                    }
                    Ok(Some(pb::SubscribeAlertsRequest { message: Some(Inbound::Ack(ack)) })) => {
                        tracing::trace!(cursor = ack.cursor, "alert events acked");
                    }
                    Ok(Some(_)) => {
                        let _ = outbound
                            .send(Err(Status::invalid_argument("a message must carry subscribe or ack")))
                            .await;
                        return;
                    }
                    Ok(None) => return,
                    // A message that does not decode (INVALID_ARGUMENT) is told; to a client
                    // that went away, the status goes nowhere.
                    Err(status) => {
                        let _ = outbound.send(Err(status)).await;
                        return;
                    }
                },
                event = self.live.recv() => match event {
                    Ok(event) => {
                        if event.cursor <= self.sent || event.alert.tenant_id != self.tenant {
                            continue;
                        }
                        self.sent = event.cursor;
                        if self.filters.pass(&event)
                            && !send(&outbound, Outbound::Event(convert::event((*event).clone()))).await
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.metrics.subscriber_lagged();
                        let lagged = pb::SubscriptionLagged { resume_after: self.sent };
                        if !send(&outbound, Outbound::Lagged(lagged)).await || !self.replay(&outbound).await {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }

    /// Sends the stored events after `sent`, until none is left.
    async fn replay(&mut self, outbound: &Sender) -> bool {
        loop {
            let events = match self
                .alerting
                .store()
                .events_after(self.tenant, self.sent, REPLAY_PAGE)
                .await
            {
                Ok(events) => events,
                Err(error) => {
                    let _ = outbound.send(Err(error.into())).await;
                    return false;
                }
            };
            let done = events.len() < REPLAY_PAGE as usize;
            for event in events {
                self.sent = event.cursor;
                if self.filters.pass(&event)
                    && !send(outbound, Outbound::Event(convert::event(event))).await
                {
                    return false;
                }
            }
            if done {
                return true;
            }
        }
    }
}
