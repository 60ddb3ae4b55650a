//! New readings into `readings` by a binary `COPY`: the way PostgreSQL loads rows fastest
//! (no statement to plan, no arrays to unnest, rows routed to their leaves in batches). With
//! `TCP_NODELAY` on the socket (sqlx ≥ 0.9.1), a small group is not held back by Nagle's
//! algorithm between its data and its end.

use sqlx::PgConnection;

use super::hot::Class;
use crate::telemetry::store::Row;

/// Loads rows with their classes; fails, like an `INSERT`, on a row whose key exists.
pub(super) async fn copy_rows(
    tx: &mut PgConnection,
    rows: &[&Row],
    classes: &[Class],
) -> Result<(), sqlx::Error> {
    let data = encode(rows, classes);
    let mut copy = tx
        .copy_in_raw("COPY readings (series_id, ts, value, class) FROM STDIN (FORMAT binary)")
        .await?;
    for chunk in data.chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    copy.finish().await?;
    Ok(())
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Rows in PostgreSQL's binary COPY format: the header, then per row four fields (int8
/// series, timestamptz as µs since 2000, float8 value, int4 class), then the trailer.
fn encode(rows: &[&Row], classes: &[Class]) -> Vec<u8> {
    let mut data = Vec::with_capacity(rows.len() * 46 + 21);
    data.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    data.extend_from_slice(&0_i32.to_be_bytes());
    data.extend_from_slice(&0_i32.to_be_bytes());
    for (row, class) in rows.iter().zip(classes) {
        data.extend_from_slice(&4_i16.to_be_bytes());
        for field in [
            row.series_id.0.to_be_bytes(),
            (row.ts.0 - PG_EPOCH_MICROS).to_be_bytes(),
            row.value.to_be_bytes(),
        ] {
            data.extend_from_slice(&8_i32.to_be_bytes());
            data.extend_from_slice(&field);
        }
        data.extend_from_slice(&4_i32.to_be_bytes());
        data.extend_from_slice(&class.to_be_bytes());
    }
    data.extend_from_slice(&(-1_i16).to_be_bytes());
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_four_sized_fields() {
        let row = Row {
            series_id: crate::telemetry::store::SeriesId(1),
            ts: crate::micros::Micros(PG_EPOCH_MICROS + 2),
            value: 0.5,
        };
        let data = encode(&[&row], &[30]);
        assert_eq!(data.len(), 19 + 2 + 3 * 12 + 8 + 2);
        assert_eq!(&data[19..21], &4_i16.to_be_bytes());
        assert_eq!(&data[25..33], &1_i64.to_be_bytes());
        assert_eq!(&data[37..45], &2_i64.to_be_bytes());
        assert_eq!(&data[49..57], &0.5_f64.to_be_bytes());
        assert_eq!(&data[61..65], &30_i32.to_be_bytes());
        assert_eq!(&data[65..], &(-1_i16).to_be_bytes());
    }
}
