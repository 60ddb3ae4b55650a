//! The conformance suite of `TenantStore`: the same assertions against PostgreSQL and SQLite.
//! Its outboxes have a suite of their own (`outbox_conformance.rs`).

mod store_support;

use std::{collections::BTreeMap, sync::Arc};

use chrono::{Duration, Utc};
use mfg_common::testing::TestDatabase;
use mfg_tenant::{
    domain::{
        ApiKey, KeyId, Machine, MachineId, NewApiKey, Plan, Scope, Tenant, TenantId, TenantState,
        timestamp,
    },
    error::TenantError,
    store::TenantStore,
};
use store_support::{open, tenant};

fn key(tenant: TenantId) -> NewApiKey {
    NewApiKey {
        key: ApiKey {
            key_id: KeyId::generate(),
            tenant_id: tenant,
            display_name: "ci".to_owned(),
            scopes: vec![Scope::Read, Scope::Write],
            create_time: timestamp(std::time::SystemTime::now()),
            revoke_time: None,
            secret_claimable: false,
        },
        secret_hash: vec![7; 32],
        sealed_secret: None,
    }
}

/// A key whose secret is sealed until claimed.
fn sealed_key(tenant: TenantId, sealed: &[u8]) -> NewApiKey {
    let mut new = key(tenant);
    new.key.secret_claimable = true;
    new.sealed_secret = Some(sealed.to_vec());
    new
}

fn machine(tenant: TenantId, id: &str) -> Machine {
    let now = timestamp(std::time::SystemTime::now());
    Machine {
        machine_id: id.parse().unwrap(),
        tenant_id: tenant,
        display_name: format!("machine {id}"),
        labels: BTreeMap::from([("line".to_owned(), "a".to_owned())]),
        create_time: now,
        update_time: now,
    }
}

async fn delete(store: &dyn TenantStore, id: TenantId) {
    store
        .update_tenant(
            id,
            &|mut t: Tenant| {
                t.state = TenantState::Deleted;
                t.delete_time = Some(t.update_time);
                Ok(t)
            },
            None,
        )
        .await
        .unwrap();
}

async fn tenants_round_trip(store: Arc<dyn TenantStore>) {
    let mut acme = tenant("acme", 5);
    acme.revision = store.insert_tenant(&acme, None).await.unwrap();
    assert_eq!(store.get_tenant(acme.id).await.unwrap(), Some(acme.clone()));
    assert_eq!(store.get_tenant(TenantId::generate()).await.unwrap(), None);
}

async fn names_stay_reserved(store: Arc<dyn TenantStore>) {
    let acme = tenant("acme", 5);
    store.insert_tenant(&acme, None).await.unwrap();
    let again = store
        .insert_tenant(&tenant("acme", 5), None)
        .await
        .unwrap_err();
    assert!(
        matches!(again, TenantError::NameTaken(ref n) if n == "acme"),
        "{again:?}"
    );
    delete(&*store, acme.id).await;
    let after_delete = store
        .insert_tenant(&tenant("acme", 5), None)
        .await
        .unwrap_err();
    assert!(
        matches!(after_delete, TenantError::NameTaken(_)),
        "{after_delete:?}"
    );
}

async fn lists_page_in_creation_order(store: Arc<dyn TenantStore>) {
    let tenants: Vec<Tenant> = (0..5).map(|i| tenant(&format!("tenant-{i}"), 5)).collect();
    for t in &tenants {
        store.insert_tenant(t, None).await.unwrap();
    }
    delete(&*store, tenants[2].id).await;
    let first = store.list_tenants(None, 2, false).await.unwrap();
    assert_eq!(
        first.iter().map(|t| t.id).collect::<Vec<_>>(),
        [tenants[0].id, tenants[1].id]
    );
    let rest = store
        .list_tenants(Some(tenants[1].id), 10, false)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|t| t.id).collect::<Vec<_>>(),
        [tenants[3].id, tenants[4].id]
    );
    let all = store.list_tenants(None, 10, true).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[2].state, TenantState::Deleted);
}

