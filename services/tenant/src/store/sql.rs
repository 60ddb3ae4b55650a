//! What both backends share: rows and their conversion to domain types, and the SQL text (`$N`
//! placeholders bind by number on PostgreSQL and SQLite). The store itself is `sql_store.rs`.

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, FromRow, Row, Type, types::Json};
use uuid::Uuid;

use crate::{
    domain::{
        ApiKey, KeyId, KeyRecord, Labels, Limits, Machine, Onboarding, OnboardingStatus, Plan,
        Retention, Scope, Tenant, TenantId, TenantState,
    },
    error::{Result, TenantError},
};

macro_rules! tenant_columns {
    () => {
        "id, name, display_name, plan, state, labels, max_machines, ingest_readings_per_second, \
         api_requests_per_second, hot_days, warm_days, cold_days, monthly_budget_usd, create_time, \
         update_time, delete_time, onboarding, provisioning_run_id, provisioning_error"
    };
}
macro_rules! key_columns {
    () => {
        "k.key_id, k.tenant_id, k.display_name, k.scopes, k.create_time, k.revoke_time, \
         k.sealed_secret IS NOT NULL AS secret_claimable"
    };
}
macro_rules! machine_columns {
    () => {
        "tenant_id, machine_id, display_name, labels, create_time, update_time"
    };
}

pub(super) const INSERT_TENANT: &str = concat!(
    "INSERT INTO tenants (",
    tenant_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
);
pub(super) const SELECT_TENANT: &str = concat!(
    "SELECT ",
    tenant_columns!(),
    ", revision FROM tenants WHERE id = $1"
);
pub(super) const LIST_TENANTS: &str = concat!(
    "SELECT ",
    tenant_columns!(),
    ", revision FROM tenants WHERE ($1 OR state <> 'deleted') AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
);
pub(super) const UPDATE_TENANT: &str = "UPDATE tenants SET display_name = $2, plan = $3, state = $4, labels = $5, \
     max_machines = $6, ingest_readings_per_second = $7, api_requests_per_second = $8, hot_days = $9, \
     warm_days = $10, cold_days = $11, monthly_budget_usd = $12, update_time = $13, delete_time = $14, \
     onboarding = $15, provisioning_run_id = $16, provisioning_error = $17 WHERE id = $1";
pub(super) const INSERT_HANDOFF: &str = "INSERT INTO provisioning_outbox \
     (request_id, tenant_id, create_time, kind, force, purge_archive) VALUES ($1, $2, $3, $4, $5, $6)";
pub(super) const CLAIM_HANDOFFS: &str = "UPDATE provisioning_outbox \
     SET owner = $1, lease_until = $2, attempts = attempts + 1 WHERE request_id IN (\
         SELECT request_id FROM provisioning_outbox WHERE sent_time IS NULL \
         AND (lease_until IS NULL OR lease_until < $3) ORDER BY create_time LIMIT $4) \
     AND (lease_until IS NULL OR lease_until < $3) RETURNING request_id, tenant_id, attempts, kind, force, purge_archive";
pub(super) const HANDOFF_SENT: &str = "UPDATE provisioning_outbox SET sent_time = $2, owner = NULL, \
     lease_until = NULL WHERE request_id = $1";
pub(super) const FORGET_SENT_HANDOFFS: &str =
    "DELETE FROM provisioning_outbox WHERE sent_time IS NOT NULL AND sent_time < $1";
pub(super) const RUN_OF_TENANT: &str =
    "UPDATE tenants SET provisioning_run_id = $2 WHERE id = $1 AND provisioning_run_id = ''";
pub(super) const INSERT_KEY: &str = "INSERT INTO api_keys (key_id, tenant_id, display_name, scopes, secret_hash, \
     create_time, revoke_time, sealed_secret) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub(super) const LIST_KEYS: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM api_keys k WHERE k.tenant_id = $1 AND ($2 IS NULL OR k.key_id > $2) ORDER BY k.key_id LIMIT $3"
);
pub(super) const SELECT_KEY: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM api_keys k WHERE k.tenant_id = $1 AND k.key_id = $2"
);
pub(super) const REVOKE_KEY: &str = "UPDATE api_keys SET revoke_time = $3, sealed_secret = NULL \
     WHERE tenant_id = $1 AND key_id = $2 AND revoke_time IS NULL";
pub(super) const SEALED_SECRET: &str =
    "SELECT sealed_secret FROM api_keys WHERE tenant_id = $1 AND key_id = $2";
pub(super) const ERASE_SEALED_SECRET: &str = "UPDATE api_keys SET sealed_secret = NULL \
     WHERE tenant_id = $1 AND key_id = $2 AND sealed_secret = $3";
