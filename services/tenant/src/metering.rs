//! What the tenant service meters for the cost service (`mfg_common::metering`): each tenant's
//! registered machines, a level counted at every flush (`--metering-interval`) and held until
//! the next count, so a month of 15 machines is 15 machine-months. A deleted tenant's machines
//! are not counted.

use std::{sync::Arc, time::Duration};

use mfg_common::{metering::UsageMeter, shutdown::CancellationToken};
use mfg_proto::cost::v1::Meter;

use crate::store::TenantStore;

/// Counts each tenant's machines every `interval` until `shutdown`; a failed count keeps the
/// last levels and is logged.
pub async fn count_machines_every(
    store: Arc<dyn TenantStore>,
    meter: UsageMeter,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match store.machine_counts().await {
            Ok(counts) => meter.set_levels(
                Meter::Machines,
                counts
                    .into_iter()
                    .map(|(tenant, machines)| (tenant.0, machines as f64)),
            ),
            Err(error) => tracing::warn!(%error, "could not count the machines for metering"),
        }
    }
}
