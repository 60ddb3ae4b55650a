//! The alert store, once for both backends: its SQL, the same on both, and `impl AlertStore`
//! for every [`SqlBackend`]. Selectors and conditions are stored as JSON
//! (`jsonb` on PostgreSQL, text on SQLite) in the form [`crate::alerting::domain::alert_rule`] serializes.

use mfg_common::{
    audit::{AuditRecord, OutboxTable, outbox},
    db::{DbErrorKind, ForUpdate},
};
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Row as _, Type,
    types::Json,
};
use uuid::Uuid;

use crate::{
    alerting::domain::{
        alert::{Alert, AlertEvent, AlertState, BudgetBreach, EventType},
        alert_eval::RuleState,
        alert_rule::{AlertRule, Condition, MachineSelector, RuleSpec, Severity},
    },
    error::{Result, StorageError},
    micros::Micros,
};
use crate::{
    alerting::store::{AlertStore, AlertWrite, LogPosition, RuleChange, RuleStateKey, Written},
    store::backend::SqlBackend,
};

macro_rules! rule_columns {
    () => {
        "tenant_id, rule_id, display_name, metric, selector, severity, condition, disabled, \
         create_time, update_time"
    };
}

/// Inserts a rule unless its tenant already has `$11` rules.
pub(crate) const INSERT_RULE: &str = concat!(
    "INSERT INTO alert_rules (",
    rule_columns!(),
    ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
     WHERE (SELECT count(*) FROM alert_rules WHERE tenant_id = $1) < $11"
);
pub(crate) const SELECT_RULE: &str = concat!(
    "SELECT ",
    rule_columns!(),
    " FROM alert_rules WHERE tenant_id = $1 AND rule_id = $2"
);
pub(crate) const LIST_RULES: &str = concat!(
    "SELECT ",
    rule_columns!(),
    " FROM alert_rules WHERE tenant_id = $1 AND ($2 IS NULL OR rule_id > $2) \
     ORDER BY rule_id LIMIT $3"
);
pub(crate) const ALL_RULES: &str = concat!(
    "SELECT ",
    rule_columns!(),
    " FROM alert_rules ORDER BY tenant_id, rule_id"
);
pub(crate) const UPDATE_RULE: &str = "UPDATE alert_rules SET display_name = $3, metric = $4, \
     selector = $5, severity = $6, condition = $7, disabled = $8, update_time = $9 \
     WHERE tenant_id = $1 AND rule_id = $2";
/// A rule, read to be changed.
const RULE_FOR_UPDATE: ForUpdate = mfg_common::for_update!(
    "SELECT ",
    rule_columns!(),
    " FROM alert_rules WHERE tenant_id = $1 AND rule_id = $2"
);
pub(crate) const DELETE_RULE: &str =
    "DELETE FROM alert_rules WHERE tenant_id = $1 AND rule_id = $2";
pub(crate) const DELETE_RULE_STATES: &str =
    "DELETE FROM alert_rule_states WHERE tenant_id = $1 AND rule_id = $2";
/// An offboarded tenant's rows of alerting (`tenant_id = $1`), events before their alerts; its
/// cursor stays, so that no cursor is given twice.
const FORGET_TENANT: [&str; 4] = [
    "DELETE FROM alert_events WHERE tenant_id = $1",
    "DELETE FROM alerts WHERE tenant_id = $1",
    "DELETE FROM alert_rule_states WHERE tenant_id = $1",
    "DELETE FROM alert_rules WHERE tenant_id = $1",
];

macro_rules! alert_columns {
    () => {
        "alert_id, tenant_id, rule_id, machine_id, metric, severity, state, count, first_seen, \
         last_seen, trigger_value, last_value, acknowledged_by, acknowledge_time, resolved_by, \
         resolve_time, budget"
    };
}

pub(crate) const UPSERT_ALERT: &str = concat!(
    "INSERT INTO alerts (",
    alert_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
     ON CONFLICT (alert_id) DO UPDATE SET severity = excluded.severity, state = excluded.state, \
       count = excluded.count, last_seen = excluded.last_seen, last_value = excluded.last_value, \
       acknowledged_by = excluded.acknowledged_by, acknowledge_time = excluded.acknowledge_time, \
       resolved_by = excluded.resolved_by, resolve_time = excluded.resolve_time"
);
pub(crate) const SELECT_ALERT: &str = concat!(
    "SELECT ",
    alert_columns!(),
    " FROM alerts WHERE tenant_id = $1 AND alert_id = $2"
);
pub(crate) const LIST_ALERTS: &str = concat!(
    "SELECT ",
    alert_columns!(),
    " FROM alerts WHERE tenant_id = $1 AND ($2 IS NULL OR state = $2) \
     AND ($3 IS NULL OR alert_id < $3) ORDER BY alert_id DESC LIMIT $4"
);
pub(crate) const UNRESOLVED_ALERTS: &str = concat!(
    "SELECT ",
    alert_columns!(),
    " FROM alerts WHERE state <> 'resolved' ORDER BY alert_id"
);
/// Stores an event under its cursor, unless it (or its cursor) is stored already.
pub(crate) const INSERT_EVENT: &str = "INSERT INTO alert_events \
     (cursor, tenant_id, event_id, alert_id, kind, event_time, alert) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";
