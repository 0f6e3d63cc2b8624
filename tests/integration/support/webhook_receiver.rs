//! A webhook receiver on a loopback port (real HTTP): it records every POST
//! (path, `webhook-id`, body, headers, the status it answered, when),
//! answers each path as scripted (accept, fail with Retry-After, reject,
//! hang, be down), can verify Standard Webhooks signatures and payloads,
//! shows what a receiver that deduplicates on `webhook-id` would act on,
//! and lets a test wait for a request rather than a timer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

/// How a receiver path answers the n-th attempt (1-based) of one id.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    Accept,
    /// 503 (Retry-After: 0), 429 (Retry-After: 0), 500, then 200.
    FailThreeTimes,
    Reject,
    Hang,
    /// 503 to everything: the receiver is "down".
    Down,
}

/// What a receiver checks in every request; one that fails gets a 400.
#[derive(Clone, Copy)]
pub struct Checks {
    /// The Standard Webhooks secret signed requests must verify with.
    pub secret: &'static str,
    /// Whether the body sent to a path is valid there; `None` where it is
    /// not checked.
    pub payload: fn(path: &str, body: &str) -> Option<bool>,
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub id: String,
    pub body: String,
    pub headers: HeaderMap,
    /// The status answered; 0 for a request left hanging.
    pub status: u16,
    pub at: Instant,
    /// Whether the signature verified; `None` for an unsigned request or
    /// without [`Checks`].
    pub signature_ok: Option<bool>,
    /// What [`Checks::payload`] said.
    pub payload_ok: Option<bool>,
}

#[derive(Default)]
struct Inner {
    behaviour: BTreeMap<String, Behaviour>,
    attempts: BTreeMap<String, u32>,
    received: Vec<Received>,
}

/// A running receiver. Clones share it.
#[derive(Clone)]
pub struct WebhookReceiver {
    /// `http://<address>`; a webhook's URL is this plus `/<path>`.
    pub url: String,
    checks: Option<Checks>,
    state: Arc<Mutex<Inner>>,
    changed: Arc<tokio::sync::watch::Sender<u64>>,
}

impl WebhookReceiver {
    /// Starts a receiver answering each path of `behaviour` so, and every
    /// other path with 200.
    pub async fn start(behaviour: &[(&str, Behaviour)], checks: Option<Checks>) -> WebhookReceiver {
        let state = Inner {
            behaviour: behaviour.iter().map(|(p, b)| (p.to_string(), *b)).collect(),
            ..Inner::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = WebhookReceiver {
            url: format!("http://{}", listener.local_addr().unwrap()),
            checks,
            state: Arc::new(Mutex::new(state)),
            changed: Arc::new(tokio::sync::watch::channel(0).0),
        };
        let router = Router::new()
            .route("/{*path}", post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        receiver
    }

    /// Answers `path` with `behaviour` from now on.
    pub fn set(&self, path: &str, behaviour: Behaviour) {
        self.state
            .lock()
            .unwrap()
            .behaviour
            .insert(path.to_owned(), behaviour);
    }

    /// Every request received so far, in order.
    pub fn all(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The requests to `path` received so far, in order.
    pub fn received(&self, path: &str) -> Vec<Received> {
        self.state
            .lock()
            .unwrap()
            .received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Ids answered with a 2xx, with how many times each was.
    pub fn delivered(&self, path: &str) -> BTreeMap<String, usize> {
        let mut ids = BTreeMap::new();
        for r in self.received(path).into_iter().filter(|r| r.status < 300) {
            *ids.entry(r.id).or_insert(0) += 1;
        }
        ids
    }

    /// What a receiver that deduplicates on `webhook-id` acts on, of the
    /// requests to any of `paths` answered with a 2xx: one per id, the first
    /// to arrive, with every request that carried the id, in order of
    /// first arrival.
    pub fn deduplicated(&self, paths: &[&str]) -> Vec<(Received, Vec<Received>)> {
        let mut ids: Vec<(Received, Vec<Received>)> = Vec::new();
        let state = self.state.lock().unwrap();
        let delivered = state
            .received
            .iter()
            .filter(|r| r.status / 100 == 2 && paths.contains(&r.path.as_str()));
        for request in delivered {
            match ids.iter_mut().find(|(first, _)| first.id == request.id) {
                Some((_, all)) => all.push(request.clone()),
                None => ids.push((request.clone(), vec![request.clone()])),
            }
        }
        ids
    }

    /// Waits (for a request, not a timer) until `done` holds.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&WebhookReceiver) -> bool) {
        self.wait_until_within(what, Duration::from_secs(40), done)
            .await
    }

    /// [`WebhookReceiver::wait_until`] for at most `timeout`.
    pub async fn wait_until_within(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&WebhookReceiver) -> bool,
    ) {
        let mut changes = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        while !done(self) {
            tokio::time::timeout_at(deadline, changes.changed())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .unwrap();
        }
    }

    fn record(&self, received: Received) {
        self.state.lock().unwrap().received.push(received);
        self.changed.send_modify(|n| *n += 1);
    }
}

async fn receive(
    State(receiver): State<WebhookReceiver>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let signature_ok = receiver.checks.and_then(|checks| {
        headers.contains_key("webhook-signature").then(|| {
            standardwebhooks::Webhook::new(checks.secret)
                .unwrap()
                .verify(body.as_bytes(), &headers)
                .is_ok()
        })
    });
    let payload_ok = receiver
        .checks
        .and_then(|checks| (checks.payload)(&path, &body));
    let (behaviour, attempt) = {
        let mut state = receiver.state.lock().unwrap();
        let behaviour = state
            .behaviour
            .get(&path)
            .copied()
            .unwrap_or(Behaviour::Accept);
        let attempt = state.attempts.entry(id.clone()).or_insert(0);
        *attempt += 1;
        (behaviour, *attempt)
    };
    let mut received = Received {
        path,
        id,
        body,
        headers,
        status: 0,
        at: Instant::now(),
        signature_ok,
        payload_ok,
    };
    let response = match (behaviour, attempt) {
        (Behaviour::Hang, _) => {
            receiver.record(received);
            futures::future::pending::<()>().await;
            unreachable!()
        }
        (_, _) if payload_ok == Some(false) || signature_ok == Some(false) => {
            (StatusCode::BAD_REQUEST, "bad payload or signature").into_response()
        }
        (Behaviour::Accept, _) | (Behaviour::FailThreeTimes, 4..) => StatusCode::OK.into_response(),
        (Behaviour::FailThreeTimes, 1) | (Behaviour::Down, _) => {
            (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "0")]).into_response()
        }
        (Behaviour::FailThreeTimes, 2) => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")]).into_response()
        }
        (Behaviour::FailThreeTimes, _) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        (Behaviour::Reject, _) => (StatusCode::BAD_REQUEST, "no such channel").into_response(),
    };
    received.status = response.status().as_u16();
    receiver.record(received);
    response
}
