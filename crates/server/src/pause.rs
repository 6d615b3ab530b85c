//! The pause a backup takes of every write, so that its snapshot of the three stores is one
//! consistent state (sled has no snapshot across trees or databases).
//!
//! Every request that may write (any method but GET, HEAD and OPTIONS) holds the pause's read
//! side while it runs, once its body has been read in whole: a slow upload cannot hold a backup
//! up, nor, through it, everyone else's writes. Operator commands and the periodic clean-up
//! hold it too. A backup takes the write side: it waits for the writes under way to finish,
//! new ones wait for it, and reads go on throughout.

use std::sync::Arc;

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

/// Shared by everything that writes; cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct WritePause(Arc<RwLock<()>>);

/// Held by a write under way.
pub type Writing = OwnedRwLockReadGuard<()>;
/// Held by a backup while it reads the stores.
pub type Paused = OwnedRwLockWriteGuard<()>;

impl WritePause {
    /// Waits while a backup runs, then lets a write go ahead until the guard drops.
    pub async fn writing(&self) -> Writing {
        self.0.clone().read_owned().await
    }

    /// Waits for the writes under way, then holds every new one until the guard drops.
    pub async fn pause(&self) -> Paused {
        self.0.clone().write_owned().await
    }
}

/// Middleware: a request that may write reads its body in whole, then runs under the pause's
/// read side.
pub async fn hold_writes(
    axum::extract::State(pause): axum::extract::State<WritePause>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::Method;
    use axum::response::IntoResponse;
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    // Only the vault routes take large bodies; every other route's own limit applies here
    // already, before anything is buffered.
    let limit = if req.uri().path().starts_with("/api/vaults") {
        crate::http::MAX_BODY_BYTES
    } else {
        crate::api::MAX_JSON_BYTES
    };
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        // Over the limit, or the client went away: answer as the limit layer would.
        Err(_) => return axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let _writing = pause.writing().await;
    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(body))).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_pause_waits_for_writes_under_way_and_holds_new_ones() {
        let pause = WritePause::default();
        let w = pause.writing().await;
        let p = pause.clone();
        let paused = tokio::spawn(async move { p.pause().await });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!paused.is_finished(), "the pause waits for the write under way");
        drop(w);
        let guard = paused.await.unwrap();
        let p = pause.clone();
        let next = tokio::spawn(async move { drop(p.writing().await) });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!next.is_finished(), "a new write waits for the pause");
        drop(guard);
        next.await.unwrap();
    }
}
