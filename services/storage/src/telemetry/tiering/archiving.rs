//! Archiving (hot → cold): a tenant's days past its hot retention, then the late readings of
//! days archived before, each encoded to Parquet off the runtime, uploaded under a key
//! recorded as pending first, checked with `head`, and only then committed.

use std::collections::HashSet;

use chrono::NaiveDate;

use crate::telemetry::tiering::{ENCODE_CHUNK, Tiering};
use crate::{
    directory::TenantInfo,
    error::{Result, StorageError},
    micros::Micros,
    store::TenantNo,
    telemetry::{
        archive::{self, ArchivedReading, Encoder},
        domain::{ingest::DAY_MICROS, tiering::Report},
        object_store::ObjectKey,
        store::{ColdObject, Range, Row, SeriesKey, day_range},
    },
};

impl Tiering {
    /// Archives the tenant's days past its hot retention (once rolled up), then the late
    /// readings of days archived before, as further parts.
    pub(super) async fn archive(
        &self,
        tenant: TenantNo,
        info: &TenantInfo,
        as_of: Micros,
        report: &mut Report,
    ) -> Result<()> {
        let store = &self.inner.store;
        let rolled_to = store
            .rollup_state(tenant)
            .await?
            .rolled_to
            .unwrap_or_default();
        let hot_until = as_of - i64::from(info.hot_days) * DAY_MICROS;
        for day in store.hot_days(tenant).await? {
            let end = day_range(day).end;
            if end > hot_until || end > rolled_to {
                break;
            }
            self.archive_day(tenant, info, day, report).await?;
        }
        // Readings that came after their day was archived: a further part of the day.
        let hot: HashSet<NaiveDate> = store.hot_days(tenant).await?.into_iter().collect();
        for day in store.late_days(tenant).await? {
            if !hot.contains(&day) {
                self.archive_late_day(tenant, info, day, report).await?;
            }
        }
        Ok(())
    }

    /// Archives one hot day of a tenant: encode, upload, verify, then commit and drop.
    pub(super) async fn archive_day(
        &self,
        tenant: TenantNo,
        info: &TenantInfo,
        day: NaiveDate,
        report: &mut Report,
    ) -> Result<()> {
        let store = &self.inner.store;
        let encoder = self.encode_day(tenant, day).await?;
        let readings = encoder.rows();
        if readings == 0 {
            if store.commit_day(tenant, day, 0, None).await? {
                report.hot_partitions_dropped += 1;
            }
            return Ok(());
        }
        let (key, bytes) = self.upload(tenant, info, day, encoder).await?;
        if store
            .commit_day(tenant, day, readings, Some((key.as_str(), bytes)))
            .await?
        {
            report.readings_archived += readings;
            report.objects_written += 1;
            report.hot_partitions_dropped += 1;
        } else {
            tracing::warn!(tenant = %info.id, %day, "the day changed while it was archived; the next run redoes it");
            self.discard_unless_committed(tenant, day, &key).await?;
        }
        Ok(())
    }

    /// Deletes an object uploaded for a day whose commit failed, unless another archive of the
    /// day (an export beside a tiering job, another replica) committed it under the same key:
    /// so that no object of the tenant's prefix is left that its manifest does not list.
    async fn discard_unless_committed(
        &self,
        tenant: TenantNo,
        day: NaiveDate,
        key: &ObjectKey,
    ) -> Result<()> {
        let store = &self.inner.store;
        let committed = store.cold_objects(tenant, day, day).await?;
        if !committed.iter().any(|object| object.key == key.as_str()) {
            self.inner.objects.delete(key).await?;
            store.forget_object(key.as_str()).await?;
        }
        Ok(())
    }

