//! Tenant revisions, on both backends: each change to a tenant or to its machines that took
//! place gives the tenant the next revision, nothing else does, and a lister that asks for the
//! changes after the newest revision it holds never misses one, also while changes race.

mod store_support;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use mfg_common::testing::TestDatabase;
use mfg_tenant::{
    domain::{Machine, MachineId, Tenant, TenantId, timestamp},
    error::TenantError,
    store::TenantStore,
};
use store_support::{open, tenant};

fn machine(tenant: TenantId, id: &str) -> Machine {
    let now = timestamp(std::time::SystemTime::now());
    Machine {
        machine_id: id.parse().unwrap(),
        tenant_id: tenant,
        display_name: id.to_owned(),
        labels: BTreeMap::new(),
        create_time: now,
        update_time: now,
    }
}

async fn revision(store: &dyn TenantStore, id: TenantId) -> i64 {
    store.get_tenant(id).await.unwrap().unwrap().revision
}

/// Asserts that a tenant's revision grew past `last`, and keeps it there.
async fn grew(store: &dyn TenantStore, id: TenantId, last: &mut i64, what: &str) {
    let now = revision(store, id).await;
    assert!(now > *last, "{what}: {now} after {last}");
    *last = now;
}

/// The ids of the tenants changed after `after`, by revision.
async fn changed(store: &dyn TenantStore, after: i64, limit: i64) -> Vec<TenantId> {
    let changes = store.list_tenant_changes(after, limit).await.unwrap();
    changes.iter().map(|t| t.id).collect()
}

async fn each_change_gives_the_next_revision(store: Arc<dyn TenantStore>) {
    let acme = tenant("acme", 5);
    let other = tenant("other", 5);
    let created = store.insert_tenant(&acme, None).await.unwrap();
    assert_eq!(revision(&*store, acme.id).await, created);
    let other_created = store.insert_tenant(&other, None).await.unwrap();
    assert!(other_created > created);
    let mut last = other_created;

    let press = machine(acme.id, "press-1");
    store.insert_machine(&press, None).await.unwrap();
    grew(&*store, acme.id, &mut last, "registered").await;
    store.insert_machine(&press, None).await.unwrap_err();
    assert_eq!(
        revision(&*store, acme.id).await,
        last,
        "a refused registration"
    );

    let id: MachineId = "press-1".parse().unwrap();
    let relabel = |mut m: Machine| {
        m.labels.insert("line".to_owned(), "b".to_owned());
        Ok(m)
    };
    store
        .update_machine(acme.id, &id, &relabel, None)
        .await
        .unwrap();
    grew(&*store, acme.id, &mut last, "machine changed").await;
    let missing: MachineId = "nope".parse().unwrap();
    store
        .update_machine(acme.id, &missing, &relabel, None)
        .await
        .unwrap_err();
    assert_eq!(
        revision(&*store, acme.id).await,
        last,
        "a change of no machine"
    );

    let rename = |mut t: Tenant| {
        t.display_name = "Acme".to_owned();
        Ok(t)
    };
    let renamed = store.update_tenant(acme.id, &rename, None).await.unwrap();
    grew(&*store, acme.id, &mut last, "renamed").await;
    assert_eq!(renamed.revision, revision(&*store, acme.id).await);

    assert!(store.delete_machine(acme.id, &id, None).await.unwrap());
    grew(&*store, acme.id, &mut last, "removed").await;
    assert!(!store.delete_machine(acme.id, &id, None).await.unwrap());
    assert_eq!(
        revision(&*store, acme.id).await,
        last,
        "a removal of no machine"
    );
    assert_eq!(
        revision(&*store, other.id).await,
        other_created,
        "untouched"
    );

    // Listed by revision, deleted tenants too.
    assert_eq!(changed(&*store, 0, 1_000).await, [other.id, acme.id]);
    assert_eq!(changed(&*store, 0, 1).await, [other.id]);
    assert_eq!(changed(&*store, other_created, 1_000).await, [acme.id]);
    assert_eq!(changed(&*store, last, 1_000).await, []);
    let deleted = |mut t: Tenant| {
        t.state = mfg_tenant::domain::TenantState::Deleted;
        Ok(t)
    };
    store.update_tenant(other.id, &deleted, None).await.unwrap();
    assert_eq!(changed(&*store, last, 1_000).await, [other.id]);
}

/// Changes to four tenants and their machines race, registrations and removals of the same
/// machines among them, while a lister follows the changes: no change fails (no deadlock
/// between a machine's row, its tenant's and the counter's), and the lister ends holding each
/// tenant's last revision, which it would miss if a revision committed after a greater one.
async fn a_lister_misses_no_racing_change(store: Arc<dyn TenantStore>) {
    let mut ids = Vec::new();
    for name in ["acme", "bolt", "coil", "dyne"] {
        let tenant = tenant(name, 100);
        store.insert_tenant(&tenant, None).await.unwrap();
        ids.push(tenant.id);
    }
    let done = Arc::new(AtomicBool::new(false));
    let lister = tokio::spawn({
        let (store, done) = (store.clone(), done.clone());
        async move {
            let mut held: HashMap<TenantId, i64> = HashMap::new();
            let mut after = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                for tenant in store.list_tenant_changes(after, 1_000).await.unwrap() {
                    after = after.max(tenant.revision);
                    held.insert(tenant.id, tenant.revision);
                }
                if finished {
                    return held;
                }
                tokio::task::yield_now().await;
            }
        }
    });
    let changes = (0..48).map(|i| {
        let store = store.clone();
        let tenant = ids[i % 4];
        let name = format!("m-{}", (i / 4) % 3);
        tokio::spawn(async move {
            match i % 3 {
                0 => match store.insert_machine(&machine(tenant, &name), None).await {
                    Ok(()) | Err(TenantError::MachineExists(_)) => {}
                    Err(error) => panic!("{error:?}"),
                },
                1 => {
                    let id: MachineId = name.parse().unwrap();
                    store.delete_machine(tenant, &id, None).await.unwrap();
                }
                _ => {
                    store
                        .update_tenant(tenant, &|t: Tenant| Ok(t), None)
                        .await
                        .unwrap();
                }
            }
        })
    });
    for change in futures::future::join_all(changes).await {
        change.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let held = lister.await.unwrap();
    for id in ids {
        assert_eq!(held[&id], revision(&*store, id).await, "{id:?}");
    }
}

mfg_common::on_each_backend!(
    [
        postgres => open(&TestDatabase::postgres().await).await,
        sqlite => open(&TestDatabase::sqlite()).await,
    ],
    [each_change_gives_the_next_revision, a_lister_misses_no_racing_change],
);