pub(super) const FIND_KEY: &str = concat!(
    "SELECT ",
    key_columns!(),
    ", k.secret_hash, t.state AS tenant_state, t.plan, t.max_machines, t.ingest_readings_per_second, \
     t.api_requests_per_second FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.key_id = $1"
);
pub(super) const COUNT_MACHINES: &str = "SELECT COUNT(*) FROM machines WHERE tenant_id = $1";
pub(super) const INSERT_MACHINE: &str = concat!(
    "INSERT INTO machines (",
    machine_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6)"
);
pub(super) const SELECT_MACHINE: &str = concat!(
    "SELECT ",
    machine_columns!(),
    " FROM machines WHERE tenant_id = $1 AND machine_id = $2"
);
pub(super) const LIST_MACHINES: &str = concat!(
    "SELECT ",
    machine_columns!(),
    " FROM machines WHERE tenant_id = $1 AND ($2 IS NULL OR machine_id > $2) ORDER BY machine_id LIMIT $3"
);
pub(super) const UPDATE_MACHINE: &str = "UPDATE machines SET display_name = $3, labels = $4, update_time = $5 \
     WHERE tenant_id = $1 AND machine_id = $2";
pub(super) const TENANT_FOR_UPDATE: mfg_common::db::ForUpdate = mfg_common::for_update!(
    "SELECT ",
    tenant_columns!(),
    ", revision FROM tenants WHERE id = $1"
);
pub(super) const STATE_FOR_UPDATE: mfg_common::db::ForUpdate =
    mfg_common::for_update!("SELECT state FROM tenants WHERE id = $1");
pub(super) const LIMIT_FOR_UPDATE: mfg_common::db::ForUpdate =
    mfg_common::for_update!("SELECT state, max_machines FROM tenants WHERE id = $1");
pub(super) const MACHINE_FOR_UPDATE: mfg_common::db::ForUpdate = mfg_common::for_update!(
    "SELECT ",
    machine_columns!(),
    " FROM machines WHERE tenant_id = $1 AND machine_id = $2"
);
pub(super) const DELETE_MACHINE: &str =
    "DELETE FROM machines WHERE tenant_id = $1 AND machine_id = $2";
pub(super) const LIST_TENANT_CHANGES: &str = concat!(
    "SELECT ",
    tenant_columns!(),
    ", revision FROM tenants WHERE revision > $1 ORDER BY revision LIMIT $2"
);
/// The next revision; the counter's row stays locked until the commit.
pub(super) const NEXT_REVISION: &str = "UPDATE tenant_revisions SET last = last + 1 RETURNING last";
pub(super) const SET_REVISION: &str = "UPDATE tenants SET revision = $2 WHERE id = $1";
pub(super) const MACHINE_COUNTS: &str = "SELECT m.tenant_id, count(*) AS machines \
     FROM machines m JOIN tenants t ON t.id = m.tenant_id \
     WHERE t.state <> 'deleted' GROUP BY m.tenant_id";

/// A column type both backends decode.
pub(super) trait Column<'r, R: Row>: Decode<'r, R::Database> + Type<R::Database> {}

impl<'r, R: Row, T: Decode<'r, R::Database> + Type<R::Database>> Column<'r, R> for T {}

fn corrupt(what: &str) -> TenantError {
    TenantError::Internal(format!("corrupt row in the tenant database: {what}"))
}

fn count(value: i64, what: &str) -> Result<u32> {
    u32::try_from(value).map_err(|_| corrupt(what))
}

pub(super) struct TenantRow {
    id: Uuid,
    name: String,
    display_name: String,
    plan: String,
    state: String,
    labels: Json<Labels>,
    max_machines: i64,
    ingest_readings_per_second: i64,
    api_requests_per_second: i64,
    hot_days: i64,
    warm_days: i64,
    cold_days: i64,
    monthly_budget_usd: f64,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    delete_time: Option<DateTime<Utc>>,
    onboarding: String,
    provisioning_run_id: String,
    provisioning_error: String,
    revision: i64,
}

