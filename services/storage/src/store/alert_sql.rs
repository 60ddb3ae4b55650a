//! The alert store's SQL, the same on both backends, and [`alert_store!`], its body, generated
//! for each backend like [`telemetry_store!`]. Selectors and conditions are stored as JSON
//! (`jsonb` on PostgreSQL, text on SQLite) in the form [`crate::domain::alert_rule`] serializes.

macro_rules! rule_columns {
    () => {
        "tenant_id, rule_id, display_name, metric, selector, severity, condition, disabled, \
         create_time, update_time"
    };
}

/// Inserts a rule unless its tenant already has `$11` rules.
pub(super) const INSERT_RULE: &str = concat!(
    "INSERT INTO alert_rules (",
    rule_columns!(),
    ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
     WHERE (SELECT count(*) FROM alert_rules WHERE tenant_id = $1) < $11"
);
pub(super) const SELECT_RULE: &str = concat!(
    "SELECT ",
    rule_columns!(),
    " FROM alert_rules WHERE tenant_id = $1 AND rule_id = $2"
);
pub(super) const LIST_RULES: &str = concat!(
    "SELECT ",
    rule_columns!(),
    " FROM alert_rules WHERE tenant_id = $1 AND ($2 IS NULL OR rule_id > $2) \
     ORDER BY rule_id LIMIT $3"
);
pub(super) const ALL_RULES: &str = concat!(
    "SELECT ",
    rule_columns!(),
    " FROM alert_rules ORDER BY tenant_id, rule_id"
);
pub(super) const UPDATE_RULE: &str = "UPDATE alert_rules SET display_name = $3, metric = $4, \
     selector = $5, severity = $6, condition = $7, disabled = $8, update_time = $9 \
     WHERE tenant_id = $1 AND rule_id = $2";
pub(super) const DELETE_RULE: &str =
    "DELETE FROM alert_rules WHERE tenant_id = $1 AND rule_id = $2";
pub(super) const DELETE_RULE_STATES: &str =
    "DELETE FROM alert_rule_states WHERE tenant_id = $1 AND rule_id = $2";

macro_rules! alert_columns {
    () => {
        "alert_id, tenant_id, rule_id, machine_id, metric, severity, state, count, first_seen, \
         last_seen, trigger_value, last_value, acknowledged_by, acknowledge_time, resolved_by, \
         resolve_time"
    };
}

pub(super) const UPSERT_ALERT: &str = concat!(
    "INSERT INTO alerts (",
    alert_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
     ON CONFLICT (alert_id) DO UPDATE SET severity = excluded.severity, state = excluded.state, \
       count = excluded.count, last_seen = excluded.last_seen, last_value = excluded.last_value, \
       acknowledged_by = excluded.acknowledged_by, acknowledge_time = excluded.acknowledge_time, \
       resolved_by = excluded.resolved_by, resolve_time = excluded.resolve_time"
);
pub(super) const SELECT_ALERT: &str = concat!(
    "SELECT ",
    alert_columns!(),
    " FROM alerts WHERE tenant_id = $1 AND alert_id = $2"
);
pub(super) const LIST_ALERTS: &str = concat!(
    "SELECT ",
    alert_columns!(),
    " FROM alerts WHERE tenant_id = $1 AND ($2 IS NULL OR state = $2) \
     AND ($3 IS NULL OR alert_id < $3) ORDER BY alert_id DESC LIMIT $4"
);
pub(super) const UNRESOLVED_ALERTS: &str = concat!(
    "SELECT ",
    alert_columns!(),
    " FROM alerts WHERE state <> 'resolved' ORDER BY alert_id"
);
/// Stores an event under its cursor, unless it (or its cursor) is stored already.
pub(super) const INSERT_EVENT: &str = "INSERT INTO alert_events \
     (cursor, tenant_id, event_id, alert_id, kind, event_time, alert) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";
/// The cursor an event was stored under.
pub(super) const EVENT_CURSOR: &str = "SELECT cursor FROM alert_events WHERE event_id = $1";
/// Gives out a tenant's next cursor (the row stays locked until the transaction ends).
pub(super) const NEXT_CURSOR: &str = "INSERT INTO alert_cursors (tenant_id, last_cursor) \
     VALUES ($1, 1) ON CONFLICT (tenant_id) DO UPDATE SET last_cursor = \
     alert_cursors.last_cursor + 1 RETURNING last_cursor";
