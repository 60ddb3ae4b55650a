//! The provisioning service's runs: one trait, [`ProvisioningStore`], implemented once over both
//! backends (`store/sql_store.rs`) and tested by one conformance suite on PostgreSQL and SQLite.
//!
//! Workers of several processes share the runs: a worker claims a run with a lease, and every
//! write of a leased run is fenced by its owner, so a worker whose lease was taken over cannot
//! overwrite what the new owner did.

mod audit;
/// The SQL migrations of each backend, embedded by the build script (`mfg_build`).
pub mod migrations {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}
mod sql_store;

use chrono::{DateTime, Utc};
use mfg_common::db::DbPool;
use uuid::Uuid;

pub use self::sql_store::SqlStore;
use crate::{
    domain::{
        audit::{AuditEvent, AuditFilter},
        run::Run,
        template::Template,
    },
    error::Result,
};

/// The table sqlx records the provisioning service's migrations in, apart from the other
/// services' when they share a database.
pub const MIGRATIONS_TABLE: &str = "_sqlx_migrations_provisioning";

/// Runs and their steps.
#[async_trait::async_trait]
pub trait ProvisioningStore: Send + Sync + std::fmt::Debug {
    /// Applies the migrations.
    async fn migrate(&self) -> Result<()>;
    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;
    /// Closes the pool.
    async fn close(&self);

    /// Stores `run`, unless a run was started with its request id: returns the run stored
    /// under the request id, `run` or the earlier one. Each change of a client's here appends
    /// its audit event, when given, in its own transaction: this one when `run` is stored.
    async fn start(&self, run: &Run, audit: Option<&AuditEvent>) -> Result<Run>;
    /// A tenant's run.
    async fn run(&self, tenant: Uuid, id: Uuid) -> Result<Option<Run>>;
    /// A tenant's runs, newest first: at most `limit`, older than `before` when given.
    async fn runs(&self, tenant: Uuid, limit: u32, before: Option<Uuid>) -> Result<Vec<Run>>;

    /// Claims, for `owner` until `lease_until`, a run that has work to do at `now` and no
    /// live lease: the one waiting longest. `None` when there is none.
    async fn claim(
        &self,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Run>>;
    /// Stores a claimed run's state and steps, and extends its lease to `lease_until`, if
    /// `owner` still holds it. Returns false, storing nothing, when it does not.
    async fn save(&self, run: &Run, owner: Uuid, lease_until: DateTime<Utc>) -> Result<bool>;
    /// Gives up `owner`'s lease of a run.
    async fn release(&self, run: Uuid, owner: Uuid) -> Result<()>;
    /// Stores a run that is leased by no one, if it is still in the state it was read in
    /// (`was`): a retry or rollback asked for by a client. Returns false when it changed.
    async fn update_unleased(
        &self,
        run: &Run,
        was: crate::domain::run::RunState,
        audit: Option<&AuditEvent>,
    ) -> Result<bool>;

    /// Appends events to the audit log, each once; returns how many were new.
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<u64>;
    /// The audit log's events `filter` admits, newest first, older than `before` when given, at
    /// most `limit`.
    async fn audit_events(
        &self,
        filter: &AuditFilter,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>>;
    /// Drops the audit log's events recorded before `before`; returns how many went.
    async fn forget_audit_before(&self, before: DateTime<Utc>) -> Result<u64>;

    /// The onboarding template; the empty one while it was never set.
    async fn template(&self) -> Result<Template>;
    /// Stores `template`, changed at `at`, if the one stored is still the one it changes
    /// (`replaces`, its update time; `None` for none). Returns false, storing nothing, when
    /// another change came first.
    async fn set_template(
        &self,
        template: &Template,
        replaces: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
        audit: Option<&AuditEvent>,
    ) -> Result<bool>;
}

/// Opens the store of a pool's backend.
pub fn open(pool: DbPool) -> Box<dyn ProvisioningStore> {
    match pool {
        DbPool::Postgres(pool) => Box::new(SqlStore::new(pool)),
        DbPool::Sqlite(pool) => Box::new(SqlStore::new(pool)),
    }
}
