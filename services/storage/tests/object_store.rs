//! The conformance suite of `ObjectStore`: the same assertions against an S3-compatible server
//! (moto, started by `scripts/test.sh`, at `MFG_TEST_S3_ENDPOINT`) and a local directory.

use std::sync::Arc;

use bytes::Bytes;
use mfg_storage::telemetry::object_store::{
    DEFAULT_ATTEMPT_TIMEOUT, LifecycleRule, LocalStore, ObjectError, ObjectKey, ObjectStore,
    S3Config, S3Store,
};

fn key(text: &str) -> ObjectKey {
    ObjectKey::new(text).unwrap()
}

async fn s3() -> Arc<dyn ObjectStore> {
    let endpoint = std::env::var("MFG_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "S3 tests need an S3-compatible server: run `scripts/test.sh`, which starts one, or set \
             MFG_TEST_S3_ENDPOINT"
        )
    });
    let config = S3Config {
        bucket: format!(
            "mfg-test-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ),
        endpoint: Some(endpoint),
        region: "us-east-1".to_owned(),
        path_style: true,
        credentials: Some(("test".to_owned(), "test".to_owned())),
        attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
    };
    let store = S3Store::connect(&config).await;
    store.ensure_bucket().await.expect("create the test bucket");
    Arc::new(store)
}

fn local(dir: &tempfile::TempDir) -> Arc<dyn ObjectStore> {
    Arc::new(LocalStore::new(dir.path().join("archive")).unwrap())
}