/// Keeps a tenant's cursors past one that was given out before (SQLite's scalar `max`).
pub(super) const CURSOR_AT_LEAST: &str = "INSERT INTO alert_cursors (tenant_id, last_cursor) \
     VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE SET last_cursor = \
     max(alert_cursors.last_cursor, excluded.last_cursor)";
pub(super) const EVENTS_AFTER: &str = "SELECT cursor, event_id, kind, event_time, alert \
     FROM alert_events WHERE tenant_id = $1 AND cursor > $2 ORDER BY cursor LIMIT $3";
pub(super) const LAST_CURSOR: &str = "SELECT last_cursor FROM alert_cursors WHERE tenant_id = $1";
pub(super) const EXPIRE_EVENTS: &str =
    "DELETE FROM alert_events WHERE tenant_id = $1 AND event_time < $2";
pub(super) const UPSERT_RULE_STATE: &str = "INSERT INTO alert_rule_states \
     (tenant_id, rule_id, machine_id, state) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (tenant_id, rule_id, machine_id) DO UPDATE SET state = excluded.state";
pub(super) const DELETE_RULE_STATE: &str = "DELETE FROM alert_rule_states \
     WHERE tenant_id = $1 AND rule_id = $2 AND machine_id = $3";
pub(super) const RULE_STATES: &str =
    "SELECT tenant_id, rule_id, machine_id, state FROM alert_rule_states";