/// The cursor an event was stored under.
pub(crate) const EVENT_CURSOR: &str = "SELECT cursor FROM alert_events WHERE event_id = $1";
/// Gives out a tenant's next cursor (the row stays locked until the transaction ends).
pub(crate) const NEXT_CURSOR: &str = "INSERT INTO alert_cursors (tenant_id, last_cursor) \
     VALUES ($1, 1) ON CONFLICT (tenant_id) DO UPDATE SET last_cursor = \
     alert_cursors.last_cursor + 1 RETURNING last_cursor";
/// Keeps a tenant's cursors past one that was given out before (SQLite's scalar `max`).
pub(crate) const CURSOR_AT_LEAST: &str = "INSERT INTO alert_cursors (tenant_id, last_cursor) \
     VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE SET last_cursor = \
     max(alert_cursors.last_cursor, excluded.last_cursor)";
pub(crate) const EVENTS_AFTER: &str = "SELECT cursor, event_id, kind, event_time, alert \
     FROM alert_events WHERE tenant_id = $1 AND cursor > $2 ORDER BY cursor LIMIT $3";
pub(crate) const LAST_CURSOR: &str = "SELECT last_cursor FROM alert_cursors WHERE tenant_id = $1";
pub(crate) const EXPIRE_EVENTS: &str =
    "DELETE FROM alert_events WHERE tenant_id = $1 AND event_time < $2";
pub(crate) const UPSERT_RULE_STATE: &str = "INSERT INTO alert_rule_states \
     (tenant_id, rule_id, machine_id, state) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (tenant_id, rule_id, machine_id) DO UPDATE SET state = excluded.state";
pub(crate) const DELETE_RULE_STATE: &str = "DELETE FROM alert_rule_states \
     WHERE tenant_id = $1 AND rule_id = $2 AND machine_id = $3";
pub(crate) const RULE_STATES: &str =
    "SELECT tenant_id, rule_id, machine_id, state FROM alert_rule_states";

/// The rule of a row.
fn rule_of<B: SqlBackend>(row: &<B::Db as Database>::Row) -> Result<AlertRule>
where
    for<'r> String: Decode<'r, B::Db> + Type<B::Db>,
    for<'r> bool: Decode<'r, B::Db> + Type<B::Db>,
    for<'r> B::Uuid: Decode<'r, B::Db> + Type<B::Db>,
    for<'r> B::Ts: Decode<'r, B::Db> + Type<B::Db>,
    for<'r> Json<MachineSelector>: Decode<'r, B::Db> + Type<B::Db>,
    for<'r> Json<Condition>: Decode<'r, B::Db> + Type<B::Db>,
    for<'n> &'n str: ColumnIndex<<B::Db as Database>::Row>,
{
    let severity: String = row.try_get("severity")?;
    let severity = Severity::parse(&severity).ok_or_else(|| {
        StorageError::Internal(format!("corrupt alert rule: severity `{severity}`"))
    })?;
    let Json(selector): Json<MachineSelector> = row.try_get("selector")?;
    let Json(condition): Json<Condition> = row.try_get("condition")?;
    Ok(AlertRule {
        tenant_id: B::uuid_of(row.try_get("tenant_id")?)?,
        rule_id: B::uuid_of(row.try_get("rule_id")?)?,
        spec: RuleSpec {
            display_name: row.try_get("display_name")?,
            metric: row.try_get("metric")?,
            selector,
            severity: Some(severity),
            condition: Some(condition),
            disabled: row.try_get("disabled")?,
        },
        create_time: B::micros(row.try_get("create_time")?),
        update_time: B::micros(row.try_get("update_time")?),
    })
}

