//! Deletion, offboarding's last step in the tiers (decision 0014): what they hold of a deleted
//! tenant once its export is stored, and its objects too when asked. Asked again, it deletes
//! what is left: nothing, once done.

use uuid::Uuid;

use crate::{
    directory::TenantState,
    error::{Result, StorageError},
    micros::Micros,
    store::TenantNo,
    telemetry::{archive, object_store::ObjectKey, tiering::Tiering},
};

/// Past every bucket a rollup can have: expiring the rollups before it expires them all.
const END_OF_TIME: Micros = Micros(253_402_300_799_000_000); // 9999-12-31T23:59:59Z

impl Tiering {
    /// Deletes a deleted tenant's series, rollups and objects' records, and with
    /// `purge_archive` its objects, export and lifecycle rule; returns how many objects went.
    /// Refused while the tenant is not deleted, or holds readings its export does not (the
    /// hot tier still holds some, or there is no manifest).
    pub async fn delete_data(&self, tenant: Uuid, purge_archive: bool) -> Result<u64> {
        let info = self.inner.directory.fresh_tenant(tenant).await?;
        if info.state != TenantState::Deleted {
            return Err(StorageError::NotDeleted(tenant.to_string()));
        }
        let manifest = archive::manifest_key(tenant)?;
        if let Some(no) = self.inner.store.find_tenant(tenant).await?
            && self.holds_data(no).await?
        {
            self.check_exported(tenant, no, &manifest).await?;
            self.inner.store.expire_rollups(no, END_OF_TIME).await?;
            self.inner.store.forget_tenant(no).await?;
        }
        if !purge_archive {
            return Ok(0);
        }
        let deleted = self.delete_objects(tenant, &manifest).await?;
        self.release(tenant).await?;
        Ok(deleted)
    }

    /// Whether the store holds anything of the tenant's: series, or objects.
    async fn holds_data(&self, no: TenantNo) -> Result<bool> {
        let store = &self.inner.store;
        Ok(!store.series_of(no).await?.is_empty()
            || !store
                .cold_objects(no, Default::default(), super::export::LAST_DAY)
                .await?
                .is_empty())
    }

    /// Refuses a tenant whose hot tier holds readings, or that has no export manifest.
    async fn check_exported(&self, tenant: Uuid, no: TenantNo, manifest: &ObjectKey) -> Result<()> {
        let store = &self.inner.store;
        let hot = !store.hot_days(no).await?.is_empty() || !store.late_days(no).await?.is_empty();
        let exported = match self.inner.objects.head(manifest).await {
            Ok(_) => true,
            Err(crate::telemetry::object_store::ObjectError::NotFound(_)) => false,
            Err(error) => return Err(error.into()),
        };
        if hot || !exported {
            return Err(StorageError::NotExported(tenant.to_string()));
        }
        Ok(())
    }

    /// Deletes every object under the tenant's prefix, the manifest last, so that a deletion
    /// cut short finds the manifest when asked again; returns how many went.
    async fn delete_objects(&self, tenant: Uuid, manifest: &ObjectKey) -> Result<u64> {
        let objects = self
            .inner
            .objects
            .list(&archive::tenant_prefix(tenant))
            .await?;
        for object in objects.iter().filter(|o| &o.key != manifest) {
            self.inner.objects.delete(&object.key).await?;
        }
        self.inner.objects.delete(manifest).await?;
        Ok(objects.len() as u64)
    }
}