/// Generates `impl AlertStore` for a backend's store type. `$for_update` is the dialect's row
/// lock of a read-modify-write (empty on SQLite, whose write transactions lock the database).
/// The backend defines the inherent `write_alerts_now`, how the journal's writes go in.
macro_rules! alert_store {
    ($store:ident, for_update: $for_update:literal $(,)?) => {
        fn rule_of(
            row: &<Db as ::sqlx::Database>::Row,
        ) -> $crate::error::Result<$crate::domain::alert_rule::AlertRule> {
            use ::sqlx::types::Json;
            use $crate::domain::alert_rule::{
                AlertRule, Condition, MachineSelector, RuleSpec, Severity,
            };
            let severity: String = row.try_get("severity")?;
            let severity = Severity::parse(&severity).ok_or_else(|| {
                $crate::error::StorageError::Internal(format!(
                    "corrupt alert rule: severity `{severity}`"
                ))
            })?;
            let Json(selector): Json<MachineSelector> = row.try_get("selector")?;
            let Json(condition): Json<Condition> = row.try_get("condition")?;
            Ok(AlertRule {
                tenant_id: uuid_of(row.try_get::<DbUuid, _>("tenant_id")?)?,
                rule_id: uuid_of(row.try_get::<DbUuid, _>("rule_id")?)?,
                spec: RuleSpec {
                    display_name: row.try_get("display_name")?,
                    metric: row.try_get("metric")?,
                    selector,
                    severity: Some(severity),
                    condition: Some(condition),
                    disabled: row.try_get("disabled")?,
                },
                create_micros: micros_of(row.try_get::<DbTs, _>("create_time")?),
                update_micros: micros_of(row.try_get::<DbTs, _>("update_time")?),
            })
        }

        fn alert_of(
            row: &<Db as ::sqlx::Database>::Row,
        ) -> $crate::error::Result<$crate::domain::alert::Alert> {
            use $crate::domain::{
                alert::{Alert, AlertState},
                alert_rule::Severity,
            };
            let corrupt = |what: &str| {
                $crate::error::StorageError::Internal(format!("corrupt alert: {what}"))
            };
            let severity: String = row.try_get("severity")?;
            let state: String = row.try_get("state")?;
            let count: i64 = row.try_get("count")?;
            Ok(Alert {
                alert_id: uuid_of(row.try_get::<DbUuid, _>("alert_id")?)?,
                tenant_id: uuid_of(row.try_get::<DbUuid, _>("tenant_id")?)?,
                rule_id: uuid_of(row.try_get::<DbUuid, _>("rule_id")?)?,
                machine_id: row.try_get("machine_id")?,
                metric: row.try_get("metric")?,
                severity: Severity::parse(&severity).ok_or_else(|| corrupt(&severity))?,
                state: AlertState::parse(&state).ok_or_else(|| corrupt(&state))?,
                count: u64::try_from(count).map_err(|_| corrupt("count"))?,
                first_seen: micros_of(row.try_get::<DbTs, _>("first_seen")?),
                last_seen: micros_of(row.try_get::<DbTs, _>("last_seen")?),
                trigger_value: row.try_get("trigger_value")?,
                last_value: row.try_get("last_value")?,
                acknowledged_by: row.try_get("acknowledged_by")?,
                acknowledge_time: row
                    .try_get::<Option<DbTs>, _>("acknowledge_time")?
                    .map(micros_of),
                resolved_by: row.try_get("resolved_by")?,
                resolve_time: row
                    .try_get::<Option<DbTs>, _>("resolve_time")?
                    .map(micros_of),
            })
        }

        #[async_trait::async_trait]
        impl $crate::store::AlertStore for $store {
            async fn insert_rule(
                &self,
                rule: &$crate::domain::alert_rule::AlertRule,
                limit: u64,
            ) -> $crate::error::Result<()> {
                use ::sqlx::types::Json;
                let inserted = ::sqlx::query(alert_sql::INSERT_RULE)
                    .bind(db_uuid(rule.tenant_id))
                    .bind(db_uuid(rule.rule_id))
                    .bind(&rule.spec.display_name)
                    .bind(&rule.spec.metric)
                    .bind(Json(&rule.spec.selector))
                    .bind(rule.severity().as_str())
                    .bind(Json(&rule.spec.condition))
                    .bind(rule.spec.disabled)
                    .bind(db_ts(rule.create_micros))
                    .bind(db_ts(rule.update_micros))
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .execute(&self.pool)
                    .await?;
                if inserted.rows_affected() == 0 {
                    return Err($crate::error::StorageError::RuleLimit(limit));
                }
                Ok(())
            }

            async fn get_rule(
                &self,
                tenant: ::uuid::Uuid,
                rule: ::uuid::Uuid,
            ) -> $crate::error::Result<Option<$crate::domain::alert_rule::AlertRule>> {
                let row = ::sqlx::query(alert_sql::SELECT_RULE)
                    .bind(db_uuid(tenant))
                    .bind(db_uuid(rule))
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(rule_of).transpose()
            }

            async fn list_rules(
                &self,
                tenant: ::uuid::Uuid,
                after: Option<::uuid::Uuid>,
                limit: i64,
            ) -> $crate::error::Result<Vec<$crate::domain::alert_rule::AlertRule>> {
                let rows = ::sqlx::query(alert_sql::LIST_RULES)
                    .bind(db_uuid(tenant))
                    .bind(after.map(db_uuid))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(rule_of).collect()
            }

            async fn all_rules(
                &self,
            ) -> $crate::error::Result<Vec<$crate::domain::alert_rule::AlertRule>> {
                let rows = ::sqlx::query(alert_sql::ALL_RULES)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(rule_of).collect()
            }

            async fn update_rule(
                &self,
                tenant: ::uuid::Uuid,
                rule: ::uuid::Uuid,
                change: $crate::store::RuleChange<'_>,
            ) -> $crate::error::Result<$crate::domain::alert_rule::AlertRule> {
                use ::sqlx::types::Json;
                let mut tx = self.begin_write().await?;
                let row = ::sqlx::query(concat!(
                    "SELECT ",
                    rule_columns!(),
                    " FROM alert_rules WHERE tenant_id = $1 AND rule_id = $2",
                    $for_update
                ))
                .bind(db_uuid(tenant))
                .bind(db_uuid(rule))
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    return Err($crate::error::StorageError::RuleNotFound(rule.to_string()));
                };
                let updated = change(rule_of(&row)?)?;
                ::sqlx::query(alert_sql::UPDATE_RULE)
                    .bind(db_uuid(tenant))
                    .bind(db_uuid(rule))
                    .bind(&updated.spec.display_name)
                    .bind(&updated.spec.metric)
                    .bind(Json(&updated.spec.selector))
                    .bind(updated.severity().as_str())
                    .bind(Json(&updated.spec.condition))
                    .bind(updated.spec.disabled)
                    .bind(db_ts(updated.update_micros))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(updated)
            }

            async fn delete_rule(
                &self,
                tenant: ::uuid::Uuid,
                rule: ::uuid::Uuid,
            ) -> $crate::error::Result<bool> {
                let mut tx = self.begin_write().await?;
                let deleted = ::sqlx::query(alert_sql::DELETE_RULE)
                    .bind(db_uuid(tenant))
                    .bind(db_uuid(rule))
                    .execute(&mut *tx)
                    .await?;
                ::sqlx::query(alert_sql::DELETE_RULE_STATES)
                    .bind(db_uuid(tenant))
                    .bind(db_uuid(rule))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(deleted.rows_affected() > 0)
            }

            async fn write_alerts(
                &self,
                write: &$crate::store::AlertWrite,
            ) -> $crate::error::Result<$crate::store::Written> {
                self.write_alerts_now(write).await
            }

            async fn log_position(
                &self,
            ) -> $crate::error::Result<Option<$crate::store::LogPosition>> {
                self.log_position_now().await
            }

            async fn unresolved_alerts(
                &self,
            ) -> $crate::error::Result<Vec<$crate::domain::alert::Alert>> {
                let rows = ::sqlx::query(alert_sql::UNRESOLVED_ALERTS)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(alert_of).collect()
            }

            async fn get_alert(
                &self,
                tenant: ::uuid::Uuid,
                alert: ::uuid::Uuid,
            ) -> $crate::error::Result<Option<$crate::domain::alert::Alert>> {
                let row = ::sqlx::query(alert_sql::SELECT_ALERT)
                    .bind(db_uuid(tenant))
                    .bind(db_uuid(alert))
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(alert_of).transpose()
            }

            async fn list_alerts(
                &self,
                tenant: ::uuid::Uuid,
                state: Option<$crate::domain::alert::AlertState>,
                before: Option<::uuid::Uuid>,
                limit: i64,
            ) -> $crate::error::Result<Vec<$crate::domain::alert::Alert>> {
                let rows = ::sqlx::query(alert_sql::LIST_ALERTS)
                    .bind(db_uuid(tenant))
                    .bind(state.map(|s| s.as_str()))
                    .bind(before.map(db_uuid))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(alert_of).collect()
            }

            async fn expire_events(
                &self,
                tenant: ::uuid::Uuid,
                before: i64,
            ) -> $crate::error::Result<u64> {
                let expired = ::sqlx::query(alert_sql::EXPIRE_EVENTS)
                    .bind(db_uuid(tenant))
                    .bind(db_ts(before))
                    .execute(&self.pool)
                    .await?;
                Ok(expired.rows_affected())
            }

            async fn last_cursor(&self, tenant: ::uuid::Uuid) -> $crate::error::Result<u64> {
                let last: Option<i64> = ::sqlx::query_scalar(alert_sql::LAST_CURSOR)
                    .bind(db_uuid(tenant))
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(last.map_or(0, |c| u64::try_from(c).unwrap_or(0)))
            }

            async fn events_after(
                &self,
                tenant: ::uuid::Uuid,
                cursor: u64,
                limit: i64,
            ) -> $crate::error::Result<Vec<$crate::domain::alert::AlertEvent>> {
                use ::sqlx::types::Json;
                use $crate::domain::alert::{Alert, AlertEvent, EventType};
                let rows = ::sqlx::query(alert_sql::EVENTS_AFTER)
                    .bind(db_uuid(tenant))
                    .bind(i64::try_from(cursor).unwrap_or(i64::MAX))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|row| {
                        let kind: String = row.try_get("kind")?;
                        let cursor: i64 = row.try_get("cursor")?;
                        let Json(alert): Json<Alert> = row.try_get("alert")?;
                        Ok(AlertEvent {
                            cursor: u64::try_from(cursor).unwrap_or(0),
                            event_id: uuid_of(row.try_get::<DbUuid, _>("event_id")?)?,
                            kind: EventType::parse(&kind).ok_or_else(|| {
                                $crate::error::StorageError::Internal(format!(
                                    "corrupt alert event: kind `{kind}`"
                                ))
                            })?,
                            alert,
                            time: micros_of(row.try_get::<DbTs, _>("event_time")?),
                        })
                    })
                    .collect()
            }

            async fn rule_states(
                &self,
            ) -> $crate::error::Result<
                Vec<(
                    $crate::store::RuleStateKey,
                    $crate::domain::alert_eval::RuleState,
                )>,
            > {
                use ::sqlx::types::Json;
                let rows = ::sqlx::query(alert_sql::RULE_STATES)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|row| {
                        let Json(state) = row.try_get("state")?;
                        Ok((
                            $crate::store::RuleStateKey {
                                tenant_id: uuid_of(row.try_get::<DbUuid, _>("tenant_id")?)?,
                                rule_id: uuid_of(row.try_get::<DbUuid, _>("rule_id")?)?,
                                machine_id: row.try_get("machine_id")?,
                            },
                            state,
                        ))
                    })
                    .collect()
            }
        }
    };
}
