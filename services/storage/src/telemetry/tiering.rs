//! Tiering: rollup (hot → warm), archive (hot → cold) and retention (warm and cold), the work
//! of one tenant as if the time were a given instant. Jobs (`jobs.rs`) run it for every tenant,
//! in the background at an interval or on demand.
//!
//! For each tenant, in order:
//! 1. **Alert events** past the hot retention are removed with the hot tier's readings.
//! 2. **Rollup.** Readings up to the last whole minute are rolled up into minute, quarter-hour
//!    and hour buckets, whole hours per transaction (one to 24, by volume), and `rolled_to`
//!    moves with them. Readings that arrive
//!    later for a rolled-up minute are merged by the writer (see the store).
//! 3. **Archive.** Each hot day past the tenant's hot retention (and rolled up) is written to
//!    the object store as one Parquet object, read back with `head` to check its size, and only
//!    then committed to the manifest in the transaction that drops the day from the hot tier. A
//!    failed upload deletes nothing; the next run reuses the pending object's key.
//! 4. **Retention.** Rollups past the warm retention and objects past the cold retention are
//!    removed (objects first, then their manifest rows). The bucket's lifecycle rule for the
//!    tenant expires objects at the same age, as a backstop, and moves them to infrequent
//!    access after `transition_after_days`.

mod archiving;
mod deletion;
mod export;
mod jobs;
mod rollup_export;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chrono::NaiveDate;
use uuid::Uuid;

use crate::{
    directory::{Directory, TenantInfo},
    error::{Result, StorageError},
    micros::Micros,
    store::TenantNo,
    telemetry::{
        archive,
        domain::{ingest::DAY_MICROS, tiering::Report},
        object_store::{LifecycleRule, ObjectKey, ObjectStore},
        store::{Range, Resolution, TelemetryStore, day_range},
    },
};

pub use crate::telemetry::tiering::{
    export::Export,
    jobs::{JobOptions, TieringJobs},
};

/// Readings handed to the encoder at a time.
const ENCODE_CHUNK: usize = 64 * 1024;

/// The tiering jobs' settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TieringOptions {
    /// Days after which archived objects move to infrequent-access storage; `None` keeps them.
    pub transition_after_days: Option<u32>,
}

/// Runs tiering for one tenant at a time.
#[derive(Debug, Clone)]
pub struct Tiering {
    inner: Arc<Inner>,
}

/// Data another part keeps for as long as the hot tier keeps a tenant's readings (alerting's
/// events): a tiering run expires it with them. Tiering owns the trait, alerting implements it.
#[async_trait::async_trait]
pub trait KeptWithReadings: Send + Sync + std::fmt::Debug {
    /// Removes a tenant's data older than `before`; returns how many items went.
    async fn expire(&self, tenant: Uuid, before: Micros) -> Result<u64>;
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn TelemetryStore>,
    kept_with_readings: Arc<dyn KeptWithReadings>,
    objects: Arc<dyn ObjectStore>,
    directory: Directory,
    options: TieringOptions,
    /// The lifecycle rule last set for each tenant.
    rules: Mutex<HashMap<Uuid, LifecycleRule>>,
}

