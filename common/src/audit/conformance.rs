//! The conformance suite of a service's audit outbox, run by each service's tests on its own
//! migrated database of both backends: what its relay claims, marks and forgets.

use chrono::Duration;
use uuid::Uuid;

use super::outbox::{AuditOutbox, AuditRecord, OutboxTable, record};
use crate::{clock::micros, db::DbPool};

/// A record is claimed by one relay at a time, claimed again once its lease ran out, and
/// forgotten once sent and old; a record of no tenant comes back as such.
pub async fn audit_outbox_conforms(pool: DbPool, table: OutboxTable) {
    let now = micros(std::time::SystemTime::now());
    let of = |tenant: Option<Uuid>, action: &str| AuditRecord {
        id: Uuid::now_v7(),
        tenant,
        actor: "operator".to_owned(),
        action: action.to_owned(),
        resource: "tenants/x".to_owned(),
        time: now,
        request_id: "r".to_owned(),
        trace_id: "0af7651916cd43dd8448eb211c80319c".to_owned(),
    };
    let (first, second) = (
        of(Some(Uuid::now_v7()), "tenant.create"),
        of(None, "price_book.update"),
    );
    for written in [&first, &second] {
        match &pool {
            DbPool::Postgres(pool) => record(pool, table, written).await,
            DbPool::Sqlite(pool) => record(pool, table, written).await,
        }
        .expect("record");
    }
    let outbox = AuditOutbox::new(pool, table);
    let (one, two) = (Uuid::now_v7(), Uuid::now_v7());
    let lease = Duration::seconds(2);

    let claimed = outbox.claim(one, now, now + lease, 10).await.unwrap();
    assert_eq!(claimed, [first.clone(), second.clone()]);
    let taken = outbox.claim(two, now, now + lease, 10).await.unwrap();
    assert!(taken.is_empty(), "leased to the first relay: {taken:?}");

    outbox.sent(&[first.id], now).await.unwrap();
    let later = now + lease + Duration::milliseconds(1);
    let again = outbox.claim(two, later, later + lease, 10).await.unwrap();
    assert_eq!(
        again,
        std::slice::from_ref(&second),
        "the unsent one, its lease run out"
    );
    outbox.sent(&[second.id], later).await.unwrap();
    assert_eq!(outbox.forget_sent(now).await.unwrap(), 0);
    assert_eq!(outbox.forget_sent(later + lease).await.unwrap(), 2);
}
