//! A local SMS gateway: a real HTTP server on a loopback port that takes what kluis posts
//! (`{"to", "text"}` with a bearer token) and keeps it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;

/// One message as the gateway got it: the Authorization header and the JSON body.
#[derive(Debug, Clone)]
pub struct Sms {
    pub authorization: Option<String>,
    pub to: String,
    pub text: String,
}

pub struct GatewaySink {
    pub url: String,
    pub received: Arc<Mutex<Vec<Sms>>>,
}

impl GatewaySink {
    pub async fn start() -> Self {
        let received: Arc<Mutex<Vec<Sms>>> = Arc::default();
        let store = received.clone();
        let app = Router::new().route(
            "/send",
            post(move |headers: HeaderMap, body: String| {
                let store = store.clone();
                async move {
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                    store.lock().unwrap().push(Sms {
                        authorization: headers.get("authorization").map(|h| h.to_str().unwrap().to_owned()),
                        to: v["to"].as_str().unwrap().to_owned(),
                        text: v["text"].as_str().unwrap().to_owned(),
                    });
                    "queued"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}/send", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        GatewaySink { url, received }
    }

    /// Waits (up to five seconds) until `n` messages have arrived; returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Sms> {
        for _ in 0..100 {
            {
                let r = self.received.lock().unwrap();
                if r.len() >= n {
                    return r.clone();
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{n} SMS did not arrive: {:?}", self.received.lock().unwrap());
    }
}
