//! Writing an archive file: readings arrive in order, are gathered a row group at a time as
//! columns, and each full group is encoded and appended to the file in memory.

use std::sync::Arc;

use bytes::Bytes;
use parquet::{
    data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type},
    file::writer::{SerializedColumnWriter, SerializedFileWriter},
};

use crate::telemetry::archive::{
    ArchiveError, ArchivedReading, ROW_GROUP_ROWS, properties, schema,
};

/// Writes one Parquet file from readings given in order (by machine, metric and time), a chunk
/// at a time, so a day of a tenant is never all in memory as rows. CPU work: call it from
/// `spawn_blocking`.
pub struct Encoder {
    writer: SerializedFileWriter<Vec<u8>>,
    group: RowGroup,
    group_rows: usize,
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
        let writer =
            SerializedFileWriter::new(Vec::new(), Arc::new(schema()?), Arc::new(properties()?))?;
        Ok(Self {
            writer,
            group: RowGroup::default(),
            group_rows: rows.max(1),
            rows: 0,
        })
    }

    /// Appends readings, which follow the ones before in machine, metric and time order.
    pub fn write(&mut self, readings: &[ArchivedReading]) -> Result<(), ArchiveError> {
        for reading in readings {
            self.group.push(reading);
            if self.group.len() == self.group_rows {
                self.flush()?;
            }
        }
        self.rows += readings.len() as u64;
        Ok(())
    }

    /// The readings written so far.
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
        if self.group.len() == 0 {
            return Ok(());
        }
        let group = std::mem::take(&mut self.group);
        let mut writer = self.writer.next_row_group()?;
        let mut column = 0;
        while let Some(mut chunk) = writer.next_column()? {
            group.write_column(column, &mut chunk)?;
            chunk.close()?;
            column += 1;
        }
        writer.close()?;
        Ok(())
    }
}

/// One row group's columns. Runs of the same machine or metric share one buffer, so a group's
/// strings cost a pointer each, not a copy.
#[derive(Default)]
struct RowGroup {
    machines: Vec<ByteArray>,
    metrics: Vec<ByteArray>,
    times: Vec<i64>,
    values: Vec<f64>,
}

impl RowGroup {
    fn len(&self) -> usize {
        self.times.len()
    }

    fn push(&mut self, reading: &ArchivedReading) {
        push_shared(&mut self.machines, &reading.machine_id);
        push_shared(&mut self.metrics, &reading.metric);
        self.times.push(reading.ts.0);
        self.values.push(reading.value);
    }

    /// Writes column `index` (in the schema's order) to `chunk`.
    fn write_column(
        &self,
        index: usize,
        chunk: &mut SerializedColumnWriter<'_>,
    ) -> Result<(), ArchiveError> {
        match index {
            0 => chunk
                .typed::<ByteArrayType>()
                .write_batch(&self.machines, None, None)?,
            1 => chunk
                .typed::<ByteArrayType>()
                .write_batch(&self.metrics, None, None)?,
            2 => chunk
                .typed::<Int64Type>()
                .write_batch(&self.times, None, None)?,
            3 => chunk
                .typed::<DoubleType>()
                .write_batch(&self.values, None, None)?,
            _ => return Err(ArchiveError::Unexpected(format!("column {index}"))),
        };
        Ok(())
    }
}

/// Appends `text`, sharing the previous element's buffer when it is the same string.
fn push_shared(column: &mut Vec<ByteArray>, text: &str) {
    let value = match column.last() {
        Some(last) if last.data() == text.as_bytes() => last.clone(),
        _ => ByteArray::from(text.as_bytes().to_vec()),
    };
    column.push(value);
}

/// Encodes readings as one Parquet file, sorted by machine, metric and time.
pub fn encode(mut readings: Vec<ArchivedReading>) -> Result<Bytes, ArchiveError> {
    readings.sort_by(|a, b| {
        (a.machine_id.as_str(), a.metric.as_str(), a.ts).cmp(&(
            b.machine_id.as_str(),
            b.metric.as_str(),
            b.ts,
        ))
    });
    let mut encoder = Encoder::new()?;
    encoder.write(&readings)?;
    encoder.finish()
}

/// Encodes on a blocking thread, off the async runtime.
pub async fn encode_blocking(readings: Vec<ArchivedReading>) -> Result<Bytes, ArchiveError> {
    tokio::task::spawn_blocking(move || encode(readings))
        .await
        .map_err(|e| ArchiveError::Unexpected(format!("encoding task failed: {e}")))?
}
