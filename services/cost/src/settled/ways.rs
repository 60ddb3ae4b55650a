//! How a settled piece of a report is summed from buckets, which buckets that reads, and
//! which it will want next.

use std::{collections::HashMap, sync::Arc};

use uuid::Uuid;

use crate::{
    domain::meter::Meter,
    error::Result,
    store::{
        CostStore, Summed,
        buckets::{Grain, Piece, time},
    },
};

/// The buckets whose amounts, added to a kept sum (or to nothing) and taken away, make a
/// settled piece.
#[derive(Debug, Default)]
pub(super) struct Terms {
    pub(super) base: Option<Arc<Vec<Summed>>>,
    pub(super) added: Vec<(Grain, i64)>,
    pub(super) taken: Vec<(Grain, i64)>,
}

impl Terms {
    pub(super) fn buckets(&self) -> impl Iterator<Item = &(Grain, i64)> {
        self.added.iter().chain(&self.taken)
    }

    pub(super) fn len(&self) -> usize {
        usize::from(self.base.is_some()) + self.added.len() + self.taken.len()
    }
}

/// The ways to sum a settled piece: its own buckets; and, for a piece inside one settled day
/// (or month), that day's bucket less its hours (or days) outside the piece. A period whose
/// start slides an hour at a time reads one hour more each time this way, where its own
/// buckets would be a day's hours never read, once a day (and a month's days, once a month).
pub(super) fn ways(piece: &Piece, settled_before: i64) -> Vec<Terms> {
    let own = Terms {
        added: starts(piece.grain, piece.start, piece.end),
        ..Terms::default()
    };
    let Some(parent) = piece.grain.parent() else {
        return vec![own];
    };
    let first = parent.floor(time(piece.start));
    let (first, end) = (
        first.timestamp_micros(),
        parent.next(first).timestamp_micros(),
    );
    if piece.end > end || end > settled_before || (first, end) == (piece.start, piece.end) {
        return vec![own];
    }
    let mut taken = starts(piece.grain, first, piece.start);
    taken.extend(starts(piece.grain, piece.end, end));
    let less = Terms {
        added: vec![(parent, first)],
        taken,
        ..Terms::default()
    };
    vec![own, less]
}

/// The piece one bucket longer at its start, as kept: its sum less that bucket is this piece's,
/// the cheapest way to sum the next piece of a start that slides an hour (or a day).
pub(super) fn longer(piece: &Piece) -> Option<(Grain, i64, i64)> {
    let length = match piece.grain {
        Grain::Hour => 3_600_000_000,
        Grain::Day => 86_400_000_000,
        Grain::Month => return None,
    };
    Some((piece.grain, piece.start - length, piece.end))
}

/// The settled buckets a piece inside one day (or month) will want when the period's start
/// slides on by one of its buckets: its first bucket (the day less the hours before the next
/// start takes it away too), and the next day with its first hour (what the start an hour after
/// the next midnight takes). Read ahead, a start that slides an hour at a time reads none on its
/// path, across a midnight too.
pub(super) fn ahead(piece: &Piece, settled_before: i64) -> Vec<(Grain, i64)> {
    let Some(parent) = piece.grain.parent() else {
        return Vec::new();
    };
    let next = parent.next(parent.floor(time(piece.start)));
    if piece.end > next.timestamp_micros() {
        return Vec::new();
    }
    let mut ahead = vec![(piece.grain, piece.start)];
    if parent.next(next).timestamp_micros() <= settled_before {
        ahead.push((parent, next.timestamp_micros()));
        ahead.push((piece.grain, next.timestamp_micros()));
    }
    ahead
}

/// Reads the buckets given, a query for each run of consecutive buckets of a grain.
pub(super) async fn read_buckets(
    store: &dyn CostStore,
    buckets: &[(Grain, i64)],
) -> Result<HashMap<(Grain, i64), Vec<Summed>>> {
    let mut sorted = buckets.to_vec();
    sorted.sort_unstable();
    let mut runs: Vec<(Grain, i64, i64)> = Vec::new();
    for (grain, start) in sorted {
        let end = grain.next(time(start)).timestamp_micros();
        match runs.last_mut() {
            Some(run) if run.0 == grain && run.2 == start => run.2 = end,
            _ => runs.push((grain, start, end)),
        }
    }
    let mut read: HashMap<(Grain, i64), Vec<Summed>> = HashMap::new();
    for (grain, start, end) in runs {
        for (bucket, summed) in store.bucket_amounts(grain, start, end).await? {
            read.entry((grain, bucket)).or_default().push(summed);
        }
    }
    Ok(read)
}

/// The buckets of `grain` that start in `[start, end)`.
fn starts(grain: Grain, start: i64, end: i64) -> Vec<(Grain, i64)> {
    let mut starts = Vec::new();
    let mut at = time(start);
    while at.timestamp_micros() < end {
        starts.push((grain, at.timestamp_micros()));
        at = grain.next(at);
    }
    starts
}

/// Every tenant's amount of each meter, as a list.
pub(super) fn summed(sums: HashMap<(Uuid, Meter), f64>) -> Vec<Summed> {
    sums.into_iter()
        .map(|((tenant, meter), amount)| Summed {
            tenant,
            meter,
            amount,
        })
        .collect()
}

/// Adds a bucket's amounts.
pub(super) fn add(sums: &mut HashMap<(Uuid, Meter), f64>, bucket: &[Summed]) {
    for summed in bucket {
        *sums.entry((summed.tenant, summed.meter)).or_default() += summed.amount;
    }
}

/// Takes a bucket's amounts away.
pub(super) fn take(sums: &mut HashMap<(Uuid, Meter), f64>, bucket: &[Summed]) {
    for summed in bucket {
        *sums.entry((summed.tenant, summed.meter)).or_default() -= summed.amount;
    }
}