async fn updates_apply_atomically(store: Arc<dyn TenantStore>) {
    let mut acme = tenant("acme", 5);
    acme.revision = store.insert_tenant(&acme, None).await.unwrap();
    let missing = store
        .update_tenant(TenantId::generate(), &|t: Tenant| Ok(t), None)
        .await
        .unwrap_err();
    assert!(
        matches!(missing, TenantError::TenantNotFound(_)),
        "{missing:?}"
    );

    let refused = store
        .update_tenant(
            acme.id,
            &|_t: Tenant| Err(TenantError::invalid("tenant.plan", "no")),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, TenantError::InvalidArgument(_)));
    assert_eq!(store.get_tenant(acme.id).await.unwrap(), Some(acme.clone()));

    let later = acme.update_time + Duration::seconds(1);
    let updated = store
        .update_tenant(
            acme.id,
            &|mut t: Tenant| {
                t.plan = Plan::Dedicated;
                t.state = TenantState::Suspended;
                t.labels.insert("tier".to_owned(), "gold".to_owned());
                t.limits.max_machines = 50;
                t.retention.hot_days = 7;
                t.monthly_budget_usd = 99.0;
                t.update_time = later;
                Ok(t)
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_tenant(acme.id).await.unwrap(),
        Some(updated.clone())
    );
    assert_eq!(updated.limits.max_machines, 50);
    assert_eq!(updated.name, acme.name);
    assert_eq!(updated.create_time, acme.create_time);

    // Concurrent read-modify-writes of different fields do not lose each other.
    let a = store.update_tenant(
        acme.id,
        &|mut t: Tenant| {
            t.labels.insert("a".to_owned(), "1".to_owned());
            Ok(t)
        },
        None,
    );
    let b = store.update_tenant(
        acme.id,
        &|mut t: Tenant| {
            t.labels.insert("b".to_owned(), "2".to_owned());
            Ok(t)
        },
        None,
    );
    let (a, b) = tokio::join!(a, b);
    a.unwrap();
    b.unwrap();
    let labels = store.get_tenant(acme.id).await.unwrap().unwrap().labels;
    assert_eq!(
        (labels.get("a"), labels.get("b")),
        (Some(&"1".to_owned()), Some(&"2".to_owned()))
    );
}

async fn api_keys_live_and_die_with_their_tenant(store: Arc<dyn TenantStore>) {
    let acme = tenant("acme", 5);
    store.insert_tenant(&acme, None).await.unwrap();
    let orphan = store
        .insert_api_key(&key(TenantId::generate()), None)
        .await
        .unwrap_err();
    assert!(
        matches!(orphan, TenantError::TenantNotFound(_)),
        "{orphan:?}"
    );

    let first = key(acme.id);
    let second = key(acme.id);
    store.insert_api_key(&first, None).await.unwrap();
    store.insert_api_key(&second, None).await.unwrap();

    let record = store.find_key(first.key.key_id).await.unwrap().unwrap();
    assert_eq!(record.key, first.key);
    assert_eq!(record.secret_hash, first.secret_hash);
    assert_eq!(record.tenant_state, TenantState::Active);
    assert_eq!(record.limits, acme.limits);
    assert!(store.find_key(KeyId::generate()).await.unwrap().is_none());

    let listed = store.list_api_keys(acme.id, None, 10).await.unwrap();
    assert_eq!(listed, [first.key.clone(), second.key.clone()]);
    assert_eq!(
        store
            .list_api_keys(acme.id, Some(first.key.key_id), 10)
            .await
            .unwrap(),
        std::slice::from_ref(&second.key)
    );

    let at = timestamp(std::time::SystemTime::now());
    let revoked = store
        .revoke_api_key(acme.id, first.key.key_id, at, None)
        .await
        .unwrap();
    assert_eq!(revoked.revoke_time, Some(at));
    let again = store
        .revoke_api_key(acme.id, first.key.key_id, at + Duration::seconds(5), None)
        .await
        .unwrap();
    assert_eq!(
        again.revoke_time,
        Some(at),
        "revoking twice keeps the first time"
    );
    let other_tenant = store
        .revoke_api_key(TenantId::generate(), second.key.key_id, at, None)
        .await
        .unwrap_err();
    assert!(
        matches!(other_tenant, TenantError::ApiKeyNotFound(_)),
        "{other_tenant:?}"
    );

    delete(&*store, acme.id).await;
    let record = store.find_key(second.key.key_id).await.unwrap().unwrap();
    assert_eq!(record.tenant_state, TenantState::Deleted);
    let refused = store.insert_api_key(&key(acme.id), None).await.unwrap_err();
    assert!(
        matches!(refused, TenantError::TenantDeleted(_)),
        "{refused:?}"
    );
}