impl<'r, R: Row> FromRow<'r, R> for TenantRow
where
    &'r str: ColumnIndex<R>,
    Uuid: Column<'r, R>,
    String: Column<'r, R>,
    Json<Labels>: Column<'r, R>,
    i64: Column<'r, R>,
    f64: Column<'r, R>,
    DateTime<Utc>: Column<'r, R>,
    Option<DateTime<Utc>>: Column<'r, R>,
{
    fn from_row(row: &'r R) -> sqlx::Result<Self> {
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            display_name: row.try_get("display_name")?,
            plan: row.try_get("plan")?,
            state: row.try_get("state")?,
            labels: row.try_get("labels")?,
            max_machines: row.try_get("max_machines")?,
            ingest_readings_per_second: row.try_get("ingest_readings_per_second")?,
            api_requests_per_second: row.try_get("api_requests_per_second")?,
            hot_days: row.try_get("hot_days")?,
            warm_days: row.try_get("warm_days")?,
            cold_days: row.try_get("cold_days")?,
            monthly_budget_usd: row.try_get("monthly_budget_usd")?,
            create_time: row.try_get("create_time")?,
            update_time: row.try_get("update_time")?,
            delete_time: row.try_get("delete_time")?,
            onboarding: row.try_get("onboarding")?,
            provisioning_run_id: row.try_get("provisioning_run_id")?,
            provisioning_error: row.try_get("provisioning_error")?,
            revision: row.try_get("revision")?,
        })
    }
}

impl TryFrom<TenantRow> for Tenant {
    type Error = TenantError;
    fn try_from(row: TenantRow) -> Result<Self> {
        Ok(Self {
            id: TenantId(row.id),
            name: row.name.parse().map_err(|_| corrupt("tenants.name"))?,
            display_name: row.display_name,
            plan: Plan::parse(&row.plan).ok_or_else(|| corrupt("tenants.plan"))?,
            state: TenantState::parse(&row.state).ok_or_else(|| corrupt("tenants.state"))?,
            labels: row.labels.0,
            limits: Limits {
                max_machines: count(row.max_machines, "tenants.max_machines")?,
                ingest_readings_per_second: count(
                    row.ingest_readings_per_second,
                    "tenants.ingest_readings_per_second",
                )?,
                api_requests_per_second: count(
                    row.api_requests_per_second,
                    "tenants.api_requests_per_second",
                )?,
            },
            retention: Retention {
                hot_days: count(row.hot_days, "tenants.hot_days")?,
                warm_days: count(row.warm_days, "tenants.warm_days")?,
                cold_days: count(row.cold_days, "tenants.cold_days")?,
            },
            monthly_budget_usd: row.monthly_budget_usd,
            create_time: row.create_time,
            update_time: row.update_time,
            delete_time: row.delete_time,
            onboarding: Onboarding {
                status: OnboardingStatus::parse(&row.onboarding)
                    .ok_or_else(|| corrupt("tenants.onboarding"))?,
                run_id: row.provisioning_run_id,
                error: row.provisioning_error,
            },
            revision: row.revision,
        })
    }
}

pub(super) struct ApiKeyRow {
    key_id: Uuid,
    tenant_id: Uuid,
    display_name: String,
    scopes: Json<Vec<String>>,
    create_time: DateTime<Utc>,
    revoke_time: Option<DateTime<Utc>>,
    secret_claimable: bool,
}

impl<'r, R: Row> FromRow<'r, R> for ApiKeyRow
where
    &'r str: ColumnIndex<R>,
    Uuid: Column<'r, R>,
    String: Column<'r, R>,
    Json<Vec<String>>: Column<'r, R>,
    DateTime<Utc>: Column<'r, R>,
    Option<DateTime<Utc>>: Column<'r, R>,
    bool: Column<'r, R>,
{
    fn from_row(row: &'r R) -> sqlx::Result<Self> {
        Ok(Self {
            key_id: row.try_get("key_id")?,
            tenant_id: row.try_get("tenant_id")?,
            display_name: row.try_get("display_name")?,
            scopes: row.try_get("scopes")?,
            create_time: row.try_get("create_time")?,
            revoke_time: row.try_get("revoke_time")?,
            secret_claimable: row.try_get("secret_claimable")?,
        })
    }
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = TenantError;
    fn try_from(row: ApiKeyRow) -> Result<Self> {
        let scopes = row
            .scopes
            .0
            .iter()
            .map(|s| scope_from_str(s).ok_or_else(|| corrupt("api_keys.scopes")))
            .collect::<Result<_>>()?;
        Ok(Self {
            key_id: KeyId(row.key_id),
            tenant_id: TenantId(row.tenant_id),
            display_name: row.display_name,
            scopes,
            create_time: row.create_time,
            revoke_time: row.revoke_time,
            secret_claimable: row.secret_claimable,
        })
    }
}

pub(super) struct KeyRecordRow {
    key: ApiKeyRow,
    secret_hash: Vec<u8>,
    tenant_state: String,
    plan: String,
    max_machines: i64,
    ingest_readings_per_second: i64,
    api_requests_per_second: i64,
}

