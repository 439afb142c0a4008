//! Group commit. A writer commits its sled transaction, then waits until a flush that began
//! after its commit has finished. One flusher thread runs flushes back to back, so every
//! writer that committed while the previous flush was on disk is acknowledged by the next
//! one: under load one fsync covers many requests, and idle, a write waits for one flush.
//!
//! `CommitMode::EachWrite` is the plain alternative (each write and its own flush run alone,
//! one after another), kept for the benchmark that measures what group commit gains.
//!
//! A flush is sled's `flush` followed by `fdatasync` of sled's log file. sled alone writes
//! with `sync_file_range`, which puts the pages on the device but neither flushes the
//! device's volatile cache nor waits for it, so a power cut could lose what was acknowledged.
//!
//! Flushes are always sled's blocking `flush` on a thread of ours: sled 0.34's `flush_async`
//! deadlocks when many callers use it at once (spacejam/sled#1308, fixed only in an unreleased
//! branch); the benchmark hung on it with 64 concurrent writers.

use crate::domain::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use tokio::sync::watch;

/// How writes become durable before `apply` returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CommitMode {
    /// Writers share flushes (the default).
    #[default]
    Group,
    /// Every write runs its own flush.
    EachWrite,
}

impl std::str::FromStr for CommitMode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "group" => Ok(CommitMode::Group),
            "each-write" => Ok(CommitMode::EachWrite),
            other => anyhow::bail!("commit '{other}' is not one of \"group\", \"each-write\""),
        }
    }
}

/// What the flusher has made durable: every commit numbered up to `flushed`. A flush that
/// failed leaves `failed_up_to` at the commits it should have covered.
#[derive(Debug, Clone, Copy, Default)]
struct Durable {
    flushed: u64,
    failed_up_to: u64,
}

struct Shared {
    /// Commits numbered so far; a writer takes its number after its transaction committed.
    committed: AtomicU64,
    /// Wakes the flusher; the bool asks it to stop.
    pending: Mutex<bool>,
    wake: Condvar,
    durable: watch::Sender<Durable>,
}

/// sled's flush, then the file's own: see the module comment.
#[derive(Clone)]
struct Durably {
    db: sled::Db,
    log: Arc<std::fs::File>,
}

impl Durably {
    fn flush(&self) -> std::io::Result<()> {
        self.db.flush().map_err(std::io::Error::other)?;
        self.log.sync_data()
    }
}

/// The flusher thread and the counters writers wait on; stops the thread on drop, so the
/// database is closed when the store is.
pub(super) struct GroupCommit {
    shared: Arc<Shared>,
    mode: CommitMode,
    durably: Durably,
    flusher: Option<std::thread::JoinHandle<()>>,
    /// `EachWrite` only: one flush at a time.
    each_write_turn: tokio::sync::Mutex<()>,
}

impl GroupCommit {
    /// `log` is sled's log file in the store's folder (`db`).
    pub(super) fn start(db: sled::Db, log: &std::path::Path, mode: CommitMode) -> std::io::Result<Self> {
        let durably = Durably { db, log: Arc::new(std::fs::File::open(log)?) };
        let shared = Arc::new(Shared {
            committed: AtomicU64::new(0),
            pending: Mutex::new(false),
            wake: Condvar::new(),
            durable: watch::channel(Durable::default()).0,
        });
        let flusher = match mode {
            CommitMode::Group => {
                let (shared, durably) = (shared.clone(), durably.clone());
                Some(
                    std::thread::Builder::new()
                        .name("sled-group-commit".into())
                        .spawn(move || flusher(&shared, &durably))?,
                )
            }
            CommitMode::EachWrite => None,
        };
        Ok(GroupCommit { shared, mode, durably, flusher, each_write_turn: tokio::sync::Mutex::new(()) })
    }

    /// Run `write` (a sled transaction), then wait until it is on disk. With `EachWrite` the
    /// write and its flush happen alone, so no other write shares the flush.
    pub(super) async fn commit<A>(&self, write: impl FnOnce() -> Result<A>) -> Result<A> {
        if self.mode == CommitMode::EachWrite {
            let _turn = self.each_write_turn.lock().await;
            let value = write()?;
            self.flush_now().await?;
            return Ok(value);
        }
        let value = write()?;
        self.durable().await?;
        Ok(value)
    }

    async fn flush_now(&self) -> Result<()> {
        let durably = self.durably.clone();
        match tokio::task::spawn_blocking(move || durably.flush()).await {
            Ok(flushed) => flushed.map_err(Error::storage),
            Err(e) => Err(Error::Storage(anyhow::anyhow!("the flush thread failed: {e}"))),
        }
    }

    /// Wait until everything committed before this call is on disk.
    pub(super) async fn durable(&self) -> Result<()> {
        if self.mode == CommitMode::EachWrite {
            let _turn = self.each_write_turn.lock().await;
            return self.flush_now().await;
        }
        let mine = self.shared.committed.fetch_add(1, Ordering::AcqRel) + 1;
        let mut durable = self.shared.durable.subscribe();
        // Taking the lock orders this wake-up after the flusher's check or before it: never lost.
        drop(self.shared.pending.lock().unwrap_or_else(|e| e.into_inner()));
        self.shared.wake.notify_one();
        let state = durable
            .wait_for(|d| d.flushed >= mine || d.failed_up_to >= mine)
            .await
            .map_err(|_| Error::Storage(anyhow::anyhow!("the store is closing")))?;
        if state.flushed >= mine {
            Ok(())
        } else {
            Err(Error::Storage(anyhow::anyhow!("flushing the store to disk failed")))
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        *self.shared.pending.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.flusher.take() {
            let _ = thread.join();
        }
    }
}

/// Flush whenever commits are waiting; each flush acknowledges every commit numbered before
/// it started.
fn flusher(shared: &Shared, durably: &Durably) {
    let mut last = 0;
    loop {
        let target = {
            let mut stop = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                let target = shared.committed.load(Ordering::Acquire);
                if target > last {
                    break target;
                }
                if *stop {
                    return;
                }
                stop = shared.wake.wait(stop).unwrap_or_else(|e| e.into_inner());
            }
        };
        match durably.flush() {
            Ok(_) => shared.durable.send_modify(|d| d.flushed = target),
            Err(e) => {
                tracing::error!(error = %e, "flushing the store failed");
                shared.durable.send_modify(|d| d.failed_up_to = target);
            }
        }
        last = target;
    }
}
