//! Group commit: one thread runs sled's `flush` (write-out and fsync) for everyone. A saver
//! whose transaction has applied asks for a flush and waits until a flush that *began after its
//! request* has finished; every saver that asked while one flush ran shares the next one. So at
//! most one fsync is in flight, and 64 concurrent saves cost a handful of fsyncs, not 64.
//!
//! (sled's own `flush_async` runs on sled's small thread pool and was seen to stall for good
//! under many concurrent savers; calling the blocking `flush` from each saver makes each of
//! them do a full flush pass of its own.)
//!
//! Failure handling: a flush that fails fails exactly the requests it was to cover (a later
//! success covers earlier requests too, since a flush writes everything dirty). If the flusher
//! thread dies (a panic in sled), every waiter and every later request fails at once instead of
//! hanging.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use tokio::sync::watch;

/// What the flusher has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Flushed {
    /// Every request up to this number is covered by a successful flush.
    ok_upto: u64,
    /// Requests up to this number are covered by a finished flush, successful or not.
    tried_upto: u64,
    /// The flusher is gone: nothing more will be flushed.
    dead: bool,
}

#[derive(Debug, Default)]
struct Wanted {
    requested: u64,
    shutdown: bool,
    /// Flushes run so far (for the benchmarks' saves-per-flush figure).
    flushes: u64,
}

#[derive(Debug)]
struct Shared {
    wanted: Mutex<Wanted>,
    wake: Condvar,
    done: watch::Sender<Flushed>,
}

/// The flusher thread and its handle; dropping the last handle stops the thread (which holds a
/// clone of the database, so the directory lock is released only then).
#[derive(Debug)]
pub(super) struct GroupCommit {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Marks the flusher dead when its thread ends for any reason, so no waiter hangs.
struct DeathNotice(Arc<Shared>);

impl Drop for DeathNotice {
    fn drop(&mut self) {
        self.0.done.send_modify(|f| f.dead = true);
    }
}

fn flusher(s: &Arc<Shared>, db: &sled::Db) {
    loop {
        let target = {
            let mut w = s.wanted.lock().unwrap_or_else(PoisonError::into_inner);
            while w.requested == s.done.borrow().tried_upto && !w.shutdown {
                w = s.wake.wait(w).unwrap_or_else(PoisonError::into_inner);
            }
            if w.shutdown && w.requested == s.done.borrow().tried_upto {
                return;
            }
            w.flushes += 1;
            w.requested
        };
        // Everything applied before `target` was requested is in sled's buffers now.
        match db.flush() {
            Ok(_) => s.done.send_modify(|f| {
                f.ok_upto = target;
                f.tried_upto = target;
            }),
            Err(e) => {
                tracing::error!(error = %e, "flush failed");
                s.done.send_modify(|f| f.tried_upto = target);
            }
        }
    }
}

impl GroupCommit {
    /// Starts the flusher for `db`.
    pub(super) fn start(db: sled::Db) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            wanted: Mutex::default(),
            wake: Condvar::new(),
            done: watch::Sender::new(Flushed::default()),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new().name("kluis-flush".into()).spawn(move || {
            let _notice = DeathNotice(s.clone());
            flusher(&s, &db);
        })?;
        Ok(GroupCommit { shared, thread: Some(thread) })
    }

    /// Waits until everything written before this call is on disk.
    pub(super) async fn flush(&self) -> Result<(), sled::Error> {
        let mine = {
            let mut w = self.shared.wanted.lock().unwrap_or_else(PoisonError::into_inner);
            w.requested += 1;
            w.requested
        };
        self.shared.wake.notify_one();
        let mut rx = self.shared.done.subscribe();
        let seen = *rx
            .wait_for(|f| f.ok_upto >= mine || f.tried_upto >= mine || f.dead)
            .await
            .map_err(|_| sled::Error::ReportableBug("the flusher stopped".into()))?;
        if seen.ok_upto >= mine {
            Ok(())
        } else if seen.dead {
            Err(sled::Error::ReportableBug("the flusher stopped".into()))
        } else {
            Err(sled::Error::ReportableBug("flush failed".into()))
        }
    }

    /// How many flushes have run.
    pub(super) fn flushes(&self) -> u64 {
        self.shared.wanted.lock().unwrap_or_else(PoisonError::into_inner).flushes
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.shared.wanted.lock().unwrap_or_else(PoisonError::into_inner).shutdown = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
