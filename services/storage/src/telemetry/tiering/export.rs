//! Export, the first step of offboarding (decision 0014): what a tenant that no longer writes
//! still holds in the hot tier moves to the cold tier, whatever its retention, and a manifest
//! of every object of the tenant is written beside them, with its rollups (`rollup_export`).
//! Each object is read back and its size checked before the manifest lists it with its SHA-256,
//! and the manifest is read back too, so that an export that returns is stored and verified:
//! nothing is deleted before that.

use chrono::NaiveDate;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::{
    directory::TenantInfo,
    error::{Result, StorageError},
    micros::Micros,
    store::TenantNo,
    telemetry::{archive, domain::tiering::Report, object_store::ObjectKey, tiering::Tiering},
};

/// The last day an object may hold, for a range of every day (1970 onwards): both databases
/// store it, where `NaiveDate::MAX` is out of PostgreSQL's range and out of order as SQLite's
/// text.
pub(super) const LAST_DAY: NaiveDate = NaiveDate::from_ymd_opt(9999, 12, 31).expect("a date");

/// What an export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// The manifest's key.
    pub manifest_key: ObjectKey,
    /// How many objects it lists.
    pub objects: u64,
    /// How many readings they hold.
    pub readings: u64,
    /// Their size, in bytes.
    pub bytes: u64,
}

/// One object of a tenant, as the manifest lists it: one record of a JSON array, which
/// DuckDB's `read_json` reads as a row.
#[derive(Debug, Serialize)]
pub(super) struct Entry {
    pub(super) key: String,
    /// `readings` (a day's, in the archive's format), or the rollups of one resolution
    /// (`rollups_1m`, `rollups_15m`, `rollups_1h`, in `archive::rollups`' format).
    pub(super) kind: &'static str,
    /// A readings object's day, `YYYY-MM-DD`, which DuckDB reads as a date.
    pub(super) day: Option<String>,
    /// How many readings a readings object holds.
    pub(super) readings: Option<u64>,
    /// How many buckets a rollups object holds.
    pub(super) buckets: Option<u64>,
    pub(super) bytes: u64,
    pub(super) sha256: String,
}

impl Tiering {
    /// Exports a tenant that no longer writes, as of `now`: its readings rolled up and archived,
    /// every day, then the manifest of its objects, each checked. Exporting again archives
    /// nothing more and writes the same manifest.
    pub async fn export(&self, tenant: Uuid, now: Micros) -> Result<Export> {
        let info = self.inner.directory.fresh_tenant(tenant).await?;
        if info.check_writable().is_ok() {
            return Err(StorageError::StillWriting(tenant.to_string()));
        }
        let entries = match self.inner.store.find_tenant(tenant).await? {
            Some(no) => {
                self.archive_everything(no, &info, now).await?;
                let mut entries = self.checked_entries(no).await?;
                entries.extend(self.export_rollups(tenant, no, now).await?);
                entries
            }
            None => Vec::new(),
        };
        let manifest_key = archive::manifest_key(tenant)?;
        self.write_checked(&manifest_key, &entries).await?;
        Ok(Export {
            manifest_key,
            objects: entries.len() as u64,
            readings: entries.iter().filter_map(|e| e.readings).sum(),
            bytes: entries.iter().map(|e| e.bytes).sum(),
        })
    }

    /// Rolls the tenant's readings up to `now`, then archives every day it holds in the hot
    /// tier and every late reading. A day that changes meanwhile fails the export: it is
    /// asked for again.
    async fn archive_everything(&self, no: TenantNo, info: &TenantInfo, now: Micros) -> Result<()> {
        let store = &self.inner.store;
        let mut report = Report::default();
        self.roll_up(no, now, &mut report).await?;
        for day in store.hot_days(no).await? {
            self.archive_day(no, info, day, &mut report).await?;
        }
        for day in store.late_days(no).await? {
            self.archive_late_day(no, info, day, &mut report).await?;
        }
        if !store.hot_days(no).await?.is_empty() || !store.late_days(no).await?.is_empty() {
            return Err(StorageError::Unavailable(format!(
                "tenant `{}` stored readings while it was exported; export it again",
                info.id
            )));
        }
        Ok(())
    }

    /// The tenant's objects, each read back: its size as recorded, and its SHA-256.
    async fn checked_entries(&self, no: TenantNo) -> Result<Vec<Entry>> {
        let objects = self
            .inner
            .store
            .cold_objects(no, NaiveDate::default(), LAST_DAY)
            .await?;
        let mut entries = Vec::with_capacity(objects.len());
        for object in objects {
            let body = self
                .inner
                .objects
                .get(&ObjectKey::new(&object.key)?)
                .await?;
            if body.len() as u64 != object.bytes {
                return Err(StorageError::Unavailable(format!(
                    "object `{}` holds {} bytes where {} were stored; the export is not verified",
                    object.key,
                    body.len(),
                    object.bytes
                )));
            }
            let sha256 = tokio::task::spawn_blocking(move || hex(&Sha256::digest(&body)))
                .await
                .map_err(|e| StorageError::Internal(format!("hashing task failed: {e}")))?;
            entries.push(Entry {
                key: object.key,
                kind: "readings",
                day: Some(object.day.format("%Y-%m-%d").to_string()),
                readings: Some(object.readings),
                buckets: None,
                bytes: object.bytes,
                sha256,
            });
        }
        Ok(entries)
    }

    /// Writes the manifest and reads it back.
    async fn write_checked(&self, key: &ObjectKey, entries: &[Entry]) -> Result<()> {
        let body = serde_json::to_vec_pretty(entries)
            .map_err(|e| StorageError::Internal(format!("the manifest: {e}")))?;
        self.inner.objects.put(key, body.clone().into()).await?;
        if self.inner.objects.get(key).await? != body {
            return Err(StorageError::Unavailable(format!(
                "the manifest `{key}` read back differs from what was written"
            )));
        }
        Ok(())
    }
}

/// Lowercase hexadecimal.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
