//! Reading one series back from an archived object, for a cold query: the footer first, then
//! only the row groups whose statistics may hold the series, each with a ranged GET, so a query
//! of one series fetches and decodes one to three row groups of a tenant's day, not the day.

use std::{ops::Range, sync::Arc};

use bytes::{Buf as _, Bytes};
use parquet::{
    column::reader::{ColumnReader, ColumnReaderImpl},
    data_type::{ByteArray, DataType},
    errors::ParquetError,
    file::{
        metadata::{ParquetMetaData, ParquetMetaDataReader, RowGroupMetaData},
        properties::ReaderProperties,
        reader::{ChunkReader, Length, RowGroupReader},
        serialized_reader::SerializedRowGroupReader,
        statistics::Statistics,
    },
};

use crate::telemetry::object_store::{ObjectKey, ObjectStore};
use crate::{
    micros::Micros,
    telemetry::archive::{ArchiveError, ArchivedReading},
};

/// How much of a file's end is fetched first: the footer of a day's file is a few KiB, so one
/// GET almost always holds it.
const FOOTER_GUESS: u64 = 64 * 1024;

/// The readings of one series in `[start, end)`, oldest first, from the object `key` of
/// `size` bytes, written by [`super::encode`]. Fetches the footer, then, with one ranged GET
/// each, the row groups whose statistics may hold the series in that range; decodes them off
/// the async runtime.
pub async fn read_series(
    objects: &dyn ObjectStore,
    key: &ObjectKey,
    size: u64,
    machine_id: &str,
    metric: &str,
    start: Micros,
    end: Micros,
) -> crate::error::Result<Vec<(Micros, f64)>> {
    let mut tail = objects
        .get_range(key, size - size.min(FOOTER_GUESS)..size)
        .await?;
    let needed = footer_len(&tail)? + 8;
    if needed > tail.len() as u64 {
        if needed > size {
            return Err(unexpected(format!("{key}: a footer of {needed} bytes in {size}")).into());
        }
        tail = objects.get_range(key, size - needed..size).await?;
    }
    let metadata =
        ParquetMetaDataReader::decode_metadata(&tail[tail.len() - needed as usize..tail.len() - 8])
            .map_err(ArchiveError::from)?;
    let groups = groups_for(&metadata, machine_id, metric, start, end);
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let mut chunks = Vec::new();
    for range in byte_ranges(&metadata, &groups) {
        let bytes = objects.get_range(key, range.clone()).await?;
        chunks.push((range.start, bytes));
    }
    let reader = Chunks { size, chunks };
    let (machine_id, metric) = (machine_id.to_owned(), metric.to_owned());
    let points = tokio::task::spawn_blocking(move || {
        points_of(reader, &metadata, &groups, &machine_id, &metric, start, end)
    })
    .await
    .map_err(|e| unexpected(format!("decoding task failed: {e}")))??;
    Ok(points)
}

/// The readings of one series in `[start, end)` µs from a whole file in memory, as
/// [`read_series`] reads them from the object store: the tests' reference.
#[cfg(test)]
fn series_points(
    bytes: Bytes,
    machine_id: &str,
    metric: &str,
    start: Micros,
    end: Micros,
) -> Result<Vec<(Micros, f64)>, ArchiveError> {
    let metadata = ParquetMetaDataReader::new().parse_and_finish(&bytes)?;
    let groups = groups_for(&metadata, machine_id, metric, start, end);
    points_of(bytes, &metadata, &groups, machine_id, metric, start, end)
}

/// Decodes a whole file written by [`super::encode`]: how tests and tools read the archive
/// back. A query reads one series with [`read_series`] instead.
pub fn decode(bytes: Bytes) -> Result<Vec<ArchivedReading>, ArchiveError> {
    let metadata = ParquetMetaDataReader::new().parse_and_finish(&bytes)?;
    let reader = Arc::new(bytes);
    let mut readings = Vec::new();
    for index in 0..metadata.num_row_groups() {
        let group = Group::read(&reader, &metadata, index)?;
        for i in 0..group.len() {
            readings.push(ArchivedReading {
                machine_id: text(&group.machines[i])?,
                metric: text(&group.metrics[i])?,
                ts: Micros(group.times[i]),
                value: group.values[i],
            });
        }
    }
    Ok(readings)
}

