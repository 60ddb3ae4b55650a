//! Column arrays read straight from PostgreSQL's binary array format. The reads of a query
//! answer in one row of arrays (`array_agg` of each column), up to ~30,000 elements each.
//! sqlx decodes an array element by element through its generic `Decode`, and a
//! `timestamptz` through chrono's calendar arithmetic; that was a third of the storage
//! service's time in a 30-day query (`perf`). These read each element as the fixed-width
//! number it is on the wire.

use sqlx::{
    Row as _, ValueRef as _,
    postgres::{PgRow, PgValueFormat},
};

use crate::{
    error::{Result, StorageError},
    micros::Micros,
};

/// An element type of fixed width: its type's oid and how to read its 8 bytes.
pub(super) trait Element: Sized {
    /// The oid of the element's type (`pg_type.oid`).
    const OID: u32;
    /// The element from its big-endian bytes.
    fn from_be(bytes: [u8; 8]) -> Self;
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// `timestamptz`.
impl Element for Micros {
    const OID: u32 = 1184;
    fn from_be(bytes: [u8; 8]) -> Self {
        Self(i64::from_be_bytes(bytes) + PG_EPOCH_MICROS)
    }
}

impl Element for f64 {
    const OID: u32 = 701;
    fn from_be(bytes: [u8; 8]) -> Self {
        f64::from_be_bytes(bytes)
    }
}

impl Element for i64 {
    const OID: u32 = 20;
    fn from_be(bytes: [u8; 8]) -> Self {
        i64::from_be_bytes(bytes)
    }
}

/// Column `index` of `row`: a one-dimensional array without NULL elements, or NULL (what
/// `array_agg` of no rows answers) as an empty vector.
pub(super) fn column<T: Element>(row: &PgRow, index: usize) -> Result<Vec<T>> {
    let value = row.try_get_raw(index)?;
    if value.is_null() {
        return Ok(Vec::new());
    }
    if value.format() != PgValueFormat::Binary {
        return Err(StorageError::Internal(format!(
            "array column {index} in the text format"
        )));
    }
    let bytes = value
        .as_bytes()
        .map_err(|e| StorageError::Internal(format!("array column {index}: {e}")))?;
    decode(bytes).map_err(|e| StorageError::Internal(format!("array column {index}: {e}")))
}

/// The elements of an array in the binary format: a header (dimensions, a flag for NULL
/// elements, the element type), each dimension's length and lower bound, then each element
/// as its length and its bytes.
fn decode<T: Element>(bytes: &[u8]) -> std::result::Result<Vec<T>, String> {
    let mut reader = Reader(bytes);
    let dimensions = reader.u32()?;
    let _has_nulls = reader.u32()?;
    let oid = reader.u32()?;
    if oid != T::OID {
        return Err(format!("elements of type {oid}, expected {}", T::OID));
    }
    match dimensions {
        0 => return Ok(Vec::new()),
        1 => {}
        n => return Err(format!("{n} dimensions, expected 1")),
    }
    let length = reader.u32()? as usize;
    let _lower_bound = reader.u32()?;
    let mut elements = Vec::with_capacity(length);
    for _ in 0..length {
        match reader.u32()? {
            8 => elements.push(T::from_be(reader.take()?)),
            u32::MAX => return Err("a NULL element".to_owned()),
            n => return Err(format!("an element of {n} bytes, expected 8")),
        }
    }
    Ok(elements)
}

/// Reads big-endian fields off the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or_else(|| "the array ends early".to_owned())?;
        self.0 = rest;
        Ok(*head)
    }

    fn u32(&mut self) -> std::result::Result<u32, String> {
        self.take().map(u32::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array(oid: u32, elements: &[[u8; 8]]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for field in [1, 0, oid, elements.len() as u32, 1] {
            bytes.extend(field.to_be_bytes());
        }
        for element in elements {
            bytes.extend(8u32.to_be_bytes());
            bytes.extend(element);
        }
        bytes
    }

    #[test]
    fn reads_each_element_type() {
        let floats = array(701, &[1.5f64.to_be_bytes(), (-2.0f64).to_be_bytes()]);
        assert_eq!(decode::<f64>(&floats), Ok(vec![1.5, -2.0]));
        let times = array(1184, &[0i64.to_be_bytes(), 1i64.to_be_bytes()]);
        assert_eq!(
            decode::<Micros>(&times),
            Ok(vec![Micros(PG_EPOCH_MICROS), Micros(PG_EPOCH_MICROS + 1)])
        );
        assert_eq!(
            decode::<i64>(&array(20, &[7i64.to_be_bytes()])),
            Ok(vec![7])
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let floats = array(701, &[1.5f64.to_be_bytes()]);
        assert!(decode::<i64>(&floats).unwrap_err().contains("type 701"));
        assert!(decode::<f64>(&floats[..floats.len() - 1]).is_err());
        let mut with_null = array(701, &[]);
        with_null[12..16].copy_from_slice(&1u32.to_be_bytes());
        with_null.extend(u32::MAX.to_be_bytes());
        assert!(decode::<f64>(&with_null).unwrap_err().contains("NULL"));
        assert_eq!(
            decode::<f64>(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 189]),
            Ok(vec![])
        );
    }
}
