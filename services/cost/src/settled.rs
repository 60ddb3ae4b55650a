//! The ledger's settled buckets, kept in memory: the hours, days and months that ended more
//! than [`SETTLED`] ago do not change, so a report over them sums what was read once instead
//! of reading every tenant's rows again. A report over 30 days of 1,000 tenants reads only the
//! buckets that are new since the last one (an hour a hour) and the open tail.
//!
//! The open tail of a report (the month so far) is read again after [`FRESH`], as the
//! summaries made of it are: two reports of one request share it. A sum says when its open
//! tail was read ([`Sums::as_of`]), and [`SettledBuckets::refresh_open`] reads the tails again
//! ahead of time, so that the summaries a client keeps asking for are refreshed off its path.
//!
//! Late usage into settled buckets (a backfill, a flush held up) bumps the ledger's version in
//! the transaction that records it ([`crate::store::LATE`]); each sum reads the version first
//! and forgets every bucket kept when it changed, whichever process recorded the usage.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    costing::{FRESH, lock},
    domain::meter::Meter,
    error::Result,
    forecasts::SETTLED,
    store::{
        CostStore, Summed,
        buckets::{self, Grain, Piece, time},
    },
};

/// The most buckets kept: enough for the reports of the last months (a 30-day report reads
/// at most 46 hours, 30 days and a month), at about 100 KB a bucket for 1,000 tenants.
const MOST_BUCKETS: usize = 400;
/// The most pieces kept summed: a report's pieces change an hour a hour.
const MOST_PIECES: usize = 256;

/// Every tenant's amount of each meter in one bucket.
type Bucket = Arc<Vec<Summed>>;

/// The settled buckets read so far, by grain and start (µs).
#[derive(Debug, Default)]
pub struct SettledBuckets {
    kept: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    /// The ledger's version they were read at.
    version: Option<i64>,
    buckets: HashMap<(Grain, i64), Bucket>,
    /// Settled pieces (their grain, start and end) summed.
    pieces: HashMap<(Grain, i64, i64), Bucket>,
    /// Open pieces (their grain and start: to now) summed, with when: kept [`FRESH`], as
    /// long as the summaries made of them.
    open: HashMap<(Grain, i64), (DateTime<Utc>, Bucket)>,
}

/// A period's usage summed per tenant and meter, as of a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Sums {
    /// The sums.
    pub sums: Vec<Summed>,
    /// When the ledger was read for them: when their open tail was, for a period that ends
    /// now; otherwise when they were asked for.
    pub as_of: DateTime<Utc>,
}