/// The alert of a row.
fn alert_of<B: SqlBackend>(row: &<B::Db as Database>::Row) -> Result<Alert>
where
    for<'r> String: Decode<'r, B::Db> + Type<B::Db>,
    for<'r> Option<String>: Decode<'r, B::Db> + Type<B::Db>,
    for<'r> i64: Decode<'r, B::Db> + Type<B::Db>,
    for<'r> f64: Decode<'r, B::Db> + Type<B::Db>,
    for<'r> B::Uuid: Decode<'r, B::Db> + Type<B::Db>,
    for<'r> B::Ts: Decode<'r, B::Db> + Type<B::Db>,
    for<'r> Option<B::Ts>: Decode<'r, B::Db> + Type<B::Db>,
    for<'r> Option<Json<BudgetBreach>>: Decode<'r, B::Db> + Type<B::Db>,
    for<'n> &'n str: ColumnIndex<<B::Db as Database>::Row>,
{
    let corrupt = |what: &str| StorageError::Internal(format!("corrupt alert: {what}"));
    let severity: String = row.try_get("severity")?;
    let state: String = row.try_get("state")?;
    let count: i64 = row.try_get("count")?;
    Ok(Alert {
        alert_id: B::uuid_of(row.try_get("alert_id")?)?,
        tenant_id: B::uuid_of(row.try_get("tenant_id")?)?,
        rule_id: B::uuid_of(row.try_get("rule_id")?)?,
        machine_id: row.try_get("machine_id")?,
        metric: row.try_get("metric")?,
        severity: Severity::parse(&severity).ok_or_else(|| corrupt(&severity))?,
        state: AlertState::parse(&state).ok_or_else(|| corrupt(&state))?,
        count: u64::try_from(count).map_err(|_| corrupt("count"))?,
        first_seen: B::micros(row.try_get("first_seen")?),
        last_seen: B::micros(row.try_get("last_seen")?),
        trigger_value: row.try_get("trigger_value")?,
        last_value: row.try_get("last_value")?,
        acknowledged_by: row.try_get("acknowledged_by")?,
        acknowledge_time: row
            .try_get::<Option<B::Ts>, _>("acknowledge_time")?
            .map(B::micros),
        resolved_by: row.try_get("resolved_by")?,
        resolve_time: row
            .try_get::<Option<B::Ts>, _>("resolve_time")?
            .map(B::micros),
        budget: row
            .try_get::<Option<Json<BudgetBreach>>, _>("budget")?
            .map(|Json(breach)| breach),
    })
}

