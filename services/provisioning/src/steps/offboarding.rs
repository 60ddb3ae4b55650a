//! The steps of an offboarding (decision 0014): the export, the grace period, and the
//! deletion of the tenant's data in the storage and cost services. Asked again, each has one
//! effect: an export of what is exported writes the same manifest, and a deletion of what is
//! gone deletes nothing.

use chrono::{DateTime, Utc};
use mfg_proto::{cost::v1 as cost, storage::v1 as storage};
use tonic::Request;
use uuid::Uuid;

use super::{DATA_CALL_DEADLINE, StepCall, Steps, failure, keyed};
use crate::domain::run::{Failure, Offboarding};

impl Steps {
    /// What the hot tier holds of the tenant moved to the cold tier, and a manifest of its
    /// objects written and verified by the storage service.
    pub(super) async fn export(&self, tenant: Uuid, key: &str) -> Result<(), Failure> {
        let request = storage::ExportTenantRequest {
            tenant_id: tenant.to_string(),
        };
        self.storage
            .clone()
            .export_tenant(with_data_deadline(keyed(request, key)?))
            .await
            .map_err(|status| failure("the storage service", &status))?;
        Ok(())
    }

    /// Done once the grace period after the tenant's deletion has passed, or at once when
    /// forced; until then the step waits, saying until when.
    pub(super) async fn grace_period(&self, call: &StepCall<'_>) -> Result<(), Failure> {
        if call.offboarding.force {
            return Ok(());
        }
        let deleted = match self.tenant(call.tenant).await {
            Ok(Some(found)) => found
                .delete_time
                .and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, t.nanos.unsigned_abs())),
            Ok(None) => None,
            Err(status) => return Err(failure("the tenant service", &status)),
        };
        let Some(deleted) = deleted else {
            return Err(Failure::Permanent(format!(
                "tenant `{}` is not deleted: nothing of it is deleted",
                call.tenant
            )));
        };
        let due =
            deleted + chrono::Duration::from_std(self.grace).unwrap_or(chrono::TimeDelta::MAX);
        if call.now >= due {
            return Ok(());
        }
        Err(Failure::NotUntil(
            due,
            format!(
                "the tenant's data is kept until {} (the grace period after its deletion); \
                 DeleteTenant with `force` skips it",
                due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ))
    }

    /// The tenant's data deleted in the storage service (its objects too when asked), then in
    /// the cost service.
    pub(super) async fn delete_data(
        &self,
        tenant: Uuid,
        key: &str,
        offboarding: Offboarding,
    ) -> Result<(), Failure> {
        let request = storage::DeleteTenantDataRequest {
            tenant_id: tenant.to_string(),
            purge_archive: offboarding.purge_archive,
        };
        self.storage
            .clone()
            .delete_tenant_data(with_data_deadline(keyed(request, key)?))
            .await
            .map_err(|status| failure("the storage service", &status))?;
        let request = cost::DeleteTenantCostsRequest {
            tenant_id: tenant.to_string(),
        };
        self.cost
            .clone()
            .delete_tenant_costs(keyed(request, key)?)
            .await
            .map_err(|status| failure("the cost service", &status))?;
        Ok(())
    }
}

/// `request` with [`DATA_CALL_DEADLINE`] instead of the usual one.
pub(super) fn with_data_deadline<T>(mut request: Request<T>) -> Request<T> {
    request.set_timeout(DATA_CALL_DEADLINE);
    request
}