/// Decodes `groups` and keeps the series' readings in `[start, end)`, matching rows without
/// copying their strings.
fn points_of<R: ChunkReader + 'static>(
    reader: R,
    metadata: &ParquetMetaData,
    groups: &[usize],
    machine_id: &str,
    metric: &str,
    start: Micros,
    end: Micros,
) -> Result<Vec<(Micros, f64)>, ArchiveError> {
    let reader = Arc::new(reader);
    let mut points = Vec::new();
    for &index in groups {
        let group = Group::read(&reader, metadata, index)?;
        points.extend((0..group.len()).filter_map(|i| {
            let ts = Micros(group.times[i]);
            (ts >= start
                && ts < end
                && group.machines[i].data() == machine_id.as_bytes()
                && group.metrics[i].data() == metric.as_bytes())
            .then(|| (ts, group.values[i]))
        }));
    }
    Ok(points)
}

/// One row group's columns, decoded.
struct Group {
    machines: Vec<ByteArray>,
    metrics: Vec<ByteArray>,
    times: Vec<i64>,
    values: Vec<f64>,
}

impl Group {
    /// Decodes row group `index`; an error for a file whose columns are not ours.
    fn read<R: ChunkReader + 'static>(
        reader: &Arc<R>,
        metadata: &ParquetMetaData,
        index: usize,
    ) -> Result<Self, ArchiveError> {
        let group = SerializedRowGroupReader::new(
            Arc::clone(reader),
            metadata.row_group(index),
            metadata.page_index_for_row_group(index),
            Arc::new(ReaderProperties::builder().build()),
        )?;
        if group.num_columns() != 4 {
            return Err(unexpected(format!("{} columns", group.num_columns())));
        }
        let rows = usize::try_from(group.metadata().num_rows())
            .map_err(|_| unexpected("a negative row count".to_owned()))?;
        let read = Self {
            machines: column(&group, 0, rows, as_bytes)?,
            metrics: column(&group, 1, rows, as_bytes)?,
            times: column(&group, 2, rows, as_int64)?,
            values: column(&group, 3, rows, as_double)?,
        };
        let complete = [read.machines.len(), read.metrics.len(), read.values.len()]
            .iter()
            .all(|&n| n == read.times.len());
        if !complete || read.times.len() != rows {
            return Err(unexpected(format!(
                "row group {index}: columns of different lengths"
            )));
        }
        Ok(read)
    }

    fn len(&self) -> usize {
        self.times.len()
    }
}

/// A string column's value; an error for bytes that are not UTF-8.
fn text(value: &ByteArray) -> Result<String, ArchiveError> {
    value
        .as_utf8()
        .map(str::to_owned)
        .map_err(|_| unexpected("a string that is not UTF-8".to_owned()))
}

/// Reads the `rows` values of column `index`, which `typed` checks is of the expected type.
fn column<T: DataType>(
    group: &dyn RowGroupReader,
    index: usize,
    rows: usize,
    typed: fn(ColumnReader) -> Option<ColumnReaderImpl<T>>,
) -> Result<Vec<T::T>, ArchiveError> {
    let descriptor = group.metadata().column(index).column_descr();
    if descriptor.max_def_level() != 0 || descriptor.max_rep_level() != 0 {
        return Err(unexpected(format!(
            "column {} is not required",
            descriptor.name()
        )));
    }
    let mut reader = typed(group.get_column_reader(index)?)
        .ok_or_else(|| unexpected(format!("column {} has another type", descriptor.name())))?;
    let mut values = Vec::with_capacity(rows);
    reader.read_records(rows, None, None, &mut values)?;
    Ok(values)
}

fn as_bytes(reader: ColumnReader) -> Option<ColumnReaderImpl<parquet::data_type::ByteArrayType>> {
    match reader {
        ColumnReader::ByteArrayColumnReader(reader) => Some(reader),
        _ => None,
    }
}

fn as_int64(reader: ColumnReader) -> Option<ColumnReaderImpl<parquet::data_type::Int64Type>> {
    match reader {
        ColumnReader::Int64ColumnReader(reader) => Some(reader),
        _ => None,
    }
}

