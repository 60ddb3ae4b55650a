//! The export's rollup files: a tenant's warm tier, one Parquet file per resolution, beside its
//! readings, so that an offboarded tenant takes its summaries with it (decision 0014):
//!
//! ```text
//! telemetry/v1/tenant=<tenant uuid>/export/rollups_1m.parquet (and _15m, _1h)
//!     machine_id: string, metric: string, bucket: timestamp(µs, UTC), min: double,
//!     max: double, sum: double, count: int64, last_ts: timestamp(µs, UTC), last: double
//! ```
//!
//! Sorted by machine, metric and bucket. Encoding is CPU work: call [`RollupEncoder`] from
//! `spawn_blocking`.

use std::sync::Arc;

use bytes::Bytes;
use parquet::{
    data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type},
    file::writer::SerializedFileWriter,
    schema::parser::parse_message_type,
};
use uuid::Uuid;

use super::{ArchiveError, ROW_GROUP_ROWS, properties, tenant_prefix};
use crate::{
    micros::Micros,
    telemetry::{
        domain::Rollup,
        object_store::{ObjectError, ObjectKey},
        store::Resolution,
    },
};

const SCHEMA: &str = "
    message rollup {
        REQUIRED BYTE_ARRAY machine_id (STRING);
        REQUIRED BYTE_ARRAY metric (STRING);
        REQUIRED INT64 bucket (TIMESTAMP(MICROS, true));
        REQUIRED DOUBLE min;
        REQUIRED DOUBLE max;
        REQUIRED DOUBLE sum;
        REQUIRED INT64 count;
        REQUIRED INT64 last_ts (TIMESTAMP(MICROS, true));
        REQUIRED DOUBLE last;
    }
";

/// One bucket of one series, as exported.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedRollup {
    /// The machine.
    pub machine_id: String,
    /// The metric.
    pub metric: String,
    /// The bucket's start.
    pub bucket: Micros,
    /// Its readings' summary.
    pub rollup: Rollup,
}

/// The key of a tenant's exported rollups of `resolution`.
pub fn rollups_key(tenant: Uuid, resolution: Resolution) -> Result<ObjectKey, ObjectError> {
    ObjectKey::new(format!(
        "{}export/{}.parquet",
        tenant_prefix(tenant),
        resolution.table()
    ))
}

/// Writes one rollups file from buckets given in machine, metric and bucket order, a series at
/// a time, encoding each full row group as it goes, so a tenant's warm tier is never all in
/// memory as rows. CPU work: call it from `spawn_blocking`.
pub struct RollupEncoder {
    writer: SerializedFileWriter<Vec<u8>>,
    group: Vec<ExportedRollup>,
    rows: u64,
}

impl std::fmt::Debug for RollupEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RollupEncoder")
            .field("rows", &self.rows)
            .finish()
    }
}

impl RollupEncoder {
    /// Starts a file.
    pub fn new() -> Result<Self, ArchiveError> {
        let schema = Arc::new(parse_message_type(SCHEMA)?);
        Ok(Self {
            writer: SerializedFileWriter::new(Vec::new(), schema, Arc::new(properties()?))?,
            group: Vec::new(),
            rows: 0,
        })
    }