impl Tiering {
    /// Creates the jobs over the telemetry store, what is kept with its readings, and an
    /// object store.
    pub fn new(
        store: Arc<dyn TelemetryStore>,
        kept_with_readings: Arc<dyn KeptWithReadings>,
        objects: Arc<dyn ObjectStore>,
        directory: Directory,
        options: TieringOptions,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                kept_with_readings,
                objects,
                directory,
                options,
                rules: Mutex::default(),
            }),
        }
    }

    /// Prepares a tenant's storage: its number, and its class's hot partitions of today and
    /// tomorrow. Returns its archive prefix. Idempotent.
    pub async fn prepare(&self, tenant: Uuid, hot_days: u32, now: Micros) -> Result<String> {
        self.inner.store.register_tenant(tenant).await?;
        let class = mfg_common::retention::hot_class(hot_days).unwrap_or(hot_days);
        self.inner
            .store
            .create_partitions(&[class], &days_ahead(now))
            .await?;
        Ok(archive::tenant_prefix(tenant))
    }

    /// Prepares a tenant's archive: writes the lifecycle rule of its prefix, even when this
    /// process set the same rule before, so that the object store holds it when this returns.
    /// Returns the rule. Idempotent.
    pub async fn prepare_archive(
        &self,
        tenant: Uuid,
        hot_days: u32,
        cold_days: u32,
    ) -> Result<LifecycleRule> {
        let rule = self.lifecycle_rule(tenant, hot_days, cold_days);
        rule.validate()?;
        self.inner.objects.put_lifecycle_rule(&rule).await?;
        lock(&self.inner.rules).insert(tenant, rule.clone());
        Ok(rule)
    }

    /// Every registered tenant, by number.
    pub async fn tenants(&self) -> Result<Vec<(TenantNo, Uuid)>> {
        self.inner.store.tenants().await
    }

    /// Creates the hot partitions of today and tomorrow (UTC, at `now`) of every class in use,
    /// ahead of the writes that will need them: never more, whatever a job's `as_of`.
    pub async fn create_partitions_ahead(&self, now: Micros) -> Result<()> {
        let store = &self.inner.store;
        store
            .create_partitions(&store.classes_in_use().await?, &days_ahead(now))
            .await
    }

    /// Undoes [`Tiering::prepare_archive`] (and [`Tiering::prepare`], which keeps the tenant's
    /// number) for a tenant without data: removes its lifecycle rule. Refused once the tenant
    /// has stored readings.
    pub async fn release(&self, tenant: Uuid) -> Result<()> {
        if let Some(no) = self.inner.store.find_tenant(tenant).await?
            && !self.inner.store.series_of(no).await?.is_empty()
        {
            return Err(StorageError::HoldsData(tenant.to_string()));
        }
        self.inner
            .objects
            .delete_lifecycle_rule(&format!("tenant-{tenant}"))
            .await?;
        lock(&self.inner.rules).remove(&tenant);
        Ok(())
    }

    /// Runs a tenant's tiering as if the time were `as_of`; returns what it did. A tenant
    /// the tenant service no longer knows is left alone.
    pub async fn run_tenant(&self, tenant: (TenantNo, Uuid), as_of: Micros) -> Result<Report> {
        let (no, id) = tenant;
        let info = match self.inner.directory.tenant(id).await {
            Ok(info) => info,
            Err(StorageError::TenantNotFound(_)) => return Ok(Report::default()),
            Err(error) => return Err(error),
        };
        let mut report = Report::default();
        // Alert events leave with the hot tier's readings.
        let events_before = as_of - i64::from(info.hot_days) * DAY_MICROS;
        report.alert_events_expired += self
            .inner
            .kept_with_readings
            .expire(id, events_before)
            .await?;
        self.roll_up(no, as_of, &mut report).await?;
        self.archive(no, &info, as_of, &mut report).await?;
        self.expire(no, &info, as_of, &mut report).await?;
        Ok(report)
    }

    /// Sets the tenant's lifecycle rule on its archive prefix, if it changed. Objects are
    /// written when their day leaves the hot tier, so they expire `cold_days - hot_days` days
    /// after they are written.
    pub async fn ensure_lifecycle(
        &self,
        tenant: Uuid,
        hot_days: u32,
        cold_days: u32,
    ) -> Result<String> {
        let rule = self.lifecycle_rule(tenant, hot_days, cold_days);
        let known = lock(&self.inner.rules).get(&tenant) == Some(&rule);
        if !known {
            rule.validate()?;
            self.inner.objects.put_lifecycle_rule(&rule).await?;
            lock(&self.inner.rules).insert(tenant, rule);
        }
        Ok(archive::tenant_prefix(tenant))
    }

    /// The lifecycle rule of a tenant's prefix for its retention.
    fn lifecycle_rule(&self, tenant: Uuid, hot_days: u32, cold_days: u32) -> LifecycleRule {
        let expire_after_days = cold_days.saturating_sub(hot_days).max(1);
        let transition = self
            .inner
            .options
            .transition_after_days
            .filter(|&days| days < expire_after_days);
        LifecycleRule {
            id: format!("tenant-{tenant}"),
            prefix: archive::tenant_prefix(tenant),
            transition_after_days: transition,
            expire_after_days,
        }
    }

    /// Rolls the tenant's readings up to the last whole minute, whole hours at a time, from one
    /// hour to a day per transaction as the tenant's volume allows (`next_span`). Only days
    /// with a hot partition hold readings: the others are skipped.
    async fn roll_up(&self, tenant: TenantNo, as_of: Micros, report: &mut Report) -> Result<()> {
        let store = &self.inner.store;
        let target = as_of.floor(Resolution::Minute.micros());
        let hot_days = store.hot_days(tenant).await?;
        let mut start = store
            .rollup_state(tenant)
            .await?
            .rolled_to
            .or_else(|| hot_days.first().map(|&day| day_range(day).start))
            .unwrap_or(target);
        let hour = Resolution::Hour.micros();
        let mut span = hour;
        for &day in &hot_days {
            let day = day_range(day);
            start = start.max(day.start);
            while start < day.end.min(target) {
                let end = (start.floor(hour) + span).min(day.end).min(target);
                let written = store.roll_up(tenant, Range { start, end }).await?;
                report.rollup_buckets_written += written;
                span = next_span(span, written);
                start = end;
            }
        }
        // Moves `rolled_to` over the days without readings too.
        store
            .roll_up(
                tenant,
                Range {
                    start: target,
                    end: target,
                },
            )
            .await?;
        Ok(())
    }

    /// Removes the tenant's rollups past its warm retention and objects past its cold one.
    async fn expire(
        &self,
        tenant: TenantNo,
        info: &TenantInfo,
        as_of: Micros,
        report: &mut Report,
    ) -> Result<()> {
        let store = &self.inner.store;
        report.warm_rows_expired += store
            .expire_rollups(tenant, as_of - i64::from(info.warm_days) * DAY_MICROS)
            .await?;
        let cold_until = (as_of - i64::from(info.cold_days) * DAY_MICROS).day();
        if let Some(last_expired) = cold_until.pred_opt() {
            for object in store
                .cold_objects(tenant, NaiveDate::default(), last_expired)
                .await?
            {
                self.inner
                    .objects
                    .delete(&ObjectKey::new(&object.key)?)
                    .await?;
                store.forget_object(&object.key).await?;
                report.cold_objects_expired += 1;
            }
        }
        Ok(())
    }
}

/// Minute buckets one rollup transaction aims at: a dense tenant (45 machines × 20 metrics
/// at 1 Hz writes 54,000 an hour) rolls up an hour at a time, a sparse one a day.
const ROLLUP_BUCKETS: u64 = 20_000;

/// The span of the next rollup transaction after one of `span` wrote `written` buckets:
/// doubled (up to a day) while under half the aim, halved (down to an hour) over twice it.
fn next_span(span: i64, written: u64) -> i64 {
    let hour = Resolution::Hour.micros();
    if written < ROLLUP_BUCKETS / 2 {
        (span * 2).min(24 * hour)
    } else if written > ROLLUP_BUCKETS * 2 {
        (span / 2).max(hour)
    } else {
        span
    }
}

/// Today and tomorrow (UTC) at `now`.
fn days_ahead(now: Micros) -> [NaiveDate; 2] {
    let today = now.day();
    [today, today.succ_opt().unwrap_or(today)]
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
