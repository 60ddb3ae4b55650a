//! Write transactions, and on SQLite this process's turns at writing a file.
//!
//! SQLite has one writer at a time. The ingest writer and the alert journal write the same file
//! through pools of their own, and a writer that finds the file locked is left to SQLite's busy
//! handler, which sleeps and retries (1, 2, 5, … 100 ms): under a steady ingest, the journal
//! lost that race for up to two seconds. So every write transaction of a file in this process
//! first takes its turn in one FIFO queue (`tokio::sync::Mutex` is fair), and holds it until it
//! commits or rolls back: a write waits for the transactions ahead of it, never for a retry.

use std::{
    collections::HashMap,
    ops::{Deref, DerefMut},
    path::{Path, PathBuf},
    sync::{Arc, LazyLock, Mutex, Weak},
};

use sqlx::{Database, Transaction};
use tokio::sync::OwnedMutexGuard;

/// The queue of writers of one file.
pub(crate) type Turns = Arc<tokio::sync::Mutex<()>>;

/// This process's queue of writers of the SQLite file `path`, shared by every pool of it.
pub(crate) fn turns_of(path: &Path) -> Turns {
    static FILES: LazyLock<Mutex<HashMap<PathBuf, Weak<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(Mutex::default);
    let mut files = FILES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    files.retain(|_, turns| turns.strong_count() > 0);
    if let Some(turns) = files.get(path).and_then(Weak::upgrade) {
        return turns;
    }
    let turns = Turns::default();
    files.insert(path.to_owned(), Arc::downgrade(&turns));
    turns
}

/// A write transaction, holding its turn (on SQLite) until it commits or rolls back.
pub struct WriteTx<DB: Database> {
    tx: Transaction<'static, DB>,
    _turn: Option<OwnedMutexGuard<()>>,
}

impl<DB: Database> std::fmt::Debug for WriteTx<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTx")
            .field("in_turn", &self._turn.is_some())
            .finish_non_exhaustive()
    }
}

impl<DB: Database> WriteTx<DB> {
    /// A transaction begun in its turn, if it has one.
    pub(crate) fn new(tx: Transaction<'static, DB>, turn: Option<OwnedMutexGuard<()>>) -> Self {
        Self { tx, _turn: turn }
    }

    /// Commits, then gives the turn to the next writer.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl<DB: Database> Deref for WriteTx<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.tx
    }
}

impl<DB: Database> DerefMut for WriteTx<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.tx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_of_one_file_share_their_turns() {
        let a = turns_of(Path::new("/tmp/one.db"));
        let b = turns_of(Path::new("/tmp/one.db"));
        let c = turns_of(Path::new("/tmp/other.db"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