    /// Archives the readings of a tenant's day that came after the day was archived: those
    /// its earlier parts lack (the first write of a reading wins) as a further part, which
    /// commits with them joining the warm tier and every late reading of the day leaving.
    pub(super) async fn archive_late_day(
        &self,
        tenant: TenantNo,
        info: &TenantInfo,
        day: NaiveDate,
        report: &mut Report,
    ) -> Result<()> {
        let store = &self.inner.store;
        let range = day_range(day);
        let parts = store.cold_objects(tenant, day, day).await?;
        let (mut late, mut fresh, mut readings) = (0, Vec::new(), Vec::new());
        for (series, key) in store.series_of(tenant).await? {
            let points = store.late_points(series, range).await?;
            if points.is_empty() {
                continue;
            }
            late += points.len() as u64;
            let archived = self.archived_times(&parts, &key, range).await?;
            for (ts, value) in points {
                if !archived.contains(&ts) {
                    fresh.push(Row {
                        series_id: series,
                        ts,
                        value,
                    });
                    readings.push(ArchivedReading {
                        machine_id: key.machine_id.clone(),
                        metric: key.metric.clone(),
                        ts,
                        value,
                    });
                }
            }
        }
        if late == 0 {
            return Ok(());
        }
        let object = if readings.is_empty() {
            None
        } else {
            let encoder = encode_chunk(Encoder::new()?, readings).await?;
            Some(self.upload(tenant, info, day, encoder).await?)
        };
        let committed = store
            .commit_late(
                tenant,
                day,
                late,
                object.as_ref().map(|(key, bytes)| (key.as_str(), *bytes)),
                &fresh,
            )
            .await?;
        if !committed {
            tracing::warn!(tenant = %info.id, %day, "late readings came while they were archived; the next run redoes it");
            if let Some((key, _)) = &object {
                self.discard_unless_committed(tenant, day, key).await?;
            }
        } else if object.is_some() {
            report.readings_archived += fresh.len() as u64;
            report.objects_written += 1;
        }
        Ok(())
    }

    /// The times of a series' readings in a range that the objects hold.
    async fn archived_times(
        &self,
        objects: &[ColdObject],
        key: &SeriesKey,
        range: Range,
    ) -> Result<HashSet<Micros>> {
        let mut times = HashSet::new();
        for object in objects {
            let points = archive::read_series(
                self.inner.objects.as_ref(),
                &ObjectKey::new(&object.key)?,
                object.bytes,
                &key.machine_id,
                &key.metric,
                range.start,
                range.end,
            )
            .await?;
            times.extend(points.into_iter().map(|(ts, _)| ts));
        }
        Ok(times)
    }

    /// Encodes the day's readings of every series of the tenant, series by series.
    async fn encode_day(&self, tenant: TenantNo, day: NaiveDate) -> Result<Encoder> {
        let store = &self.inner.store;
        let range = day_range(day);
        let mut encoder = Encoder::new()?;
        let mut chunk = Vec::with_capacity(ENCODE_CHUNK);
        for (series, key) in store.series_of(tenant).await? {
            for (ts, value) in store.points(series, range).await? {
                chunk.push(ArchivedReading {
                    machine_id: key.machine_id.clone(),
                    metric: key.metric.clone(),
                    ts,
                    value,
                });
                if chunk.len() == ENCODE_CHUNK {
                    encoder = encode_chunk(encoder, std::mem::take(&mut chunk)).await?;
                }
            }
        }
        encode_chunk(encoder, chunk).await
    }

    /// Uploads a new part of the tenant's day under a key recorded as pending first (a retry
    /// reuses it) and checks its size; returns the key and the size.
    async fn upload(
        &self,
        tenant: TenantNo,
        info: &TenantInfo,
        day: NaiveDate,
        encoder: Encoder,
    ) -> Result<(ObjectKey, u64)> {
        self.ensure_lifecycle(info.id, info.hot_days, info.cold_days)
            .await?;
        let key = self
            .inner
            .store
            .pending_object(tenant, day, archive::part_key(info.id, day)?.as_str())
            .await?;
        let key = ObjectKey::new(key)?;
        let body = tokio::task::spawn_blocking(move || encoder.finish())
            .await
            .map_err(|e| StorageError::Internal(format!("encoding task failed: {e}")))??;
        let bytes = body.len() as u64;
        self.inner.objects.put(&key, body).await?;
        let stored = self.inner.objects.head(&key).await?;
        if stored.size != bytes {
            return Err(StorageError::Unavailable(format!(
                "object `{key}` holds {} bytes after an upload of {bytes}; the next run retries",
                stored.size
            )));
        }
        Ok((key, bytes))
    }
}

async fn encode_chunk(mut encoder: Encoder, chunk: Vec<ArchivedReading>) -> Result<Encoder> {
    tokio::task::spawn_blocking(move || {
        encoder.write(&chunk)?;
        Ok(encoder)
    })
    .await
    .map_err(|e| StorageError::Internal(format!("encoding task failed: {e}")))?
}
