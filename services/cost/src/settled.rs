//! The ledger's settled buckets, kept in memory: the hours, days and months that ended more
//! than [`SETTLED`] ago do not change, so a report over them sums what was read once instead
//! of reading every tenant's rows again. A report over 30 days of 1,000 tenants reads only the
//! buckets that are new since the last one (an hour a hour) and the open tail.
//!
//! A piece inside one day is summed from its hours, or as the day less its hours outside the
//! piece, or as the piece an hour longer kept less that hour, whichever reads fewer buckets not
//! kept, then sums fewer (the same for days inside a month). The
//! buckets that a period whose start slides on will want next (the hour its start passes, the
//! next day and its first hour) are read ahead, off the reports' path
//! ([`SettledBuckets::read_ahead`]): a rolling 30 days reads no bucket on its path, on the
//! hour after a midnight either.
//!
//! The open tail of a report (the month so far) is read again after [`FRESH`], as the
//! summaries made of it are: two reports of one request share it. A sum says when its open
//! tail was read ([`Sums::as_of`]), and [`SettledBuckets::refresh_open`] reads the tails again
//! ahead of time, so that the summaries a client keeps asking for are refreshed off its path.
//!
//! Late usage into settled buckets (a backfill, a flush held up) bumps the ledger's version in
//! the transaction that records it ([`crate::store::LATE`]). A request reads the version once,
//! before anything else (`Costing::version`), and each sum forgets every bucket kept when it
//! moved, whichever process recorded the usage.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use uuid::Uuid;

use self::ways::{Terms, add, ahead, longer, read_buckets, summed, take, ways};
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

mod ways;

/// The most buckets kept: enough for the reports of the last months (a 30-day report reads
/// at most 46 hours, 30 days and a month), at about 100 KB a bucket for 1,000 tenants.
const MOST_BUCKETS: usize = 400;
/// The most pieces kept summed: a report's pieces change an hour a hour.
const MOST_PIECES: usize = 256;

/// What is left of an amount less its parts outside a piece, relative to the amount, that is
/// taken as nothing left: the rounding of the subtraction.
const RESIDUE: f64 = 1e-9;

/// Every tenant's amount of each meter in one bucket.
type Bucket = Arc<Vec<Summed>>;

/// The settled buckets read so far, by grain and start (µs).
#[derive(Debug, Default)]
pub struct SettledBuckets {
    kept: Mutex<Kept>,
    /// Buckets read from the ledger.
    read: AtomicU64,
    /// Told when buckets are wanted ahead.
    wanted: Notify,
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
    /// Buckets to read ahead of the reports that will need them ([`SettledBuckets::read_ahead`]).
    wanted: BTreeSet<(Grain, i64)>,
}