    /// Appends buckets, which follow the ones before in machine, metric and bucket order.
    pub fn write(&mut self, rows: Vec<ExportedRollup>) -> Result<(), ArchiveError> {
        self.rows += rows.len() as u64;
        for row in rows {
            self.group.push(row);
            if self.group.len() == ROW_GROUP_ROWS {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// The buckets written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Ends the file and returns it.
    pub fn finish(mut self) -> Result<Bytes, ArchiveError> {
        self.flush()?;
        Ok(Bytes::from(self.writer.into_inner()?))
    }

    /// Encodes the gathered rows as a row group, if there are any.
    fn flush(&mut self) -> Result<(), ArchiveError> {
        if self.group.is_empty() {
            return Ok(());
        }
        let group = std::mem::take(&mut self.group);
        let mut row_group = self.writer.next_row_group()?;
        let mut index = 0;
        while let Some(mut column) = row_group.next_column()? {
            write_column(&group, index, &mut column)?;
            column.close()?;
            index += 1;
        }
        row_group.close()?;
        Ok(())
    }
}

/// Writes column `index` (in the schema's order) of `rows`.
fn write_column(
    rows: &[ExportedRollup],
    index: usize,
    column: &mut parquet::file::writer::SerializedColumnWriter<'_>,
) -> Result<(), ArchiveError> {
    let text = |f: fn(&ExportedRollup) -> &str| -> Vec<ByteArray> {
        rows.iter()
            .map(|r| ByteArray::from(f(r).as_bytes().to_vec()))
            .collect()
    };
    let double =
        |f: fn(&Rollup) -> f64| -> Vec<f64> { rows.iter().map(|r| f(&r.rollup)).collect() };
    let int = |f: fn(&ExportedRollup) -> i64| -> Vec<i64> { rows.iter().map(f).collect() };
    match index {
        0 => column
            .typed::<ByteArrayType>()
            .write_batch(&text(|r| &r.machine_id), None, None)?,
        1 => column
            .typed::<ByteArrayType>()
            .write_batch(&text(|r| &r.metric), None, None)?,
        2 => column
            .typed::<Int64Type>()
            .write_batch(&int(|r| r.bucket.0), None, None)?,
        3 => column
            .typed::<DoubleType>()
            .write_batch(&double(|r| r.min), None, None)?,
        4 => column
            .typed::<DoubleType>()
            .write_batch(&double(|r| r.max), None, None)?,
        5 => column
            .typed::<DoubleType>()
            .write_batch(&double(|r| r.sum), None, None)?,
        6 => column.typed::<Int64Type>().write_batch(
            &int(|r| i64::try_from(r.rollup.count).unwrap_or(i64::MAX)),
            None,
            None,
        )?,
        7 => column
            .typed::<Int64Type>()
            .write_batch(&int(|r| r.rollup.last_ts.0), None, None)?,
        8 => column
            .typed::<DoubleType>()
            .write_batch(&double(|r| r.last), None, None)?,
        _ => return Err(ArchiveError::Unexpected(format!("column {index}"))),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use parquet::{
        file::reader::{FileReader, SerializedFileReader},
        record::Field,
    };

    use super::*;

    fn row(machine: &str, bucket: i64, value: f64) -> ExportedRollup {
        ExportedRollup {
            machine_id: machine.to_owned(),
            metric: "temp".to_owned(),
            bucket: Micros(bucket),
            rollup: Rollup::of(Micros(bucket + 1), value),
        }
    }

    #[test]
    fn rollups_are_written_with_every_column() {
        let mut encoder = RollupEncoder::new().unwrap();
        encoder
            .write(vec![row("press-1", 0, 3.0), row("press-1", 120, 1.5)])
            .unwrap();
        encoder.write(vec![row("press-2", 60, 2.0)]).unwrap();
        assert_eq!(encoder.rows(), 3);
        let file = SerializedFileReader::new(encoder.finish().unwrap()).unwrap();
        assert_eq!(file.metadata().file_metadata().num_rows(), 3);
        let first = file.get_row_iter(None).unwrap().next().unwrap().unwrap();
        let columns: Vec<(String, Field)> = first
            .get_column_iter()
            .map(|(name, field)| (name.clone(), field.clone()))
            .collect();
        let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "machine_id",
                "metric",
                "bucket",
                "min",
                "max",
                "sum",
                "count",
                "last_ts",
                "last"
            ]
        );
        assert_eq!(columns[0].1, Field::Str("press-1".to_owned()));
        assert_eq!(columns[6].1, Field::Long(1));
        assert_eq!(columns[8].1, Field::Double(3.0));
    }

    #[test]
    fn each_resolution_has_its_file_in_the_tenants_export() {
        let tenant = Uuid::parse_str("01a20c65-7cc4-737a-8cd8-9568c361dd9e").unwrap();
        let key = rollups_key(tenant, Resolution::Hour).unwrap();
        assert_eq!(
            key.as_str(),
            "telemetry/v1/tenant=01a20c65-7cc4-737a-8cd8-9568c361dd9e/export/rollups_1h.parquet"
        );
    }
}