fn as_double(reader: ColumnReader) -> Option<ColumnReaderImpl<parquet::data_type::DoubleType>> {
    match reader {
        ColumnReader::DoubleColumnReader(reader) => Some(reader),
        _ => None,
    }
}

/// The row groups whose statistics allow them to hold the series in `[start, end)`.
fn groups_for(
    metadata: &ParquetMetaData,
    machine_id: &str,
    metric: &str,
    start: Micros,
    end: Micros,
) -> Vec<usize> {
    metadata
        .row_groups()
        .iter()
        .enumerate()
        .filter(|(_, group)| may_hold(group, machine_id, metric, start, end))
        .map(|(i, _)| i)
        .collect()
}

/// The byte ranges of the column chunks of `groups`, adjacent groups merged.
fn byte_ranges(metadata: &ParquetMetaData, groups: &[usize]) -> Vec<Range<u64>> {
    let mut ranges: Vec<Range<u64>> = Vec::new();
    for &i in groups {
        let group = metadata.row_group(i);
        let (mut from, mut to) = (u64::MAX, 0);
        for column in group.columns() {
            let (start, length) = column.byte_range();
            from = from.min(start);
            to = to.max(start + length);
        }
        match ranges.last_mut() {
            Some(last) if last.end == from => last.end = to,
            _ => ranges.push(from..to),
        }
    }
    ranges
}

/// The length of the footer's metadata, from the file's last 8 bytes (length, `PAR1`).
fn footer_len(tail: &[u8]) -> Result<u64, ArchiveError> {
    match tail.len().checked_sub(8).map(|at| &tail[at..]) {
        Some([a, b, c, d, b'P', b'A', b'R', b'1']) => {
            Ok(u64::from(u32::from_le_bytes([*a, *b, *c, *d])))
        }
        _ => Err(unexpected("not a Parquet file".to_owned())),
    }
}

fn unexpected(why: String) -> ArchiveError {
    ArchiveError::Unexpected(why)
}

/// The parts of a file fetched for a read: each `(offset, bytes)`; the reader asks only for
/// bytes inside them (the column chunks of the row groups it was told to read).
struct Chunks {
    size: u64,
    chunks: Vec<(u64, Bytes)>,
}

impl Chunks {
    /// The fetched bytes from `start` to the end of the chunk holding them, if at least
    /// `length` of them were fetched.
    fn from(&self, start: u64, length: u64) -> Result<Bytes, ParquetError> {
        self.chunks
            .iter()
            .find(|(offset, bytes)| {
                *offset <= start && start + length <= offset + bytes.len() as u64
            })
            .map(|(offset, bytes)| bytes.slice((start - offset) as usize..))
            .ok_or_else(|| {
                ParquetError::General(format!("bytes {start}+{length} were not fetched"))
            })
    }
}

impl Length for Chunks {
    fn len(&self) -> u64 {
        self.size
    }
}

impl ChunkReader for Chunks {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> Result<Self::T, ParquetError> {
        Ok(self.from(start, 1)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes, ParquetError> {
        Ok(self.from(start, length as u64)?.slice(..length))
    }
}

/// Whether a row group's statistics allow it to hold readings of the series in `[start, end)`.
/// Statistics may be truncated (a lower bound at most the true minimum, an upper bound at least
/// the true maximum), so only exact bounds are trusted for equality, and a group without them
/// is read.
fn may_hold(
    group: &RowGroupMetaData,
    machine_id: &str,
    metric: &str,
    start: Micros,
    end: Micros,
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
            times.min_opt().is_none_or(|&min| min < end.0)
                && times.max_opt().is_none_or(|&max| max >= start.0)
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::archive::{Encoder, tests::reading};

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

        let points =
            series_points(bytes.clone(), "press-7", "temp", Micros(10), Micros(45)).unwrap();
        assert_eq!(
            points,
            (10..45).map(|i| (Micros(i), i as f64)).collect::<Vec<_>>()
        );
        assert!(
            series_points(bytes.clone(), "press-8", "temp", Micros(0), Micros(50))
                .unwrap()
                .is_empty()
        );

        // press-7/temp is rows 150..200, in row groups 3 (120..160) and 4 (160..200). Group 2
        // (80..120) runs from cnc-1 to press-7, so its metric bounds do not bound press-7's and
        // it is read too; groups 0, 1 (cnc-1 only) and 5, 6, 7 (after press-7) are not.
        let metadata = ParquetMetaDataReader::new()
            .parse_and_finish(&bytes)
            .unwrap();
        let groups: Vec<usize> = metadata
            .row_groups()
            .iter()
            .enumerate()
            .filter(|(_, g)| may_hold(g, "press-7", "temp", Micros(0), Micros(50)))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(groups, [2, 3, 4]);
        // A time range outside the group's readings rules it out too.
        let group = &metadata.row_groups()[3];
        assert!(!may_hold(group, "press-7", "power", Micros(50), Micros(60)));
    }