async fn objects_round_trip_and_are_replaced_whole(store: Arc<dyn ObjectStore>) {
    let part = key("telemetry/v1/tenant=a/dt=2026-11-24/part-0001.parquet");
    store
        .put(&part, Bytes::from_static(b"first version"))
        .await
        .unwrap();
    assert_eq!(
        store.get(&part).await.unwrap(),
        Bytes::from_static(b"first version")
    );
    assert_eq!(store.head(&part).await.unwrap().size, 13);
    store
        .put(&part, Bytes::from_static(b"second"))
        .await
        .unwrap();
    assert_eq!(
        store.get(&part).await.unwrap(),
        Bytes::from_static(b"second")
    );
    assert_eq!(store.head(&part).await.unwrap().size, 6);

    let big = Bytes::from(
        (0..6 * 1024 * 1024)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let big_key = key("telemetry/v1/tenant=a/dt=2026-11-25/part-0002.parquet");
    store.put(&big_key, big.clone()).await.unwrap();
    assert_eq!(store.get(&big_key).await.unwrap(), big);

    // Ranges: the start, the middle, the last byte, an empty one.
    let size = big.len() as u64;
    for range in [0..10, 1_000_000..1_065_536, size - 1..size, 7..7] {
        assert_eq!(
            store.get_range(&big_key, range.clone()).await.unwrap(),
            big.slice(range.start as usize..range.end as usize),
            "{range:?}"
        );
    }
}

async fn missing_objects_are_not_found(store: Arc<dyn ObjectStore>) {
    let missing = key("telemetry/v1/tenant=a/nope.parquet");
    assert!(matches!(
        store.get(&missing).await,
        Err(ObjectError::NotFound(_))
    ));
    assert!(matches!(
        store.head(&missing).await,
        Err(ObjectError::NotFound(_))
    ));
    assert!(matches!(
        store.get_range(&missing, 0..8).await,
        Err(ObjectError::NotFound(_))
    ));
    store
        .delete(&missing)
        .await
        .expect("deleting a missing object succeeds");
}

async fn lists_by_prefix_in_key_order(store: Arc<dyn ObjectStore>) {
    let keys = [
        "telemetry/v1/tenant=ab/dt=2026-11-24/part-1.parquet",
        "telemetry/v1/tenant=a/dt=2026-11-25/part-1.parquet",
        "telemetry/v1/tenant=a/dt=2026-11-24/part-2.parquet",
        "telemetry/v1/tenant=a/dt=2026-11-24/part-1.parquet",
        "manifests/tenant=a.json",
    ];
    for k in keys {
        store
            .put(&key(k), Bytes::from(k.as_bytes().to_vec()))
            .await
            .unwrap();
    }
    let listed: Vec<String> = store
        .list("telemetry/v1/tenant=a/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key.to_string())
        .collect();
    assert_eq!(
        listed,
        [
            "telemetry/v1/tenant=a/dt=2026-11-24/part-1.parquet",
            "telemetry/v1/tenant=a/dt=2026-11-24/part-2.parquet",
            "telemetry/v1/tenant=a/dt=2026-11-25/part-1.parquet",
        ],
        "another tenant whose id shares a prefix is not listed"
    );
    assert_eq!(store.list("").await.unwrap().len(), 5);
    assert!(
        store
            .list("telemetry/v1/tenant=zz/")
            .await
            .unwrap()
            .is_empty()
    );
    let sizes: Vec<u64> = store
        .list("manifests/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.size)
        .collect();
    assert_eq!(sizes, [23]);

    store.delete(&key(keys[1])).await.unwrap();
    assert_eq!(store.list("telemetry/v1/tenant=a/").await.unwrap().len(), 2);
    assert!(matches!(
        store.get(&key(keys[1])).await,
        Err(ObjectError::NotFound(_))
    ));
}

fn rule(tenant: &str, transition: Option<u32>, expire: u32) -> LifecycleRule {
    LifecycleRule {
        id: format!("tenant-{tenant}"),
        prefix: format!("telemetry/v1/tenant={tenant}/"),
        transition_after_days: transition,
        expire_after_days: expire,
    }
}

async fn lifecycle_rules_are_set_per_tenant(store: Arc<dyn ObjectStore>) {
    assert!(store.lifecycle_rules().await.unwrap().is_empty());
    let a = rule("a", Some(90), 2555);
    let b = rule("b", None, 365);
    store.put_lifecycle_rule(&a).await.unwrap();
    store.put_lifecycle_rule(&b).await.unwrap();
    assert_eq!(
        store.lifecycle_rules().await.unwrap(),
        [a.clone(), b.clone()]
    );

    let a_shorter = rule("a", Some(30), 400);
    store.put_lifecycle_rule(&a_shorter).await.unwrap();
    assert_eq!(
        store.lifecycle_rules().await.unwrap(),
        [a_shorter.clone(), b.clone()],
        "setting a tenant's rule replaces it and keeps the others"
    );

    store.delete_lifecycle_rule("tenant-b").await.unwrap();
    store
        .delete_lifecycle_rule("tenant-nobody")
        .await
        .expect("removing a missing rule succeeds");
    assert_eq!(store.lifecycle_rules().await.unwrap(), [a_shorter]);
    store.delete_lifecycle_rule("tenant-a").await.unwrap();
    assert!(store.lifecycle_rules().await.unwrap().is_empty());
    assert!(
        store.list("").await.unwrap().is_empty(),
        "rules are not objects"
    );

    for invalid in [
        rule("c", Some(10), 365),
        rule("c", Some(400), 365),
        rule("c", None, 0),
    ] {
        let error = store.put_lifecycle_rule(&invalid).await.unwrap_err();
        assert!(
            matches!(error, ObjectError::Permanent(_)),
            "{invalid:?}: {error:?}"
        );
    }
}

mfg_common::on_each_backend!(
    [
        s3 => s3().await,
        local => local(&tempfile::tempdir().unwrap()),
    ],
    [
        objects_round_trip_and_are_replaced_whole,
        missing_objects_are_not_found,
        lists_by_prefix_in_key_order,
        lifecycle_rules_are_set_per_tenant,
    ],
);

#[tokio::test]
async fn an_unreachable_store_is_retryable() {
    let store = S3Store::connect(&S3Config {
        bucket: "archive".to_owned(),
        // Nothing listens on port 1.
        endpoint: Some("http://127.0.0.1:1".to_owned()),
        region: "us-east-1".to_owned(),
        path_style: true,
        credentials: Some(("test".to_owned(), "test".to_owned())),
        attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
    })
    .await;
    let error = store
        .put(&key("a"), Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(matches!(error, ObjectError::Retryable(_)), "{error:?}");
}

#[tokio::test]
async fn a_local_store_leaves_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(&dir);
    store
        .put(&key("a/b.parquet"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    let leftovers = std::fs::read_dir(dir.path().join("archive/.tmp"))
        .unwrap()
        .count();
    assert_eq!(leftovers, 0);
    assert_eq!(
        store.list("").await.unwrap().len(),
        1,
        "the temporary directory is not an object"
    );
}

#[tokio::test]
async fn a_store_that_never_answers_times_out_as_retryable() {
    // It accepts connections and reads requests, and never writes a byte back.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            held.push(connection);
        }
    });
    let store = S3Store::connect(&S3Config {
        bucket: "archive".to_owned(),
        endpoint: Some(endpoint),
        region: "us-east-1".to_owned(),
        path_style: true,
        credentials: Some(("test".to_owned(), "test".to_owned())),
        attempt_timeout: std::time::Duration::from_millis(300),
    })
    .await;
    let object = key("a");
    let put = store.put(&object, Bytes::from_static(b"x"));
    let error = tokio::time::timeout(std::time::Duration::from_secs(30), put)
        .await
        .expect("the put gives up on its own, attempt by attempt")
        .unwrap_err();
    silent.abort();
    assert!(matches!(error, ObjectError::Retryable(_)), "{error:?}");
}