impl<'r, R: Row> FromRow<'r, R> for KeyRecordRow
where
    &'r str: ColumnIndex<R>,
    Vec<u8>: Column<'r, R>,
    String: Column<'r, R>,
    i64: Column<'r, R>,
    ApiKeyRow: FromRow<'r, R>,
{
    fn from_row(row: &'r R) -> sqlx::Result<Self> {
        Ok(Self {
            key: ApiKeyRow::from_row(row)?,
            secret_hash: row.try_get("secret_hash")?,
            tenant_state: row.try_get("tenant_state")?,
            plan: row.try_get("plan")?,
            max_machines: row.try_get("max_machines")?,
            ingest_readings_per_second: row.try_get("ingest_readings_per_second")?,
            api_requests_per_second: row.try_get("api_requests_per_second")?,
        })
    }
}

impl TryFrom<KeyRecordRow> for KeyRecord {
    type Error = TenantError;
    fn try_from(row: KeyRecordRow) -> Result<Self> {
        Ok(Self {
            key: row.key.try_into()?,
            secret_hash: row.secret_hash,
            tenant_state: TenantState::parse(&row.tenant_state)
                .ok_or_else(|| corrupt("tenants.state"))?,
            plan: Plan::parse(&row.plan).ok_or_else(|| corrupt("tenants.plan"))?,
            limits: Limits {
                max_machines: count(row.max_machines, "tenants.max_machines")?,
                ingest_readings_per_second: count(
                    row.ingest_readings_per_second,
                    "tenants.ingest_readings_per_second",
                )?,
                api_requests_per_second: count(
                    row.api_requests_per_second,
                    "tenants.api_requests_per_second",
                )?,
            },
        })
    }
}

/// How many machines a tenant has.
pub(super) struct MachineCountRow {
    pub(super) tenant_id: Uuid,
    pub(super) machines: i64,
}

impl<'r, R: Row> FromRow<'r, R> for MachineCountRow
where
    &'r str: ColumnIndex<R>,
    Uuid: Column<'r, R>,
    i64: Column<'r, R>,
{
    fn from_row(row: &'r R) -> sqlx::Result<Self> {
        Ok(Self {
            tenant_id: row.try_get("tenant_id")?,
            machines: row.try_get("machines")?,
        })
    }
}

pub(super) struct MachineRow {
    tenant_id: Uuid,
    machine_id: String,
    display_name: String,
    labels: Json<Labels>,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
}

impl<'r, R: Row> FromRow<'r, R> for MachineRow
where
    &'r str: ColumnIndex<R>,
    Uuid: Column<'r, R>,
    String: Column<'r, R>,
    Json<Labels>: Column<'r, R>,
    DateTime<Utc>: Column<'r, R>,
{
    fn from_row(row: &'r R) -> sqlx::Result<Self> {
        Ok(Self {
            tenant_id: row.try_get("tenant_id")?,
            machine_id: row.try_get("machine_id")?,
            display_name: row.try_get("display_name")?,
            labels: row.try_get("labels")?,
            create_time: row.try_get("create_time")?,
            update_time: row.try_get("update_time")?,
        })
    }
}

impl TryFrom<MachineRow> for Machine {
    type Error = TenantError;
    fn try_from(row: MachineRow) -> Result<Self> {
        Ok(Self {
            machine_id: row
                .machine_id
                .parse()
                .map_err(|_| corrupt("machines.machine_id"))?,
            tenant_id: TenantId(row.tenant_id),
            display_name: row.display_name,
            labels: row.labels.0,
            create_time: row.create_time,
            update_time: row.update_time,
        })
    }
}

/// Scopes as stored: their API names.
pub(super) fn scopes_to_json(scopes: &[Scope]) -> Json<Vec<&'static str>> {
    Json(scopes.iter().map(|s| s.as_str()).collect())
}

fn scope_from_str(s: &str) -> Option<Scope> {
    match s {
        "read" => Some(Scope::Read),
        "write" => Some(Scope::Write),
        "admin" => Some(Scope::Admin),
        _ => None,
    }
}

/// Converts rows, failing on the first corrupt one.
pub(super) fn convert<R, T: TryFrom<R, Error = TenantError>>(rows: Vec<R>) -> Result<Vec<T>> {
    rows.into_iter().map(T::try_from).collect()
}

/// Checks, inside a transaction, that a tenant exists and is not deleted.
pub(super) fn require_live(tenant: TenantId, state: Option<&str>) -> Result<()> {
    match state {
        None => Err(TenantError::TenantNotFound(tenant.to_string())),
        Some("deleted") => Err(TenantError::TenantDeleted(tenant.to_string())),
        Some(_) => Ok(()),
    }
}
