//! The export's warm tier (decision 0014): every rollup the tenant still holds, one Parquet file
//! per resolution beside its readings (`archive::rollups`), each read back and hashed for the
//! manifest like the readings' objects. The rollups outlive the readings they summarize (their
//! retention is longer), so the export carries what the cold tier no longer holds.

use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::export::{Entry, hex};
use crate::{
    error::{Result, StorageError},
    micros::Micros,
    store::TenantNo,
    telemetry::{
        archive::{self, ExportedRollup},
        domain::ingest::DAY_MICROS,
        store::{Range, Resolution},
        tiering::Tiering,
    },
};

impl Tiering {
    /// Writes the tenant's rollups of each resolution it has, up to `now`, and returns their
    /// manifest entries.
    pub(super) async fn export_rollups(
        &self,
        tenant: Uuid,
        no: TenantNo,
        now: Micros,
    ) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for resolution in Resolution::ALL {
            let rows = self.rollups_of(no, resolution, now).await?;
            if rows.is_empty() {
                continue;
            }
            let buckets = rows.len() as u64;
            let body = tokio::task::spawn_blocking(move || archive::encode_rollups(rows))
                .await
                .map_err(|e| StorageError::Internal(format!("encoding task failed: {e}")))??;
            let key = archive::rollups_key(tenant, resolution)?;
            self.inner.objects.put(&key, body.clone()).await?;
            let stored = self.inner.objects.get(&key).await?;
            if stored != body {
                return Err(StorageError::Unavailable(format!(
                    "object `{key}` read back differs from what was written; the export is not \
                     verified"
                )));
            }
            let sha256 = tokio::task::spawn_blocking(move || hex(&Sha256::digest(&stored)))
                .await
                .map_err(|e| StorageError::Internal(format!("hashing task failed: {e}")))?;
            entries.push(Entry {
                key: key.to_string(),
                kind: resolution.table(),
                day: None,
                readings: None,
                buckets: Some(buckets),
                bytes: body.len() as u64,
                sha256,
            });
        }
        Ok(entries)
    }

    /// Every rollup of `resolution` of the tenant's series whose bucket starts before `now`
    /// (a day on, for readings a little ahead of the clock).
    async fn rollups_of(
        &self,
        no: TenantNo,
        resolution: Resolution,
        now: Micros,
    ) -> Result<Vec<ExportedRollup>> {
        let store = &self.inner.store;
        let every = [Range {
            start: Micros(0),
            end: Micros(now.0 + DAY_MICROS),
        }];
        let mut rows = Vec::new();
        for (series, key) in store.series_of(no).await? {
            for (bucket, rollup) in store.rollups_in(series, resolution, &every).await? {
                rows.push(ExportedRollup {
                    machine_id: key.machine_id.clone(),
                    metric: key.metric.clone(),
                    bucket,
                    rollup,
                });
            }
        }
        Ok(rows)
    }
}
