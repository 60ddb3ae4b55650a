//! What the tenant service meters for the cost service (`mfg_common::metering`): each tenant's
//! registered machines, a level counted at every flush (`--metering-interval`) and held until
//! the next count, so a month of 15 machines is 15 machine-months. A deleted tenant's machines
//! are not counted.

use mfg_proto::cost::v1::Meter;
use uuid::Uuid;

use crate::{error::Result, store::TenantStore};

/// Each tenant's machines, as levels of [`Meter::Machines`].
pub async fn machine_levels(store: &dyn TenantStore) -> Result<Vec<(Meter, Vec<(Uuid, f64)>)>> {
    let counts = store.machine_counts().await?;
    Ok(vec![(
        Meter::Machines,
        counts
            .into_iter()
            .map(|(tenant, machines)| (tenant.0, machines as f64))
            .collect(),
    )])
}
