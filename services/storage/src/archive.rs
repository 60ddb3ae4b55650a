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

use std::sync::Arc;

use arrow_array::{Array, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use bytes::Bytes;
use chrono::NaiveDate;
use parquet::{
    arrow::{ArrowWriter, arrow_reader::ParquetRecordBatchReaderBuilder},
    basic::{Compression, ZstdLevel},
    file::{
        metadata::{RowGroupMetaData, SortingColumn},
        properties::WriterProperties,
        statistics::Statistics,
    },
};
use uuid::Uuid;

use crate::object_store::{ObjectError, ObjectKey};

/// The root of the telemetry archive, versioned so the layout can change without ambiguity.
pub const ROOT: &str = "telemetry/v1";

/// Rows per row group: large enough for good compression, small enough to read selectively.
const ROW_GROUP_ROWS: usize = 1 << 20;

/// One archived reading. The tenant and the day are the file's partition.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedReading {
    /// The machine.
    pub machine_id: String,
    /// The metric.
    pub metric: String,
    /// When it was measured, in microseconds since the Unix epoch (UTC).
    pub ts_micros: i64,
    /// The value.
    pub value: f64,
}

/// Why encoding or decoding failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Parquet or Arrow refused the data.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Arrow refused the data.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The file is not one of ours.
    #[error("unexpected archive file: {0}")]
    Unexpected(String),
}

/// The prefix of a tenant's archive: `telemetry/v1/tenant=<uuid>/`.
pub fn tenant_prefix(tenant: Uuid) -> String {
    format!("{ROOT}/tenant={}/", tenant.hyphenated())
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

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("machine_id", DataType::Utf8, false),
        Field::new("metric", DataType::Utf8, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("value", DataType::Float64, false),
    ]))
}

/// Writes one Parquet file from readings given in order (by machine, metric and time), a chunk
/// at a time, so a day of a tenant is never all in memory as rows. CPU work: call it from
/// `spawn_blocking`.
pub struct Encoder {
    writer: ArrowWriter<Vec<u8>>,
    schema: Arc<Schema>,
    rows: u64,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").field("rows", &self.rows).finish()
    }
}

impl Encoder {
    /// Starts a file.
    pub fn new() -> Result<Self, ArchiveError> {
        Self::with_row_groups_of(ROW_GROUP_ROWS)
    }

    /// Starts a file whose row groups hold at most `rows` rows.
    fn with_row_groups_of(rows: usize) -> Result<Self, ArchiveError> {
        let sorted_by = (0..3)
            .map(|column_idx| SortingColumn {
                column_idx,
                descending: false,
                nulls_first: false,
            })
            .collect();
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_max_row_group_row_count(Some(rows))
            .set_sorting_columns(Some(sorted_by))
            .build();
        let schema = schema();
        Ok(Self {
            writer: ArrowWriter::try_new(Vec::new(), schema.clone(), Some(properties))?,
            schema,
            rows: 0,
        })
    }

    /// Appends readings, which follow the ones before in machine, metric and time order.
    pub fn write(&mut self, readings: &[ArchivedReading]) -> Result<(), ArchiveError> {
        if readings.is_empty() {
            return Ok(());
        }
        let batch = RecordBatch::try_new(
            self.schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    readings.iter().map(|r| r.machine_id.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(
                    readings.iter().map(|r| r.metric.as_str()),
                )),
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(
                        readings.iter().map(|r| r.ts_micros),
                    )
                    .with_timezone("UTC"),
                ),
                Arc::new(Float64Array::from_iter_values(
                    readings.iter().map(|r| r.value),
                )),
            ],
        )?;
        self.writer.write(&batch)?;
        self.rows += readings.len() as u64;
        Ok(())
    }

    /// The readings written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Ends the file and returns it.
    pub fn finish(self) -> Result<Bytes, ArchiveError> {
        Ok(Bytes::from(self.writer.into_inner()?))
    }
}

/// Encodes readings as one Parquet file, sorted by machine, metric and time.
pub fn encode(mut readings: Vec<ArchivedReading>) -> Result<Bytes, ArchiveError> {
    readings.sort_by(|a, b| {
        (a.machine_id.as_str(), a.metric.as_str(), a.ts_micros).cmp(&(
            b.machine_id.as_str(),
            b.metric.as_str(),
            b.ts_micros,
        ))
    });
    let mut encoder = Encoder::new()?;
    for chunk in readings.chunks(ROW_GROUP_ROWS) {
        encoder.write(chunk)?;
    }
    encoder.finish()
}

/// Encodes on a blocking thread, off the async runtime.
pub async fn encode_blocking(readings: Vec<ArchivedReading>) -> Result<Bytes, ArchiveError> {
    tokio::task::spawn_blocking(move || encode(readings))
        .await
        .map_err(|e| ArchiveError::Unexpected(format!("encoding task failed: {e}")))?
}

/// Decodes a file written by [`encode`], to verify an upload or to answer a cold query.
pub fn decode(bytes: Bytes) -> Result<Vec<ArchivedReading>, ArchiveError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    let mut readings = Vec::new();
    for batch in reader {
        let batch = batch?;
        let column = |i: usize| batch.column(i).as_any();
        let (Some(machines), Some(metrics), Some(times), Some(values)) = (
            column(0).downcast_ref::<StringArray>(),
            column(1).downcast_ref::<StringArray>(),
            column(2).downcast_ref::<TimestampMicrosecondArray>(),
            column(3).downcast_ref::<Float64Array>(),
        ) else {
            return Err(ArchiveError::Unexpected(format!(
                "schema {}",
                batch.schema()
            )));
        };
        if machines.null_count() + metrics.null_count() + times.null_count() + values.null_count()
            > 0
        {
            return Err(ArchiveError::Unexpected("null values".to_owned()));
        }
        readings.extend((0..batch.num_rows()).map(|i| ArchivedReading {
            machine_id: machines.value(i).to_owned(),
            metric: metrics.value(i).to_owned(),
            ts_micros: times.value(i),
            value: values.value(i),
        }));
    }
    Ok(readings)
}

