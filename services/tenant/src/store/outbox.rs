//! The outboxes' rows as the store writes them in the transaction of a change: a hand-off of a
//! tenant to the provisioning service and what kind of run it starts, and an audit record
//! (decision 0014).

use chrono::{DateTime, Utc};
use mfg_common::audit::{AuditRecord, OutboxTable, outbox};
use sqlx::{Database, Executor, IntoArguments, Transaction};

use super::{HandoffKind, sql};
use crate::{
    domain::{Offboarding, Tenant},
    error::{Result, TenantError},
};

/// The kinds of hand-off the outbox holds, as stored.
const ONBOARD: &str = "onboard";
const RECONCILE: &str = "reconcile";
const OFFBOARD: &str = "offboard";

/// Writes a tenant's hand-off of `kind` to the outbox, in the transaction of its change.
pub(super) async fn hand_off<DB>(
    tx: &mut Transaction<'_, DB>,
    request_id: &str,
    tenant: &Tenant,
    at: DateTime<Utc>,
    kind: HandoffKind,
) -> Result<()>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> bool: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let (name, offboarding) = match kind {
        HandoffKind::Onboard => (ONBOARD, Offboarding::default()),
        HandoffKind::Reconcile => (RECONCILE, Offboarding::default()),
        HandoffKind::Offboard(offboarding) => (OFFBOARD, offboarding),
    };
    sqlx::query(sql::INSERT_HANDOFF)
        .bind(request_id)
        .bind(tenant.id.to_string())
        .bind(at.timestamp_micros())
        .bind(name)
        .bind(offboarding.force)
        .bind(offboarding.purge_archive)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A hand-off's kind as stored.
pub(super) fn handoff_kind(name: &str, force: bool, purge_archive: bool) -> Result<HandoffKind> {
    match name {
        ONBOARD => Ok(HandoffKind::Onboard),
        RECONCILE => Ok(HandoffKind::Reconcile),
        OFFBOARD => Ok(HandoffKind::Offboard(Offboarding {
            force,
            purge_archive,
        })),
        other => Err(TenantError::Internal(format!(
            "corrupt hand-off kind `{other}` in the outbox"
        ))),
    }
}

/// Writes a change's audit record, when it has one, in its transaction.
pub(super) async fn audited<DB>(
    tx: &mut Transaction<'static, DB>,
    audit: Option<&AuditRecord>,
) -> Result<()>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    if let Some(record) = audit {
        outbox::record(&mut **tx, OutboxTable::TENANT, record).await?;
    }
    Ok(())
}
