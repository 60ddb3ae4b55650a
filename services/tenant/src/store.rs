//! The tenant service's repository: a narrow trait with a PostgreSQL and a SQLite
//! implementation, chosen by the database URL. Both pass the same conformance suite.

mod outbox;
/// The SQL migrations of each backend, embedded by the build script (`mfg_build`).
pub mod migrations {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}
mod postgres;
mod sql;
mod sql_store;
mod sqlite;
mod tenant_row;

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mfg_common::{audit::AuditRecord, db::DbPool};
use uuid::Uuid;

pub use self::{
    postgres::PostgresStore,
    sql_store::{Dialect, SqlStore},
    sqlite::SqliteStore,
};
use crate::{
    domain::{
        ApiKey, KeyId, KeyRecord, Machine, MachineId, NewApiKey, Offboarding, Tenant, TenantId,
    },
    error::Result,
};

/// A change computed from the current value of a row, inside the store's transaction.
pub type Change<'a, T> = &'a (dyn Fn(T) -> Result<T> + Send + Sync);

/// Where tenants, keys and machines are kept.
///
/// Read-modify-write methods take a [`Change`] and run it inside one transaction that holds the
/// row, so concurrent updates never lose each other's fields.
#[async_trait]
pub trait TenantStore: Send + Sync + Debug + 'static {
    /// Applies the migrations that are not applied yet.
    async fn migrate(&self) -> Result<()>;
    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;
    /// Closes the connections.
    async fn close(&self);

    /// Inserts a tenant; [`crate::error::TenantError::NameTaken`] when its name was ever used.
    /// A tenant being onboarded is handed to the provisioning service in the same transaction:
    /// its row in the outbox. Each change of this trait writes its audit record, when given,
    /// in its own transaction (`mfg_common::audit`).
    /// Returns the revision it was given.
    async fn insert_tenant(&self, tenant: &Tenant, audit: Option<&AuditRecord>) -> Result<i64>;
    /// Claims, for `owner` until `lease_until`, at most `limit` hand-offs not yet accepted
    /// whose lease ran out at `now`, oldest first.
    async fn claim_handoffs(
        &self,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Handoff>>;
    /// Marks a hand-off accepted at `now` by run `run_id`, which the tenant records.
    async fn handoff_sent(&self, handoff: &Handoff, run_id: &str, now: DateTime<Utc>)
    -> Result<()>;
    /// Forgets the hand-offs sent before `before`; how many.
    async fn forget_sent_handoffs(&self, before: DateTime<Utc>) -> Result<u64>;
    /// Returns a tenant.
    async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>>;
    /// Lists the tenants whose revision is greater than `after`, deleted ones too, by revision,
    /// at most `limit`.
    async fn list_tenant_changes(&self, after: i64, limit: i64) -> Result<Vec<Tenant>>;
    /// Lists tenants by id after `after`, at most `limit`, deleted ones only if asked.
    async fn list_tenants(
        &self,
        after: Option<TenantId>,
        limit: i64,
        show_deleted: bool,
    ) -> Result<Vec<Tenant>>;
    /// Changes a tenant atomically.
    async fn update_tenant(
        &self,
        id: TenantId,
        change: Change<'_, Tenant>,
        audit: Option<&AuditRecord>,
    ) -> Result<Tenant>;
    /// Soft-deletes a tenant at `at`, and, when it was handed to the provisioning service,
    /// hands it to it again to be offboarded as `offboarding` says, in the same transaction.
    /// A deleted tenant is returned unchanged, handed off no more and audited no more.
    async fn delete_tenant(
        &self,
        id: TenantId,
        at: DateTime<Utc>,
        offboarding: Offboarding,
        audit: Option<&AuditRecord>,
    ) -> Result<Tenant>;

    /// Inserts a key of a tenant that is not deleted.
    async fn insert_api_key(&self, key: &NewApiKey, audit: Option<&AuditRecord>) -> Result<()>;
    /// Lists a tenant's keys by id after `after`, at most `limit`.
    async fn list_api_keys(
        &self,
        tenant: TenantId,
        after: Option<KeyId>,
        limit: i64,
    ) -> Result<Vec<ApiKey>>;
    /// Returns a key of a tenant.
    async fn get_api_key(&self, tenant: TenantId, key: KeyId) -> Result<Option<ApiKey>>;
    /// Returns a key's sealed secret, `None` when it has none (claimed, revoked, or never
    /// sealed); `ApiKeyNotFound` when there is no such key.
    async fn sealed_secret(&self, tenant: TenantId, key: KeyId) -> Result<Option<Vec<u8>>>;
    /// Erases a key's sealed secret if it is still `sealed`; returns whether it was, so that
    /// of two claims at once only one succeeds.
    async fn erase_sealed_secret(
        &self,
        tenant: TenantId,
        key: KeyId,
        sealed: &[u8],
        audit: Option<&AuditRecord>,
    ) -> Result<bool>;
    /// Marks a key revoked at `at`, and erases its sealed secret, unless it already is revoked;
    /// returns it.
    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        key: KeyId,
        at: DateTime<Utc>,
        audit: Option<&AuditRecord>,
    ) -> Result<ApiKey>;
    /// Returns a key with its hash and its tenant's state, plan and limits.
    async fn find_key(&self, key: KeyId) -> Result<Option<KeyRecord>>;

    /// Inserts a machine of a tenant that is not deleted and is below its machine limit.
    async fn insert_machine(&self, machine: &Machine, audit: Option<&AuditRecord>) -> Result<()>;
    /// Returns a machine.
    async fn get_machine(&self, tenant: TenantId, id: &MachineId) -> Result<Option<Machine>>;
    /// Lists a tenant's machines by id after `after`, at most `limit`.
    async fn list_machines(
        &self,
        tenant: TenantId,
        after: Option<&MachineId>,
        limit: i64,
    ) -> Result<Vec<Machine>>;
    /// Changes a machine atomically.
    async fn update_machine(
        &self,
        tenant: TenantId,
        id: &MachineId,
        change: Change<'_, Machine>,
        audit: Option<&AuditRecord>,
    ) -> Result<Machine>;
    /// Removes a machine; returns whether it existed (and only then audits it).
    async fn delete_machine(
        &self,
        tenant: TenantId,
        id: &MachineId,
        audit: Option<&AuditRecord>,
    ) -> Result<bool>;
    /// How many machines each tenant that is not deleted has (none: not listed).
    async fn machine_counts(&self) -> Result<Vec<(TenantId, u64)>>;
}

/// A tenant handed to the provisioning service, not yet accepted by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// The request id `StartProvisioning` is called with.
    pub request_id: String,
    /// The tenant.
    pub tenant: TenantId,
    /// What the run it starts does.
    pub kind: HandoffKind,
    /// How many times it was claimed to be sent, this time included.
    pub attempts: u32,
}

/// What a hand-off's run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffKind {
    /// Onboards a new tenant.
    Onboard,
    /// Applies a change of its retention or budget again.
    Reconcile,
    /// Offboards a deleted tenant.
    Offboard(Offboarding),
}

/// Opens the store of a connected pool.
pub fn open(pool: DbPool) -> Box<dyn TenantStore> {
    match pool {
        DbPool::Postgres(pool) => Box::new(PostgresStore::new(pool)),
        DbPool::Sqlite(pool) => Box::new(SqliteStore::new(pool)),
    }
}
