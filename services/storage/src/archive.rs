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
    file::{metadata::SortingColumn, properties::WriterProperties},
};
use uuid::Uuid;

use crate::object_store::{ObjectError, ObjectKey};

mod read;

pub use read::read_series;

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
    pub(crate) fn with_row_groups_of(rows: usize) -> Result<Self, ArchiveError> {
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

/// The columns of a batch of a file written by [`encode`].
type Columns<'a> = (
    &'a StringArray,
    &'a StringArray,
    &'a TimestampMicrosecondArray,
    &'a Float64Array,
);

/// A batch's columns, typed; an error for a file that is not one of ours.
fn columns(batch: &RecordBatch) -> Result<Columns<'_>, ArchiveError> {
    let column = |i: usize| batch.column(i).as_any();
    match (
        column(0).downcast_ref::<StringArray>(),
        column(1).downcast_ref::<StringArray>(),
        column(2).downcast_ref::<TimestampMicrosecondArray>(),
        column(3).downcast_ref::<Float64Array>(),
    ) {
        (Some(machines), Some(metrics), Some(times), Some(values)) => {
            Ok((machines, metrics, times, values))
        }
        _ => Err(ArchiveError::Unexpected(format!(
            "schema {}",
            batch.schema()
        ))),
    }
}

/// Decodes a whole file written by [`encode`]: how tests and tools read the archive back. A
/// query reads one series with [`read_series`] instead.
pub fn decode(bytes: Bytes) -> Result<Vec<ArchivedReading>, ArchiveError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    let mut readings = Vec::new();
    for batch in reader {
        let batch = batch?;
        let (machines, metrics, times, values) = columns(&batch)?;
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

#[cfg(test)]
mod tests {
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    pub(super) fn reading(
        machine: &str,
        metric: &str,
        ts_micros: i64,
        value: f64,
    ) -> ArchivedReading {
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
