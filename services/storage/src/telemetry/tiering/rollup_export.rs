//! The export's warm tier (decision 0014): every rollup the tenant still holds, one Parquet file
//! per resolution beside its readings (`archive::rollups`), each read back and hashed for the
//! manifest like the readings' objects. The rollups outlive the readings they summarize (their
//! retention is longer), so the export carries what the cold tier no longer holds.

use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::export::{Entry, hex};
use crate::{
    error::{Result, StorageError},
    micros::Micros,
    store::TenantNo,
    telemetry::{
        archive::{self, ExportedRollup, RollupEncoder},
        domain::{Fields, ingest::DAY_MICROS},
        store::{Range, Resolution, SeriesId, SeriesKey},
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
        let mut series = self.inner.store.series_of(no).await?;
        series
            .sort_by(|(_, a), (_, b)| (&a.machine_id, &a.metric).cmp(&(&b.machine_id, &b.metric)));
        let mut entries = Vec::new();
        for resolution in Resolution::ALL {
            let Some((body, buckets)) = self.encode_rollups(&series, resolution, now).await? else {
                continue;
            };
            let key = archive::rollups_key(tenant, resolution)?;
            self.inner.objects.put(&key, body.clone()).await?;
            let stored = self.inner.objects.get(&key).await?;
            if stored != body {
                return Err(StorageError::Unavailable(format!(
                    "object `{key}` read back differs from what was written; the export is not \
                     verified"
                )));
            }
            let sha256 = blocking(move || hex(&Sha256::digest(&stored))).await?;
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

    /// The file of every rollup of `resolution` of the tenant's `series` (sorted by machine
    /// and metric) whose bucket starts before a day after `now` (readings may run a little
    /// ahead of the clock), and how many buckets it holds; `None` when it has none. Encoded a
    /// series at a time.
    async fn encode_rollups(
        &self,
        series: &[(SeriesId, SeriesKey)],
        resolution: Resolution,
        now: Micros,
    ) -> Result<Option<(Bytes, u64)>> {
        let every = [Range {
            start: Micros(0),
            end: Micros(now.0 + DAY_MICROS),
        }];
        let mut encoder = RollupEncoder::new()?;
        for (id, key) in series {
            let mut buckets = self
                .inner
                .store
                .rollups_in(*id, resolution, &every, Fields::All)
                .await?;
            if buckets.is_empty() {
                continue;
            }
            buckets.sort_by_key(|(bucket, _)| *bucket);
            let rows = buckets
                .into_iter()
                .map(|(bucket, rollup)| ExportedRollup {
                    machine_id: key.machine_id.clone(),
                    metric: key.metric.clone(),
                    bucket,
                    rollup,
                })
                .collect();
            encoder = blocking(move || {
                encoder.write(rows)?;
                Ok::<_, StorageError>(encoder)
            })
            .await??;
        }
        let buckets = encoder.rows();
        if buckets == 0 {
            return Ok(None);
        }
        let body = blocking(move || encoder.finish()).await??;
        Ok(Some((body, buckets)))
    }
}

/// Runs CPU work off the async runtime.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StorageError::Internal(format!("an export task failed: {e}")))
}
