//! Offboarding's deletion in the storage service (decision 0014): what it holds of a deleted
//! tenant once its export is stored, across its halves: the tiers first, which refuse while
//! the export does not hold everything, then alerting, then the usage facts. Asked again after
//! a failure, each deletes what is left.

use uuid::Uuid;

use crate::{error::Result, service::Storage};

impl Storage {
    /// Deletes a deleted tenant's data, and with `purge_archive` its objects; returns how many
    /// objects went.
    pub async fn delete_tenant_data(&self, tenant: Uuid, purge_archive: bool) -> Result<u64> {
        let objects = self.tiering.delete_data(tenant, purge_archive).await?;
        self.alerting.forget_tenant(tenant).await?;
        self.usage.raw_reads().forget(tenant).await?;
        tracing::info!(%tenant, purge_archive, objects, "an offboarded tenant's data deleted");
        Ok(objects)
    }
}
