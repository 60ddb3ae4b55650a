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

/// Generates `impl AlertStore` for a backend's store type. `$for_update` is the dialect's row
/// lock of a read-modify-write (empty on SQLite, whose write transactions lock the database).
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
                let deleted = ::sqlx::query(alert_sql::DELETE_RULE)
                    .bind(db_uuid(tenant))
                    .bind(db_uuid(rule))
                    .execute(&self.pool)
                    .await?;
                Ok(deleted.rows_affected() > 0)
            }
        }
    };
}