/// A sealed secret is read until it is erased, and erased once: by the claim that read it, or
/// by a revocation. A key id is taken once, whichever tenant asks.
async fn a_sealed_secret_is_erased_once(store: Arc<dyn TenantStore>) {
    let acme = tenant("acme", 5);
    store.insert_tenant(&acme, None).await.unwrap();
    let sealed = sealed_key(acme.id, b"sealed secret");
    let id = sealed.key.key_id;
    store.insert_api_key(&sealed, None).await.unwrap();
    let taken = store.insert_api_key(&sealed, None).await.unwrap_err();
    assert!(matches!(taken, TenantError::ApiKeyExists(_)), "{taken:?}");
    assert_eq!(
        store.get_api_key(acme.id, id).await.unwrap(),
        Some(sealed.key.clone())
    );
    assert_eq!(
        store.get_api_key(TenantId::generate(), id).await.unwrap(),
        None
    );

    let read = store.sealed_secret(acme.id, id).await.unwrap();
    assert_eq!(read.as_deref(), Some(&b"sealed secret"[..]));
    assert!(
        !store
            .erase_sealed_secret(acme.id, id, b"another", None)
            .await
            .unwrap()
    );
    assert!(
        store
            .erase_sealed_secret(acme.id, id, b"sealed secret", None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .erase_sealed_secret(acme.id, id, b"sealed secret", None)
            .await
            .unwrap(),
        "a second claim finds nothing"
    );
    assert_eq!(store.sealed_secret(acme.id, id).await.unwrap(), None);
    let listed = store.list_api_keys(acme.id, None, 10).await.unwrap();
    assert!(!listed[0].secret_claimable, "{listed:?}");

    let revoked = sealed_key(acme.id, b"never claimed");
    store.insert_api_key(&revoked, None).await.unwrap();
    let at = timestamp(std::time::SystemTime::now());
    let gone = store
        .revoke_api_key(acme.id, revoked.key.key_id, at, None)
        .await
        .unwrap();
    assert!(!gone.secret_claimable, "{gone:?}");
    assert_eq!(
        store
            .sealed_secret(acme.id, revoked.key.key_id)
            .await
            .unwrap(),
        None
    );
    let missing = store
        .sealed_secret(acme.id, KeyId::generate())
        .await
        .unwrap_err();
    assert!(
        matches!(missing, TenantError::ApiKeyNotFound(_)),
        "{missing:?}"
    );
}

async fn machines_respect_the_registry_rules(store: Arc<dyn TenantStore>) {
    let acme = tenant("acme", 2);
    let other = tenant("other", 2);
    store.insert_tenant(&acme, None).await.unwrap();
    store.insert_tenant(&other, None).await.unwrap();

    let press = machine(acme.id, "press-7");
    store.insert_machine(&press, None).await.unwrap();
    let duplicate = store.insert_machine(&press, None).await.unwrap_err();
    assert!(
        matches!(duplicate, TenantError::MachineExists(_)),
        "{duplicate:?}"
    );
    store
        .insert_machine(&machine(other.id, "press-7"), None)
        .await
        .unwrap();
    store
        .insert_machine(&machine(acme.id, "cnc-1"), None)
        .await
        .unwrap();
    let over = store
        .insert_machine(&machine(acme.id, "cnc-2"), None)
        .await
        .unwrap_err();
    assert!(matches!(over, TenantError::MachineLimit(2)), "{over:?}");

    let id: MachineId = "press-7".parse().unwrap();
    assert_eq!(
        store.get_machine(acme.id, &id).await.unwrap(),
        Some(press.clone())
    );
    let listed = store.list_machines(acme.id, None, 10).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|m| m.machine_id.as_str())
            .collect::<Vec<_>>(),
        ["cnc-1", "press-7"]
    );
    let cnc: MachineId = "cnc-1".parse().unwrap();
    assert_eq!(
        store
            .list_machines(acme.id, Some(&cnc), 10)
            .await
            .unwrap()
            .len(),
        1
    );

    let updated = store
        .update_machine(
            acme.id,
            &id,
            &|mut m: Machine| {
                m.display_name = "Press 7".to_owned();
                m.labels.clear();
                Ok(m)
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_machine(acme.id, &id).await.unwrap(),
        Some(updated)
    );
    let missing: MachineId = "nope".parse().unwrap();
    let err = store
        .update_machine(acme.id, &missing, &|m: Machine| Ok(m), None)
        .await
        .unwrap_err();
    assert!(matches!(err, TenantError::MachineNotFound(_)), "{err:?}");

    assert!(store.delete_machine(acme.id, &id, None).await.unwrap());
    assert!(!store.delete_machine(acme.id, &id, None).await.unwrap());
    assert!(
        store.get_machine(other.id, &id).await.unwrap().is_some(),
        "other tenant untouched"
    );

    delete(&*store, acme.id).await;
    let refused = store
        .insert_machine(&machine(acme.id, "late"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, TenantError::TenantDeleted(_)),
        "{refused:?}"
    );
    let refused = store
        .update_machine(acme.id, &cnc, &|m: Machine| Ok(m), None)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, TenantError::TenantDeleted(_)),
        "{refused:?}"
    );
}