#[async_trait::async_trait]
impl<B> AlertStore for B
where
    B: SqlBackend,
    for<'c> &'c Pool<B::Db>: Executor<'c, Database = B::Db>,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<String>: Decode<'q, B::Db> + Type<B::Db>,
    for<'q> bool: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> f64: Decode<'q, B::Db> + Type<B::Db>,
    for<'q> B::Uuid: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<B::Uuid>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> B::Ts: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<B::Ts>: Decode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<&'q MachineSelector>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<&'q Option<Condition>>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<MachineSelector>: Decode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<Condition>: Decode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<Alert>: Decode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<Json<BudgetBreach>>: Decode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<RuleState>: Decode<'q, B::Db> + Type<B::Db>,
    for<'r> (i64,): FromRow<'r, <B::Db as Database>::Row>,
    for<'n> &'n str: ColumnIndex<<B::Db as Database>::Row>,
{
    async fn insert_rule(
        &self,
        rule: &AlertRule,
        limit: u64,
        audit: Option<&AuditRecord>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(INSERT_RULE)
            .bind(B::uuid(rule.tenant_id))
            .bind(B::uuid(rule.rule_id))
            .bind(rule.spec.display_name.as_str())
            .bind(rule.spec.metric.as_str())
            .bind(Json(&rule.spec.selector))
            .bind(rule.severity().as_str())
            .bind(Json(&rule.spec.condition))
            .bind(rule.spec.disabled)
            .bind(B::ts(rule.create_time))
            .bind(B::ts(rule.update_time))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(|error| match DbErrorKind::of(&error) {
                DbErrorKind::UniqueViolation => StorageError::RuleExists(rule.rule_id.to_string()),
                _ => error.into(),
            })?;
        if B::rows_affected(&inserted) == 0 {
            return Err(StorageError::RuleLimit(limit));
        }
        if let Some(record) = audit {
            outbox::record(&mut *tx, OutboxTable::STORAGE, record).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_rule(&self, tenant: Uuid, rule: Uuid) -> Result<Option<AlertRule>> {
        let row = sqlx::query(SELECT_RULE)
            .bind(B::uuid(tenant))
            .bind(B::uuid(rule))
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(rule_of::<B>).transpose()
    }

    async fn list_rules(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<AlertRule>> {
        let rows = sqlx::query(LIST_RULES)
            .bind(B::uuid(tenant))
            .bind(after.map(B::uuid))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(rule_of::<B>).collect()
    }

    async fn all_rules(&self) -> Result<Vec<AlertRule>> {
        let rows = sqlx::query(ALL_RULES).fetch_all(self.pool()).await?;
        rows.iter().map(rule_of::<B>).collect()
    }

    async fn update_rule(
        &self,
        tenant: Uuid,
        rule: Uuid,
        change: RuleChange<'_>,
        audit: Option<&AuditRecord>,
    ) -> Result<AlertRule> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(RULE_FOR_UPDATE.of::<B::Db>())
            .bind(B::uuid(tenant))
            .bind(B::uuid(rule))
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(StorageError::RuleNotFound(rule.to_string()));
        };
        let updated = change(rule_of::<B>(&row)?)?;
        sqlx::query(UPDATE_RULE)
            .bind(B::uuid(tenant))
            .bind(B::uuid(rule))
            .bind(updated.spec.display_name.as_str())
            .bind(updated.spec.metric.as_str())
            .bind(Json(&updated.spec.selector))
            .bind(updated.severity().as_str())
            .bind(Json(&updated.spec.condition))
            .bind(updated.spec.disabled)
            .bind(B::ts(updated.update_time))
            .execute(&mut *tx)
            .await?;
        if let Some(record) = audit {
            outbox::record(&mut *tx, OutboxTable::STORAGE, record).await?;
        }
        tx.commit().await?;
        Ok(updated)
    }

    async fn delete_rule(
        &self,
        tenant: Uuid,
        rule: Uuid,
        audit: Option<&AuditRecord>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query(DELETE_RULE)
            .bind(B::uuid(tenant))
            .bind(B::uuid(rule))
            .execute(&mut *tx)
            .await?;
        sqlx::query(DELETE_RULE_STATES)
            .bind(B::uuid(tenant))
            .bind(B::uuid(rule))
            .execute(&mut *tx)
            .await?;
        let existed = B::rows_affected(&deleted) > 0;
        if let (true, Some(record)) = (existed, audit) {
            outbox::record(&mut *tx, OutboxTable::STORAGE, record).await?;
        }
        tx.commit().await?;
        Ok(existed)
    }

    async fn forget_tenant(&self, tenant: Uuid) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for statement in FORGET_TENANT {
            sqlx::query(statement)
                .bind(B::uuid(tenant))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn write_alerts(&self, write: &AlertWrite) -> Result<Written> {
        self.write_alerts_now(write).await
    }

    async fn log_position(&self) -> Result<Option<LogPosition>> {
        self.log_position_now().await
    }

    async fn unresolved_alerts(&self) -> Result<Vec<Alert>> {
        let rows = sqlx::query(UNRESOLVED_ALERTS)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(alert_of::<B>).collect()
    }

    async fn get_alert(&self, tenant: Uuid, alert: Uuid) -> Result<Option<Alert>> {
        let row = sqlx::query(SELECT_ALERT)
            .bind(B::uuid(tenant))
            .bind(B::uuid(alert))
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(alert_of::<B>).transpose()
    }

    async fn list_alerts(
        &self,
        tenant: Uuid,
        state: Option<AlertState>,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Alert>> {
        let rows = sqlx::query(LIST_ALERTS)
            .bind(B::uuid(tenant))
            .bind(state.map(|s| s.as_str()))
            .bind(before.map(B::uuid))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(alert_of::<B>).collect()
    }

    async fn expire_events(&self, tenant: Uuid, before: Micros) -> Result<u64> {
        let expired = sqlx::query(EXPIRE_EVENTS)
            .bind(B::uuid(tenant))
            .bind(B::ts(before))
            .execute(self.pool())
            .await?;
        Ok(B::rows_affected(&expired))
    }

    async fn last_cursor(&self, tenant: Uuid) -> Result<u64> {
        let last: Option<i64> = sqlx::query_scalar(LAST_CURSOR)
            .bind(B::uuid(tenant))
            .fetch_optional(self.pool())
            .await?;
        Ok(last.map_or(0, |c| u64::try_from(c).unwrap_or(0)))
    }

    async fn events_after(&self, tenant: Uuid, cursor: u64, limit: i64) -> Result<Vec<AlertEvent>> {
        let rows = sqlx::query(EVENTS_AFTER)
            .bind(B::uuid(tenant))
            .bind(i64::try_from(cursor).unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                let cursor: i64 = row.try_get("cursor")?;
                let Json(alert): Json<Alert> = row.try_get("alert")?;
                Ok(AlertEvent {
                    cursor: u64::try_from(cursor).unwrap_or(0),
                    event_id: B::uuid_of(row.try_get("event_id")?)?,
                    kind: EventType::parse(&kind).ok_or_else(|| {
                        StorageError::Internal(format!("corrupt alert event: kind `{kind}`"))
                    })?,
                    alert,
                    time: B::micros(row.try_get("event_time")?),
                })
            })
            .collect()
    }

    async fn rule_states(&self) -> Result<Vec<(RuleStateKey, RuleState)>> {
        let rows = sqlx::query(RULE_STATES).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                let Json(state): Json<RuleState> = row.try_get("state")?;
                Ok((
                    RuleStateKey {
                        tenant_id: B::uuid_of(row.try_get("tenant_id")?)?,
                        rule_id: B::uuid_of(row.try_get("rule_id")?)?,
                        machine_id: row.try_get("machine_id")?,
                    },
                    state,
                ))
            })
            .collect()
    }
}