/// The readings of one series in `[start, end)` µs, oldest first, from a file written by
/// [`encode`], to answer a cold query. Only the row groups whose statistics may hold the series
/// in that range are decoded (a tenant's day holds many series; the file is sorted by series, so
/// a series spans one or two row groups), and rows are matched without copying their strings.
/// CPU work: call it from `spawn_blocking`.
pub fn series_points(
    bytes: Bytes,
    machine_id: &str,
    metric: &str,
    start: i64,
    end: i64,
) -> Result<Vec<(i64, f64)>, ArchiveError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    let groups: Vec<usize> = builder
        .metadata()
        .row_groups()
        .iter()
        .enumerate()
        .filter(|(_, group)| may_hold(group, machine_id, metric, start, end))
        .map(|(i, _)| i)
        .collect();
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let mut points = Vec::new();
    for batch in builder.with_row_groups(groups).build()? {
        let batch = batch?;
        let column = |i: usize| batch.column(i).as_any();
        let (Some(machines), Some(metrics), Some(times), Some(values)) = (
            column(0).downcast_ref::<StringArray>(),
            column(1).downcast_ref::<StringArray>(),
            column(2).downcast_ref::<TimestampMicrosecondArray>(),
            column(3).downcast_ref::<Float64Array>(),
        ) else {
            return Err(ArchiveError::Unexpected(format!(
                "schema {}",
                batch.schema()
            )));
        };
        points.extend((0..batch.num_rows()).filter_map(|i| {
            let ts = times.value(i);
            (ts >= start
                && ts < end
                && machines.value(i) == machine_id
                && metrics.value(i) == metric)
                .then(|| (ts, values.value(i)))
        }));
    }
    Ok(points)
}

/// Whether a row group's statistics allow it to hold readings of the series in `[start, end)`.
/// Statistics may be truncated (a lower bound at most the true minimum, an upper bound at least
/// the true maximum), so only exact bounds are trusted for equality, and a group without them
/// is read.
fn may_hold(
    group: &RowGroupMetaData,
    machine_id: &str,
    metric: &str,
    start: i64,
    end: i64,
) -> bool {
    let bounds = |column: usize| group.column(column).statistics();
    let brackets = |stats: Option<&Statistics>, key: &[u8]| {
        stats.is_none_or(|s| {
            s.min_bytes_opt().is_none_or(|min| min <= key)
                && s.max_bytes_opt().is_none_or(|max| key <= max)
        })
    };
    let machines = bounds(0);
    if !brackets(machines, machine_id.as_bytes()) {
        return false;
    }
    // The metric's bounds are over every series of the group; they bound this machine's
    // metrics only when the group holds this machine alone.
    let one_machine = machines.is_some_and(|s| {
        s.min_is_exact()
            && s.max_is_exact()
            && s.min_bytes_opt() == Some(machine_id.as_bytes())
            && s.max_bytes_opt() == Some(machine_id.as_bytes())
    });
    if one_machine && !brackets(bounds(1), metric.as_bytes()) {
        return false;
    }
    match bounds(2) {
        Some(Statistics::Int64(times)) => {
            times.min_opt().is_none_or(|&min| min < end)
                && times.max_opt().is_none_or(|&max| max >= start)
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    fn reading(machine: &str, metric: &str, ts_micros: i64, value: f64) -> ArchivedReading {
        ArchivedReading {
            machine_id: machine.to_owned(),
            metric: metric.to_owned(),
            ts_micros,
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
    fn a_series_is_read_from_the_row_groups_that_may_hold_it() {
        // Three machines × two metrics × 50 readings, in row groups of 40 rows.
        let mut readings = Vec::new();
        for machine in ["cnc-1", "press-7", "robot-2"] {
            for metric in ["power", "temp"] {
                readings.extend((0..50).map(|i| reading(machine, metric, i, i as f64)));
            }
        }
        let mut encoder = Encoder::with_row_groups_of(40).unwrap();
        encoder.write(&readings).unwrap();
        let bytes = encoder.finish().unwrap();

        let points = series_points(bytes.clone(), "press-7", "temp", 10, 45).unwrap();
        assert_eq!(points, (10..45).map(|i| (i, i as f64)).collect::<Vec<_>>());
        assert!(
            series_points(bytes.clone(), "press-8", "temp", 0, 50)
                .unwrap()
                .is_empty()
        );

        // press-7/temp is rows 150..200, in row groups 3 (120..160) and 4 (160..200). Group 2
        // (80..120) runs from cnc-1 to press-7, so its metric bounds do not bound press-7's and
        // it is read too; groups 0, 1 (cnc-1 only) and 5, 6, 7 (after press-7) are not.
        let file = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        let groups: Vec<usize> = file
            .metadata()
            .row_groups()
            .iter()
            .enumerate()
            .filter(|(_, g)| may_hold(g, "press-7", "temp", 0, 50))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(groups, [2, 3, 4]);
        // A time range outside the group's readings rules it out too.
        let group = &file.metadata().row_groups()[3];
        assert!(!may_hold(group, "press-7", "power", 50, 60));
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