async fn concurrent_registrations_never_exceed_the_limit(store: Arc<dyn TenantStore>) {
    let acme = tenant("acme", 3);
    store.insert_tenant(&acme, None).await.unwrap();
    let attempts = (0..12).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .insert_machine(&machine(acme.id, &format!("m{i}")), None)
                .await
        })
    });
    let results = futures::future::join_all(attempts).await;
    let ok = results.iter().filter(|r| matches!(r, Ok(Ok(())))).count();
    let limited = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(TenantError::MachineLimit(3)))))
        .count();
    assert_eq!((ok, limited), (3, 9), "{results:?}");
    assert_eq!(
        store.list_machines(acme.id, None, 100).await.unwrap().len(),
        3
    );
}

async fn times_keep_microseconds(store: Arc<dyn TenantStore>) {
    let mut acme = tenant("acme", 5);
    acme.create_time = timestamp(
        std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(1_764_000_000_123_456),
    );
    acme.update_time = Utc::now().with_timezone(&Utc);
    acme.update_time = timestamp(acme.update_time.into());
    store.insert_tenant(&acme, None).await.unwrap();
    assert_eq!(
        store
            .get_tenant(acme.id)
            .await
            .unwrap()
            .unwrap()
            .create_time,
        acme.create_time
    );
}

mfg_common::on_each_backend!(
    [
        postgres => open(&TestDatabase::postgres().await).await,
        sqlite => open(&TestDatabase::sqlite()).await,
    ],
    [
        tenants_round_trip,
        names_stay_reserved,
        lists_page_in_creation_order,
        updates_apply_atomically,
        api_keys_live_and_die_with_their_tenant,
        a_sealed_secret_is_erased_once,
        machines_respect_the_registry_rules,
        concurrent_registrations_never_exceed_the_limit,
        times_keep_microseconds,
    ],
);
