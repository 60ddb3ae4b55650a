//! The tiering jobs end to end, on both database backends and both object stores (a local
//! directory, and the S3-compatible server `scripts/test.sh` starts): rollups that late readings
//! re-roll, days archived to Parquet and dropped from the hot tier only once stored, queries
//! that give the same answer whichever tiers serve them, and retention. Archiving's failures
//! and late data: `tiering_archive.rs`.

mod support;

use mfg_proto::common::v1::{Reading, Tier};
use mfg_storage::telemetry::archive;
use support::{
    Backend, now_micros, reading,
    tiering::{
        Cold, DAY, HOUR, MINUTE, SECOND, day_start, expected, ingest, latest, query, start, tiering,
    },
};

async fn the_tiers_hold_the_data_and_answer_alike(backend: Backend, cold: Cold) {
    let (platform, objects, _) = start(backend, cold, true).await;
    let today = day_start(now_micros());
    let d0 = today - 3 * DAY;
    let d1 = today - 2 * DAY;

    // Two days of press-1 readings every 20 s, integer values so sums are exact in any order,
    // and some press-2 readings the queries must leave out.
    let mut sent: Vec<(i64, f64)> = (0..2 * DAY / (20 * SECOND))
        .map(|i| (d0 + i * 20 * SECOND, (i % 97) as f64))
        .collect();
    let mut readings: Vec<Reading> = sent
        .iter()
        .map(|&(t, v)| reading("press-1", "temp", t, v))
        .collect();
    readings.extend((0..100).map(|i| reading("press-2", "temp", d0 + i * SECOND, 1e6)));
    ingest(&platform, &readings).await;

    // Hour buckets from a start that is not on a minute; 45 s buckets across the two days;
    // raw points across them.
    let queries = [
        (d0 + 30 * MINUTE + 10 * SECOND, d1 + DAY, 3_600),
        (d1 - 2 * HOUR, d1 + 2 * HOUR, 45),
        (d1 - 10 * MINUTE, d1 + 10 * MINUTE, 0),
    ];
    for (start, end, step) in queries {
        let (answer, tiers) = query(&platform, start, end, step).await;
        assert_eq!(answer, expected(&sent, start, end, step), "step {step}");
        assert_eq!(tiers, [Tier::Hot]);
    }

    // Rollup: the range comes from the warm tier now (its first hour's whole quarters and
    // minutes too), all but the first 50 s, with the same answer.
    let report = tiering(&platform, now_micros()).await.unwrap();
    assert!(report.rollup_buckets_written > 0, "{report:?}");
    assert_eq!(
        report.objects_written, 0,
        "nothing is past hot retention yet"
    );
    let (start, end, step) = queries[0];
    let (answer, tiers) = query(&platform, start, end, step).await;
    assert_eq!(answer, expected(&sent, start, end, step));
    assert_eq!(tiers, [Tier::Hot, Tier::Warm]);

    // Steps of several minutes or hours merge rollups in the database; steps over a minute
    // that are not whole minutes (5,183 s: a range / 500) merge the minutes no bucket boundary
    // splits and read the split ones raw: the same answers.
    for step in [5_220, 7_200, 5_183, 90] {
        let (start, end) = (d0 + 7 * MINUTE, d1 + DAY);
        let (answer, tiers) = query(&platform, start, end, step).await;
        assert_eq!(answer, expected(&sent, start, end, step), "step {step}");
        assert!(tiers.contains(&Tier::Warm), "step {step}: {tiers:?}");
    }

    // A late reading into a rolled-up hour re-rolls that bucket.
    let late = (d0 + 2 * HOUR + 5 * SECOND, 1_000.0);
    ingest(&platform, &[reading("press-1", "temp", late.0, late.1)]).await;
    sent.push(late);
    let (answer, _) = query(&platform, start, end, step).await;
    assert_eq!(
        answer,
        expected(&sent, start, end, step),
        "after a late reading"
    );

    // Archive: d0 leaves the hot tier for one Parquet object once 30 days have passed.
    let as_of = d1 + 30 * DAY + MINUTE;
    let report = tiering(&platform, as_of).await.unwrap();
    assert_eq!(report.objects_written, 1, "{report:?}");
    assert_eq!(
        report.readings_archived,
        sent.iter().filter(|(t, _)| *t < d1).count() as u64 + 100
    );
    assert!(report.hot_partitions_dropped >= 1);
    let tenant: uuid::Uuid = platform.tenant_id.parse().unwrap();
    let stored = objects.list(&archive::tenant_prefix(tenant)).await.unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    let day0 = chrono::DateTime::from_timestamp_micros(d0)
        .unwrap()
        .format("%Y-%m-%d");
    assert!(
        stored[0]
            .key
            .as_str()
            .contains(&format!("/dt={day0}/part-")),
        "{}",
        stored[0].key
    );
    let archived = archive::decode(objects.get(&stored[0].key).await.unwrap()).unwrap();
    assert_eq!(archived.len() as u64, report.readings_archived);

    // press-2 has nothing left in the hot tier: its latest value comes from the warm tier.
    assert_eq!(
        latest(&platform, "press-2").await,
        [("temp".to_owned(), d0 + 99 * SECOND, 1e6)]
    );
    let (last_ts, last_value) = sent.iter().copied().max_by_key(|(t, _)| *t).unwrap();
    assert_eq!(
        latest(&platform, "press-1").await,
        [("temp".to_owned(), last_ts, last_value)]
    );

    // The same answers, now partly from the cold tier.
    let want_tiers = [
        vec![Tier::Warm, Tier::Cold],
        vec![Tier::Hot, Tier::Cold],
        vec![Tier::Hot, Tier::Cold],
    ];
    for ((start, end, step), want) in queries.into_iter().zip(want_tiers) {
        let (answer, tiers) = query(&platform, start, end, step).await;
        assert_eq!(
            answer,
            expected(&sent, start, end, step),
            "step {step} after archiving"
        );
        let mut want = want;
        want.sort_by_key(|t| *t as i32);
        assert!(
            want.iter().all(|t| tiers.contains(t)),
            "step {step}: {tiers:?}"
        );
    }

    // Split minutes on the archived day are read from its object: the same answers.
    for step in [5_183, 90] {
        let (start, end) = (d0 + 7 * MINUTE + 3 * SECOND, d1 + DAY);
        let (answer, tiers) = query(&platform, start, end, step).await;
        assert_eq!(
            answer,
            expected(&sent, start, end, step),
            "step {step} after archiving"
        );
        assert!(
            [Tier::Warm, Tier::Cold].iter().all(|t| tiers.contains(t)),
            "step {step}: {tiers:?}"
        );
    }

    // Running again archives nothing twice.
    let again = tiering(&platform, as_of).await.unwrap();
    assert_eq!((again.objects_written, again.readings_archived), (0, 0));
    assert_eq!(
        objects
            .list(&archive::tenant_prefix(tenant))
            .await
            .unwrap()
            .len(),
        1
    );

    // The tenant's prefix has its lifecycle rule.
    let rules = objects.lifecycle_rules().await.unwrap();
    assert!(
        rules
            .iter()
            .any(|r| r.prefix == archive::tenant_prefix(tenant) && r.expire_after_days == 2555 - 30),
        "{rules:?}"
    );

    // Past every retention: the rollups and the objects go.
    let report = tiering(&platform, today + 2556 * DAY).await.unwrap();
    assert!(report.warm_rows_expired > 0, "{report:?}");
    assert!(report.cold_objects_expired >= 1, "{report:?}");
    assert!(
        objects
            .list(&archive::tenant_prefix(tenant))
            .await
            .unwrap()
            .is_empty()
    );
    let (answer, _) = query(&platform, d0, d1 + DAY, 3_600).await;
    assert!(answer.is_empty(), "{answer:?}");
    platform.stop().await;
}

mod postgres {
    use super::*;

    #[tokio::test]
    async fn tiers_on_a_directory() {
        the_tiers_hold_the_data_and_answer_alike(Backend::Postgres, Cold::Directory).await;
    }

    #[tokio::test]
    async fn tiers_on_s3() {
        the_tiers_hold_the_data_and_answer_alike(Backend::Postgres, Cold::S3).await;
    }
}

mod sqlite {
    use super::*;

    #[tokio::test]
    async fn tiers_on_a_directory() {
        the_tiers_hold_the_data_and_answer_alike(Backend::Sqlite, Cold::Directory).await;
    }

    #[tokio::test]
    async fn tiers_on_s3() {
        the_tiers_hold_the_data_and_answer_alike(Backend::Sqlite, Cold::S3).await;
    }
}
