//! The cold tier's file format: Parquet, zstd-compressed, sorted by series and time, in
//! Hive-style partitions by tenant and day, so that DuckDB, Athena, Trino, Spark and pyarrow
//! read the archive directly:
//!
//! ```text
//! telemetry/v1/tenant=<tenant uuid>/dt=<YYYY-MM-DD>/part-<uuid v7>.parquet
//!     machine_id: string, metric: string, ts: timestamp(µs, UTC), value: double
//! ```
//!
//! The tenant and the day are in the path only (partition columns); keys are lowercase
//! `key=value` segments without `:`, and tenant ids are UUIDs, so no engine mistakes them for
//! numbers. Encoding is CPU work: call [`encode`] from `spawn_blocking` (or use
//! [`encode_blocking`]).

use chrono::NaiveDate;
use parquet::{
    basic::{Compression, ZstdLevel},
    file::{metadata::SortingColumn, properties::WriterProperties},
    schema::{parser::parse_message_type, types::Type},
};
use uuid::Uuid;

use crate::{
    micros::Micros,
    telemetry::object_store::{ObjectError, ObjectKey},
};

mod read;
mod rollups;
mod write;

pub use read::{decode, read_series};
pub use rollups::{ExportedRollup, RollupEncoder, rollups_key};
pub use write::{Encoder, encode, encode_blocking};

/// The root of the telemetry archive, versioned so the layout can change without ambiguity.
pub const ROOT: &str = "telemetry/v1";

/// Rows per row group: large enough for good compression, small enough to read selectively
/// and to hold one group's columns in memory while it is encoded (~20 MB).
const ROW_GROUP_ROWS: usize = 1 << 18;

/// The file's schema, in Parquet's own notation. Strings are UTF-8, times are UTC instants, so
/// every engine reads them as `string` and `timestamp(µs, UTC)` without further metadata.
const SCHEMA: &str = "
    message reading {
        REQUIRED BYTE_ARRAY machine_id (STRING);
        REQUIRED BYTE_ARRAY metric (STRING);
        REQUIRED INT64 ts (TIMESTAMP(MICROS, true));
        REQUIRED DOUBLE value;
    }
";

/// One archived reading. The tenant and the day are the file's partition.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedReading {
    /// The machine.
    pub machine_id: String,
    /// The metric.
    pub metric: String,
    /// When it was measured.
    pub ts: Micros,
    /// The value.
    pub value: f64,
}

/// Why encoding or decoding failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Parquet refused the data.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// The file is not one of ours.
    #[error("unexpected archive file: {0}")]
    Unexpected(String),
}

/// The prefix of a tenant's archive: `telemetry/v1/tenant=<uuid>/`.
pub fn tenant_prefix(tenant: Uuid) -> String {
    format!("{ROOT}/tenant={}/", tenant.hyphenated())
}

/// The key of a tenant's export manifest, beside its days: `<prefix>export-manifest.json`.
pub fn manifest_key(tenant: Uuid) -> Result<ObjectKey, ObjectError> {
    ObjectKey::new(format!("{}export-manifest.json", tenant_prefix(tenant)))
}

/// The key of a new part of a tenant's day.
pub fn part_key(tenant: Uuid, day: NaiveDate) -> Result<ObjectKey, ObjectError> {
    ObjectKey::new(format!(
        "{}dt={}/part-{}.parquet",
        tenant_prefix(tenant),
        day.format("%Y-%m-%d"),
        Uuid::now_v7().simple()
    ))
}

fn schema() -> Result<Type, ArchiveError> {
    Ok(parse_message_type(SCHEMA)?)
}

/// zstd, and the order of the rows (machine, metric, time) declared for readers.
fn properties() -> Result<WriterProperties, ArchiveError> {
    let sorted_by = (0..3)
        .map(|column_idx| SortingColumn {
            column_idx,
            descending: false,
            nulls_first: false,
        })
        .collect();
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_sorting_columns(Some(sorted_by))
        .build())
}

#[cfg(test)]
mod tests {
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    pub(super) fn reading(machine: &str, metric: &str, ts: i64, value: f64) -> ArchivedReading {
        ArchivedReading {
            machine_id: machine.to_owned(),
            metric: metric.to_owned(),
            ts: Micros(ts),
            value,
        }
    }

    #[test]
    fn files_round_trip_sorted_by_series_and_time() {
        let readings = vec![
            reading("press-7", "temp", 3, 20.5),
            reading("cnc-1", "rpm", 2, 1200.0),
            reading("press-7", "temp", 1, 20.0),
            reading("press-7", "power", 1, f64::MAX),
        ];
        let decoded = decode(encode(readings).unwrap()).unwrap();
        assert_eq!(
            decoded,
            [
                reading("cnc-1", "rpm", 2, 1200.0),
                reading("press-7", "power", 1, f64::MAX),
                reading("press-7", "temp", 1, 20.0),
                reading("press-7", "temp", 3, 20.5),
            ]
        );
    }

    #[test]
    fn files_are_zstd_compressed_and_declare_their_order() {
        let readings = (0..10_000)
            .map(|i| reading("press-7", "temp", i, (i % 100) as f64))
            .collect();
        let bytes = encode(readings).unwrap();
        let file = SerializedFileReader::new(bytes).unwrap();
        let group = file.metadata().row_group(0);
        assert!(matches!(
            group.column(0).compression(),
            Compression::ZSTD(_)
        ));
        assert_eq!(group.sorting_columns().map(Vec::len), Some(3));
        assert_eq!(file.metadata().file_metadata().num_rows(), 10_000);
    }

    #[test]
    fn keys_are_hive_partitions_by_tenant_and_day() {
        let tenant = Uuid::parse_str("01a20c65-7cc4-737a-8cd8-9568c361dd9e").unwrap();
        let key = part_key(tenant, NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()).unwrap();
        assert!(
            key.as_str().starts_with(
                "telemetry/v1/tenant=01a20c65-7cc4-737a-8cd8-9568c361dd9e/dt=2026-11-24/part-"
            ),
            "{key}"
        );
        assert!(key.as_str().ends_with(".parquet"));
    }
}