    #[test]
    fn files_of_another_schema_are_refused() {
        use parquet::{
            data_type::Int32Type, file::writer::SerializedFileWriter,
            schema::parser::parse_message_type,
        };
        let schema = "message other { REQUIRED INT32 a; REQUIRED INT32 b; REQUIRED INT32 c; REQUIRED INT32 d; }";
        let schema = Arc::new(parse_message_type(schema).unwrap());
        let mut writer = SerializedFileWriter::new(Vec::new(), schema, Default::default()).unwrap();
        let mut group = writer.next_row_group().unwrap();
        while let Some(mut column) = group.next_column().unwrap() {
            column
                .typed::<Int32Type>()
                .write_batch(&[1, 2], None, None)
                .unwrap();
            column.close().unwrap();
        }
        group.close().unwrap();
        let bytes = Bytes::from(writer.into_inner().unwrap());

        let error = decode(bytes).unwrap_err();
        assert!(
            error.to_string().contains("column a has another type"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_series_is_read_with_ranged_gets_of_its_row_groups() {
        let mut readings = Vec::new();
        for machine in ["cnc-1", "press-7", "robot-2"] {
            for metric in ["power", "temp"] {
                readings.extend((0..500).map(|i| reading(machine, metric, i, i as f64 / 2.0)));
            }
        }
        let mut encoder = Encoder::with_row_groups_of(400).unwrap();
        encoder.write(&readings).unwrap();
        let bytes = encoder.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let objects = crate::telemetry::object_store::LocalStore::new(dir.path()).unwrap();
        let key = ObjectKey::new("telemetry/v1/tenant=t/dt=2026-11-24/part-1.parquet").unwrap();
        objects.put(&key, bytes.clone()).await.unwrap();

        for (machine, metric, start, end) in [
            ("press-7", "temp", 100, 450),
            ("cnc-1", "power", 0, 500),
            ("robot-2", "temp", 499, 500),
            ("press-7", "rpm", 0, 500),
            ("press-8", "temp", 0, 500),
        ] {
            let (start, end) = (Micros(start), Micros(end));
            let read = read_series(
                &objects,
                &key,
                bytes.len() as u64,
                machine,
                metric,
                start,
                end,
            )
            .await
            .unwrap();
            let want: Vec<(Micros, f64)> = readings
                .iter()
                .filter(|r| {
                    r.machine_id == machine && r.metric == metric && r.ts >= start && r.ts < end
                })
                .map(|r| (r.ts, r.value))
                .collect();
            assert_eq!(read, want, "{machine}/{metric}");
            assert_eq!(
                series_points(bytes.clone(), machine, metric, start, end).unwrap(),
                want
            );
        }
        // press-7/temp is rows 1,500..2,000 of 3,000, in row groups 3 and 4 (of 400 rows);
        // group 2 runs from cnc-1 to press-7, so it may hold it too: three of eight are fetched.
        let metadata = ParquetMetaDataReader::new()
            .parse_and_finish(&bytes)
            .unwrap();
        let groups = groups_for(&metadata, "press-7", "temp", Micros(0), Micros(500));
        assert_eq!(groups, [2, 3, 4]);
        let fetched: u64 = byte_ranges(&metadata, &groups)
            .iter()
            .map(|r| r.end - r.start)
            .sum();
        assert!(
            fetched < bytes.len() as u64 / 3,
            "{fetched} of {}",
            bytes.len()
        );
    }
}