impl SettledBuckets {
    /// The usage of the hours that start in `[start, end)`, or from `start` on when `end` is
    /// `None`, summed per tenant and meter: what [`CostStore::sums`] answers, with the settled
    /// buckets read once.
    pub async fn sums(
        &self,
        store: &dyn CostStore,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Sums> {
        self.check_version(store).await?;
        let settled_before = Grain::Hour.floor(now - SETTLED).timestamp_micros();
        let mut sums: HashMap<(Uuid, Meter), f64> = HashMap::new();
        let mut as_of = now;
        for piece in buckets::cover(start, end) {
            if piece.end <= settled_before {
                add(&mut sums, &self.settled(store, &piece).await?);
            } else if piece.end == i64::MAX {
                let (read, summed) = self.open(store, &piece, now).await?;
                as_of = as_of.min(read);
                add(&mut sums, &summed);
            } else {
                let (from, to) = (time(piece.start), Some(time(piece.end)));
                add(&mut sums, &store.sums(None, from, to).await?);
            }
        }
        Ok(Sums {
            sums: summed(sums),
            as_of,
        })
    }

    /// Reads again every open piece kept that was read `ahead` or longer before `now`, so that
    /// the next sums take it fresh.
    pub async fn refresh_open(
        &self,
        store: &dyn CostStore,
        now: DateTime<Utc>,
        ahead: chrono::Duration,
    ) -> Result<()> {
        self.check_version(store).await?;
        let due: Vec<(Grain, i64)> = lock(&self.kept)
            .open
            .iter()
            .filter(|(_, (made, _))| now - *made >= ahead)
            .map(|(key, _)| *key)
            .collect();
        for (grain, start) in due {
            self.read_open(store, grain, start, now).await?;
        }
        Ok(())
    }

    /// Forgets every bucket kept when the ledger's version moved.
    async fn check_version(&self, store: &dyn CostStore) -> Result<()> {
        let version = store.ledger_version().await?;
        let mut kept = lock(&self.kept);
        if kept.version != Some(version) {
            kept.buckets.clear();
            kept.pieces.clear();
            kept.open.clear();
            kept.version = Some(version);
        }
        Ok(())
    }

    /// An open piece summed, with when it was read: as kept if read less than [`FRESH`]
    /// before `now`, or read now.
    async fn open(
        &self,
        store: &dyn CostStore,
        piece: &Piece,
        now: DateTime<Utc>,
    ) -> Result<(DateTime<Utc>, Bucket)> {
        let key = (piece.grain, piece.start);
        if let Some((made, summed)) = lock(&self.kept).open.get(&key)
            && (now - *made).abs() < fresh()
        {
            return Ok((*made, summed.clone()));
        }
        let summed = self.read_open(store, piece.grain, piece.start, now).await?;
        Ok((now, summed))
    }

    /// Reads the open piece of `grain` from `start` on, and keeps it as read at `now`.
    async fn read_open(
        &self,
        store: &dyn CostStore,
        grain: Grain,
        start: i64,
        now: DateTime<Utc>,
    ) -> Result<Bucket> {
        let summed: Bucket = Arc::new(store.sums(None, time(start), None).await?);
        let mut kept = lock(&self.kept);
        kept.open
            .retain(|_, (made, _)| (now - *made).abs() < fresh());
        kept.open.insert((grain, start), (now, summed.clone()));
        Ok(summed)
    }

    /// A settled piece summed: as kept, or from its buckets, those kept and the rest read at
    /// once and kept.
    async fn settled(&self, store: &dyn CostStore, piece: &Piece) -> Result<Bucket> {
        let key = (piece.grain, piece.start, piece.end);
        let starts = starts(piece);
        let (version, missing) = {
            let kept = lock(&self.kept);
            if let Some(summed) = kept.pieces.get(&key) {
                return Ok(summed.clone());
            }
            let missing: Vec<i64> = starts
                .iter()
                .copied()
                .filter(|s| !kept.buckets.contains_key(&(piece.grain, *s)))
                .collect();
            (kept.version, missing)
        };
        let mut read: HashMap<i64, Vec<Summed>> = HashMap::new();
        if let (Some(&first), Some(&last)) = (missing.first(), missing.last()) {
            let end = piece.grain.next(time(last)).timestamp_micros();
            for (bucket, summed) in store.bucket_amounts(piece.grain, first, end).await? {
                read.entry(bucket).or_default().push(summed);
            }
        }
        let mut kept = lock(&self.kept);
        let keep = kept.version == version;
        if keep && kept.buckets.len() + missing.len() > MOST_BUCKETS {
            kept.buckets.clear();
        }
        let mut sums: HashMap<(Uuid, Meter), f64> = HashMap::new();
        for start in starts {
            let bucket = match kept.buckets.get(&(piece.grain, start)) {
                Some(bucket) => bucket.clone(),
                None => {
                    let bucket: Bucket = Arc::new(read.remove(&start).unwrap_or_default());
                    if keep {
                        kept.buckets.insert((piece.grain, start), bucket.clone());
                    }
                    bucket
                }
            };
            add(&mut sums, &bucket);
        }
        let summed: Bucket = Arc::new(summed(sums));
        if keep {
            if kept.pieces.len() >= MOST_PIECES {
                kept.pieces.clear();
            }
            kept.pieces.insert(key, summed.clone());
        }
        Ok(summed)
    }
}

/// [`FRESH`], as a span of wall-clock time.
fn fresh() -> chrono::Duration {
    chrono::Duration::from_std(FRESH).unwrap_or_default()
}

/// The starts of a piece's buckets.
fn starts(piece: &Piece) -> Vec<i64> {
    let mut starts = Vec::new();
    let mut at = time(piece.start);
    while at.timestamp_micros() < piece.end {
        starts.push(at.timestamp_micros());
        at = piece.grain.next(at);
    }
    starts
}

fn summed(sums: HashMap<(Uuid, Meter), f64>) -> Vec<Summed> {
    sums.into_iter()
        .map(|((tenant, meter), amount)| Summed {
            tenant,
            meter,
            amount,
        })
        .collect()
}

fn add(sums: &mut HashMap<(Uuid, Meter), f64>, bucket: &[Summed]) {
    for summed in bucket {
        *sums.entry((summed.tenant, summed.meter)).or_default() += summed.amount;
    }
}