/// How a settled piece is summed.
enum Plan {
    /// As kept.
    Kept(Bucket),
    /// From buckets, the `missing` ones read first.
    Sum {
        /// The ledger's version when planned.
        version: Option<i64>,
        way: Terms,
        missing: Vec<(Grain, i64)>,
    },
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
    /// `None`, summed per tenant and meter, from the ledger at `version` or later: what
    /// [`CostStore::sums`] answers, with the settled buckets read once.
    pub async fn sums(
        &self,
        store: &dyn CostStore,
        version: i64,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Sums> {
        self.follow(version);
        let settled_before = Grain::Hour.floor(now - SETTLED).timestamp_micros();
        let mut sums: HashMap<(Uuid, Meter), f64> = HashMap::new();
        let mut as_of = now;
        for piece in buckets::cover(start, end) {
            if piece.end <= settled_before {
                add(
                    &mut sums,
                    &self.settled(store, &piece, settled_before).await?,
                );
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
        version: i64,
        now: DateTime<Utc>,
        ahead: chrono::Duration,
    ) -> Result<()> {
        self.follow(version);
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

    /// Forgets every bucket kept when the ledger's version moved past theirs to `version`
    /// (read by the caller). A version older than theirs, read before they were, keeps them:
    /// they are as fresh.
    fn follow(&self, version: i64) {
        let mut kept = lock(&self.kept);
        if kept.version.is_none_or(|v| v < version) {
            kept.buckets.clear();
            kept.pieces.clear();
            kept.open.clear();
            kept.version = Some(version);
        }
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

    /// A settled piece summed: as kept, or from the way of summing it ([`ways`]) that reads
    /// the fewest buckets not kept, those read at once and kept.
    async fn settled(
        &self,
        store: &dyn CostStore,
        piece: &Piece,
        settled_before: i64,
    ) -> Result<Bucket> {
        let (version, way, missing) = match self.plan(piece, settled_before) {
            Plan::Kept(summed) => return Ok(summed),
            Plan::Sum {
                version,
                way,
                missing,
            } => (version, way, missing),
        };
        self.want_ahead(piece, settled_before);
        let read = read_buckets(store, &missing).await?;
        self.read.fetch_add(missing.len() as u64, Ordering::Relaxed);
        Ok(self.sum_and_keep(piece, version, &way, read))
    }

    /// How a settled piece is summed: as kept, or the cheapest of its ways, with the buckets
    /// it reads.
    fn plan(&self, piece: &Piece, settled_before: i64) -> Plan {
        let kept = lock(&self.kept);
        if let Some(summed) = kept.pieces.get(&(piece.grain, piece.start, piece.end)) {
            return Plan::Kept(summed.clone());
        }
        let mut ways = ways(piece, settled_before);
        if let Some(longer) = longer(piece)
            && let Some(base) = kept.pieces.get(&longer)
        {
            ways.push(Terms {
                base: Some(base.clone()),
                added: Vec::new(),
                taken: vec![(piece.grain, longer.1)],
            });
        }
        let missing = |way: &Terms| -> Vec<(Grain, i64)> {
            way.buckets()
                .filter(|bucket| !kept.buckets.contains_key(bucket))
                .copied()
                .collect()
        };
        let (way, missing) = ways
            .into_iter()
            .map(|way| {
                let missing = missing(&way);
                (way, missing)
            })
            .min_by_key(|(way, missing)| (missing.len(), way.len()))
            .unwrap_or_default();
        Plan::Sum {
            version: kept.version,
            way,
            missing,
        }
    }

    /// Asks for the buckets not kept that the piece's next start will want ([`ahead`]).
    fn want_ahead(&self, piece: &Piece, settled_before: i64) {
        let mut kept = lock(&self.kept);
        let wanted: Vec<_> = ahead(piece, settled_before)
            .into_iter()
            .filter(|bucket| !kept.buckets.contains_key(bucket))
            .collect();
        if !wanted.is_empty() {
            kept.wanted.extend(wanted);
            self.wanted.notify_one();
        }
    }

    /// Sums a piece the way planned, from the buckets kept and those `read`, and keeps it and
    /// them, unless the ledger's version moved since `version`.
    fn sum_and_keep(
        &self,
        piece: &Piece,
        version: Option<i64>,
        way: &Terms,
        mut read: HashMap<(Grain, i64), Vec<Summed>>,
    ) -> Bucket {
        let mut kept = lock(&self.kept);
        let keep = kept.version == version;
        if keep && kept.buckets.len() + read.len() > MOST_BUCKETS {
            kept.buckets.clear();
        }
        let mut bucket = |key: &(Grain, i64)| -> Bucket {
            if let Some(bucket) = kept.buckets.get(key) {
                return bucket.clone();
            }
            let bucket: Bucket = Arc::new(read.remove(key).unwrap_or_default());
            if keep {
                kept.buckets.insert(*key, bucket.clone());
            }
            bucket
        };
        let mut sums: HashMap<(Uuid, Meter), f64> = HashMap::new();
        if let Some(base) = &way.base {
            add(&mut sums, base);
        }
        for key in &way.added {
            add(&mut sums, &bucket(key));
        }
        let summed: Bucket = if way.taken.is_empty() {
            Arc::new(summed(sums))
        } else {
            let mut net = sums.clone();
            for key in &way.taken {
                take(&mut net, &bucket(key));
            }
            net.retain(|key, amount| *amount > sums[key] * RESIDUE);
            Arc::new(summed(net))
        };
        if keep {
            if kept.pieces.len() >= MOST_PIECES {
                kept.pieces.clear();
            }
            kept.pieces
                .insert((piece.grain, piece.start, piece.end), summed.clone());
        }
        summed
    }

    /// Reads the buckets that the reports summed so far will want when their start slides on
    /// (see [`ahead`]), and keeps them: off the reports' path, so that a rolling period reads
    /// no bucket on its path, a new day's too.
    pub async fn read_ahead(&self, store: &dyn CostStore, version: i64) -> Result<()> {
        if lock(&self.kept).wanted.is_empty() {
            return Ok(());
        }
        self.follow(version);
        let (version, wanted) = {
            let mut kept = lock(&self.kept);
            let wanted: Vec<(Grain, i64)> = std::mem::take(&mut kept.wanted)
                .into_iter()
                .filter(|bucket| !kept.buckets.contains_key(bucket))
                .collect();
            (kept.version, wanted)
        };
        if wanted.is_empty() {
            return Ok(());
        }
        let mut read = read_buckets(store, &wanted).await?;
        self.read.fetch_add(wanted.len() as u64, Ordering::Relaxed);
        let mut kept = lock(&self.kept);
        if kept.version != version {
            return Ok(());
        }
        if kept.buckets.len() + wanted.len() > MOST_BUCKETS {
            kept.buckets.clear();
        }
        for bucket in wanted {
            let summed = Arc::new(read.remove(&bucket).unwrap_or_default());
            kept.buckets.insert(bucket, summed);
        }
        Ok(())
    }

    /// Whether buckets are wanted ahead.
    pub fn wants_ahead(&self) -> bool {
        !lock(&self.kept).wanted.is_empty()
    }

    /// Returns when buckets are wanted ahead (at once if they were since the last call).
    pub async fn wanted(&self) {
        self.wanted.notified().await;
    }

    /// How many buckets were read from the ledger so far.
    pub fn buckets_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
}

/// [`FRESH`], as a span of wall-clock time.
fn fresh() -> chrono::Duration {
    chrono::Duration::from_std(FRESH).unwrap_or_default()
}
