//! Group commit: one thread runs sled's `flush` (write-out and fsync) for everyone. A saver
//! whose transaction has applied asks for a flush and waits until a flush that *began after its
//! request* has finished; every saver that asked while one flush ran shares the next one. So at
//! most one fsync is in flight, and 64 concurrent saves cost a handful of fsyncs, not 64.
//!
//! (sled's own `flush_async` runs on sled's small thread pool and was seen to stall for good
//! under many concurrent savers; calling the blocking `flush` from each saver makes each of
//! them do a full flush pass of its own.)

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use tokio::sync::watch;

/// What the flusher has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Flushed {
    /// Every request up to this number is covered by a finished flush.
    upto: u64,
    /// Whether that flush failed (a later success covers earlier requests too).
    failed: bool,
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
            loop {
                let target = {
                    let mut w = s.wanted.lock().unwrap_or_else(PoisonError::into_inner);
                    while w.requested == s.done.borrow().upto && !w.shutdown {
                        w = s.wake.wait(w).unwrap_or_else(PoisonError::into_inner);
                    }
                    if w.shutdown && w.requested == s.done.borrow().upto {
                        return;
                    }
                    w.flushes += 1;
                    w.requested
                };
                // Everything applied before `target` was requested is in sled's buffers now.
                let failed = db.flush().is_err();
                s.done.send_replace(Flushed { upto: target, failed });
            }
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
        let flushed = *rx
            .wait_for(|f| f.upto >= mine)
            .await
            .map_err(|_| sled::Error::ReportableBug("the flusher stopped".into()))?;
        if flushed.failed { Err(sled::Error::ReportableBug("flush failed".into())) } else { Ok(()) }
    }
}

impl GroupCommit {
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
