//! `telemetry_store!`, the body of the telemetry store, generated for each backend with the
//! statements of `sql.rs` and the backend's own (see there for what a backend defines).

/// Generates `impl TelemetryStore` for a backend's store type.
macro_rules! telemetry_store {
    (
        $store:ident,
        migrations: $migrations:literal,
        for_update: $for_update:literal $(,)?
    ) => {
        impl $store {
            /// Marks a pending object of the archive committed, with what it holds; `false`
            /// when it was not pending.
            async fn commit_object(
                tx: &mut <Db as ::sqlx::Database>::Connection,
                key: &str,
                readings: u64,
                bytes: u64,
            ) -> $crate::error::Result<bool> {
                let committed = ::sqlx::query(sql::COMMIT_OBJECT)
                    .bind(key)
                    .bind(readings as i64)
                    .bind(bytes as i64)
                    .bind(db_ts(::chrono::Utc::now().timestamp_micros()))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                Ok(committed == 1)
            }

            /// Merges new rows older than their tenant's `rolled_to` into the warm tier's minute
            /// and hour buckets.
            async fn merge_rollups(
                tx: &mut <Db as ::sqlx::Database>::Connection,
                rows: &[$crate::store::Row],
                rolled_to: &::std::collections::HashMap<$crate::store::TenantNo, i64>,
            ) -> $crate::error::Result<()> {
                if rolled_to.is_empty() {
                    return Ok(());
                }
                let [minutes, quarters, hours] = sql::late_rollups(rows, rolled_to);
                for (statement, buckets) in [
                    (MERGE_MINUTE, minutes),
                    (MERGE_QUARTER, quarters),
                    (MERGE_HOUR, hours),
                ] {
                    for ((series, bucket), r) in buckets {
                        ::sqlx::query(statement)
                            .bind(series)
                            .bind(db_ts(bucket))
                            .bind(r.min)
                            .bind(r.max)
                            .bind(r.sum)
                            .bind(r.count as i64)
                            .bind(db_ts(r.last_ts_micros))
                            .bind(r.last)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::TelemetryStore for $store {
            async fn migrate(&self) -> $crate::error::Result<()> {
                let mut migrator = ::sqlx::migrate!($migrations);
                migrator.dangerous_set_table_name($crate::store::MIGRATIONS_TABLE);
                migrator.run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> $crate::error::Result<()> {
                ::sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            async fn register_tenant(
                &self,
                tenant: ::uuid::Uuid,
            ) -> $crate::error::Result<$crate::store::TenantNo> {
                if let Some(no) = self.find_tenant(tenant).await? {
                    return Ok(no);
                }
                let mut tx = self.begin_write().await?;
                let no: $crate::store::TenantNo = ::sqlx::query(sql::REGISTER_TENANT)
                    .bind(db_uuid(tenant))
                    .fetch_one(&mut *tx)
                    .await?
                    .get(0);
                ::sqlx::query(sql::REGISTER_ROLLUP_STATE)
                    .bind(no)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(no)
            }

            async fn find_tenant(
                &self,
                tenant: ::uuid::Uuid,
            ) -> $crate::error::Result<Option<$crate::store::TenantNo>> {
                let row = ::sqlx::query(sql::SELECT_TENANT)
                    .bind(db_uuid(tenant))
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|r| r.get(0)))
            }

            async fn tenants(
                &self,
            ) -> $crate::error::Result<Vec<($crate::store::TenantNo, ::uuid::Uuid)>> {
                let rows = ::sqlx::query(sql::TENANTS).fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| Ok((r.get(0), uuid_of(r.get(1))?)))
                    .collect()
            }

            async fn resolve_series(
                &self,
                tenant: $crate::store::TenantNo,
                keys: &[$crate::store::SeriesKey],
            ) -> $crate::error::Result<Vec<$crate::store::SeriesId>> {
                let mut tx = self.begin_write().await?;
                // Locking the tenant's row serializes id allocation per tenant.
                let mut next: i64 = ::sqlx::query(concat!(
                    "SELECT next_series FROM storage_tenants WHERE tenant_no = $1",
                    $for_update
                ))
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await?
                .get(0);
                let allocated = next;
                let mut ids = Vec::with_capacity(keys.len());
                for key in keys {
                    let found = ::sqlx::query(sql::SELECT_SERIES)
                        .bind(tenant)
                        .bind(&key.machine_id)
                        .bind(&key.metric)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let id = match found {
                        Some(row) => row.get(0),
                        None => {
                            let id = $crate::store::first_series_id(tenant) + next;
                            next += 1;
                            ::sqlx::query(sql::INSERT_SERIES)
                                .bind(id)
                                .bind(tenant)
                                .bind(&key.machine_id)
                                .bind(&key.metric)
                                .execute(&mut *tx)
                                .await?;
                            id
                        }
                    };
                    ids.push(id);
                }
                if next != allocated {
                    ::sqlx::query(sql::SET_NEXT_SERIES)
                        .bind(tenant)
                        .bind(next)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(ids)
            }

            async fn find_series(
                &self,
                tenant: $crate::store::TenantNo,
                key: &$crate::store::SeriesKey,
            ) -> $crate::error::Result<Option<$crate::store::SeriesId>> {
                let row = ::sqlx::query(sql::SELECT_SERIES)
                    .bind(tenant)
                    .bind(&key.machine_id)
                    .bind(&key.metric)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|r| r.get(0)))
            }

            async fn series_of(
                &self,
                tenant: $crate::store::TenantNo,
            ) -> $crate::error::Result<Vec<($crate::store::SeriesId, $crate::store::SeriesKey)>>
            {
                let rows = ::sqlx::query(sql::SERIES_OF)
                    .bind(tenant)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        (
                            r.get(0),
                            $crate::store::SeriesKey {
                                machine_id: r.get(1),
                                metric: r.get(2),
                            },
                        )
                    })
                    .collect())
            }

            async fn ensure_day(
                &self,
                tenant: $crate::store::TenantNo,
                day: ::chrono::NaiveDate,
                class: u32,
            ) -> $crate::error::Result<()> {
                // A write transaction from the start: on SQLite a deferred one that turns into a
                // writer fails at once with SQLITE_BUSY when another writer holds the lock.
                let mut tx = self.begin_write().await?;
                self.record_day(&mut tx, tenant, day, class).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn classes_in_use(&self) -> $crate::error::Result<Vec<u32>> {
                self.classes_in_use().await
            }

            async fn create_partitions(
                &self,
                classes: &[u32],
                days: &[::chrono::NaiveDate],
            ) -> $crate::error::Result<()> {
                self.create_leaves(classes, days).await
            }

            async fn hot_days(
                &self,
                tenant: $crate::store::TenantNo,
            ) -> $crate::error::Result<Vec<::chrono::NaiveDate>> {
                let rows = ::sqlx::query(sql::HOT_DAYS)
                    .bind(tenant)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            }

            async fn insert(
                &self,
                rows: &[$crate::store::Row],
            ) -> $crate::error::Result<Vec<bool>> {
                let mut tenants: Vec<$crate::store::TenantNo> = rows
                    .iter()
                    .map(|r| $crate::store::tenant_of(r.series_id))
                    .collect();
                tenants.sort_unstable();
                tenants.dedup();
                let mut tx = self.begin_write().await?;
                // Reading `rolled_to` under a share lock holds the rollup job off until this
                // transaction commits: a row below it is merged here, a row above it is rolled
                // up by the job.
                let rolled_to = Self::rolled_to_of(&mut tx, &tenants).await?;
                let new = self.insert_new(&mut tx, rows).await?;
                Self::merge_rollups(&mut tx, &new.hot, &rolled_to).await?;
                tx.commit().await?;
                if new.hot.len() + new.late.len() == rows.len() {
                    return Ok(vec![true; rows.len()]);
                }
                let new: ::std::collections::HashSet<(i64, i64)> = new
                    .hot
                    .iter()
                    .chain(&new.late)
                    .map(|r| (r.series_id, r.ts_micros))
                    .collect();
                Ok(rows
                    .iter()
                    .map(|r| new.contains(&(r.series_id, r.ts_micros)))
                    .collect())
            }

            async fn latest(
                &self,
                tenant: $crate::store::TenantNo,
                machine_id: &str,
            ) -> $crate::error::Result<Vec<$crate::store::Latest>> {
                self.read_latest(tenant, machine_id).await
            }

            async fn points(
                &self,
                series: $crate::store::SeriesId,
                range: $crate::store::Range,
            ) -> $crate::error::Result<Vec<(i64, f64)>> {
                self.read_points(series, range).await
            }

            async fn points_in(
                &self,
                series: $crate::store::SeriesId,
                ranges: &[$crate::store::Range],
            ) -> $crate::error::Result<Vec<(i64, f64)>> {
                self.read_points_in(series, ranges).await
            }

            async fn rollup_state(
                &self,
                tenant: $crate::store::TenantNo,
            ) -> $crate::error::Result<$crate::store::RollupState> {
                let row = ::sqlx::query(sql::ROLLUP_STATE)
                    .bind(tenant)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row
                    .map(|r| $crate::store::RollupState {
                        rolled_to: r.get::<Option<DbTs>, _>(0).map(micros_of),
                        warm_from: r.get::<Option<DbTs>, _>(1).map(micros_of),
                    })
                    .unwrap_or_default())
            }

            async fn roll_up(
                &self,
                tenant: $crate::store::TenantNo,
                range: $crate::store::Range,
            ) -> $crate::error::Result<u64> {
                let (lower, upper) = series_range(tenant);
                let mut tx = self.begin_write().await?;
                let rolled_to: Option<DbTs> = ::sqlx::query(concat!(
                    "SELECT rolled_to FROM rollup_state WHERE tenant_no = $1",
                    $for_update
                ))
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await?
                .get(0);
                let minutes = Self::roll_up_minutes(&mut tx, tenant, range).await?;
                let first_hour = $crate::domain::bucket_start(
                    range.start_micros,
                    $crate::store::Resolution::Hour.micros(),
                );
                // Quarters and hours rewritten whole from their minutes: those `range` touches.
                let mut coarser = 0;
                for statement in [ROLLUP_QUARTERS, ROLLUP_HOURS] {
                    coarser += ::sqlx::query(statement)
                        .bind(lower)
                        .bind(upper)
                        .bind(db_ts(first_hour))
                        .bind(db_ts(range.end_micros))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                let end = rolled_to
                    .map(micros_of)
                    .map_or(range.end_micros, |r| r.max(range.end_micros));
                ::sqlx::query(sql::SET_ROLLED_TO)
                    .bind(tenant)
                    .bind(db_ts(end))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(minutes + coarser)
            }

            async fn rollups_in(
                &self,
                series: $crate::store::SeriesId,
                resolution: $crate::store::Resolution,
                ranges: &[$crate::store::Range],
            ) -> $crate::error::Result<Vec<(i64, $crate::domain::Rollup)>> {
                self.read_rollups_in(series, resolution, ranges).await
            }

            async fn expire_rollups(
                &self,
                tenant: $crate::store::TenantNo,
                before: i64,
            ) -> $crate::error::Result<u64> {
                // Whole hours only, so no hour bucket outlives part of its minutes.
                let before =
                    $crate::domain::bucket_start(before, $crate::store::Resolution::Hour.micros());
                let (lower, upper) = series_range(tenant);
                let mut tx = self.begin_write().await?;
                let warm_from: Option<DbTs> = ::sqlx::query(concat!(
                    "SELECT warm_from FROM rollup_state WHERE tenant_no = $1",
                    $for_update
                ))
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await?
                .get(0);
                if warm_from.map(micros_of).is_some_and(|w| w >= before) {
                    return Ok(0);
                }
                let mut removed = 0;
                for statement in [EXPIRE_MINUTES, EXPIRE_QUARTERS, EXPIRE_HOURS] {
                    removed += ::sqlx::query(statement)
                        .bind(lower)
                        .bind(upper)
                        .bind(db_ts(before))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                ::sqlx::query(sql::SET_WARM_FROM)
                    .bind(tenant)
                    .bind(db_ts(before))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(removed)
            }

            async fn pending_object(
                &self,
                tenant: $crate::store::TenantNo,
                day: ::chrono::NaiveDate,
                new_key: &str,
            ) -> $crate::error::Result<String> {
                let mut tx = self.begin_write().await?;
                let pending = ::sqlx::query(sql::PENDING_OBJECT)
                    .bind(tenant)
                    .bind(day)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(row) = pending {
                    return Ok(row.get(0));
                }
                ::sqlx::query(sql::INSERT_PENDING_OBJECT)
                    .bind(new_key)
                    .bind(tenant)
                    .bind(day)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(new_key.to_owned())
            }

            async fn commit_day(
                &self,
                tenant: $crate::store::TenantNo,
                day: ::chrono::NaiveDate,
                readings: u64,
                object: Option<(&str, u64)>,
            ) -> $crate::error::Result<bool> {
                let mut tx = self.begin_write().await?;
                let Some(class) = Self::lock_day(&mut tx, tenant, day).await? else {
                    return Ok(false);
                };
                if Self::count_day(&mut tx, tenant, day, class).await? != readings {
                    return Ok(false);
                }
                if let Some((key, bytes)) = object
                    && !Self::commit_object(&mut tx, key, readings, bytes).await?
                {
                    return Ok(false);
                }
                Self::remove_day(&mut tx, tenant, day, class).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn cold_objects(
                &self,
                tenant: $crate::store::TenantNo,
                from: ::chrono::NaiveDate,
                to: ::chrono::NaiveDate,
            ) -> $crate::error::Result<Vec<$crate::store::ColdObject>> {
                let rows = ::sqlx::query(sql::COLD_OBJECTS)
                    .bind(tenant)
                    .bind(from)
                    .bind(to)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| $crate::store::ColdObject {
                        key: r.get(0),
                        day: r.get(1),
                        readings: r.get::<i64, _>(2) as u64,
                        bytes: r.get::<i64, _>(3) as u64,
                    })
                    .collect())
            }

            async fn late_points(
                &self,
                series: $crate::store::SeriesId,
                range: $crate::store::Range,
            ) -> $crate::error::Result<Vec<(i64, f64)>> {
                self.read_late_points(series, range).await
            }

            async fn late_days(
                &self,
                tenant: $crate::store::TenantNo,
            ) -> $crate::error::Result<Vec<::chrono::NaiveDate>> {
                self.read_late_days(tenant).await
            }

            async fn commit_late(
                &self,
                tenant: $crate::store::TenantNo,
                day: ::chrono::NaiveDate,
                readings: u64,
                object: Option<(&str, u64)>,
                fresh: &[$crate::store::Row],
            ) -> $crate::error::Result<bool> {
                let mut tx = self.begin_write().await?;
                if Self::remove_late(&mut tx, tenant, day).await? != readings {
                    return Ok(false);
                }
                if let Some((key, bytes)) = object
                    && !Self::commit_object(&mut tx, key, fresh.len() as u64, bytes).await?
                {
                    return Ok(false);
                }
                // The day was rolled up before it was archived: its fresh readings join the
                // warm tier now.
                let rolled_to = ::std::collections::HashMap::from([(tenant, i64::MAX)]);
                Self::merge_rollups(&mut tx, fresh, &rolled_to).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn forget_object(&self, key: &str) -> $crate::error::Result<()> {
                ::sqlx::query(sql::FORGET_OBJECT)
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }

        /// The tenant's series ids: `[lower, upper)`.
        fn series_range(tenant: $crate::store::TenantNo) -> (i64, i64) {
            (
                $crate::store::first_series_id(tenant),
                $crate::store::first_series_id(tenant + 1),
            )
        }
    };
}
