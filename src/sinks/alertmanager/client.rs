//! Sending to one Alertmanager: a bounded queue of postable alerts and the
//! task that posts them, in batches, to `{url}{path_prefix}api/v2/alerts`.
//!
//! As Prometheus' notifier does: a full queue drops its oldest alerts (and
//! counts them); a connection error, a timeout, 408, 429 or a 5xx is
//! retried with a growing backoff until the resend interval has passed (by
//! then the next resend carries the alerts again); any other status drops
//! the batch. Every failure is one log line naming the Alertmanager (its
//! URL without credentials or query) and the status with the start of the
//! body. Credentials are read at each request and never logged.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::metrics::AlertmanagerMetrics;
use crate::config::{AlertmanagersConfig, BasicAuth};
use crate::sinks::webhooks::delivery::{Attempt, backoff, error_text, response_outcome};
use crate::sources::prometheus::{read_bearer_token, resolve_password};

/// Most alerts in one request (Prometheus sends 64 at a time).
pub const MAX_BATCH: usize = 64;
/// The first and the longest wait between attempts of one batch.
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Why the client could not be built. Never names a URL or a header value.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("alertmanagers.headers: invalid header {0:?}")]
    Header(String),
    #[error("cannot build the alertmanager http client: {0}")]
    Build(String),
}

/// The HTTP side every Alertmanager of one configuration shares.
pub struct Http {
    client: reqwest::Client,
    bearer_token_file: Option<PathBuf>,
    basic_auth: Option<BasicAuth>,
}

impl Http {
    pub fn new(config: &AlertmanagersConfig) -> Result<Http, ClientError> {
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ClientError::Header(name.clone()))?;
            let mut header_value =
                HeaderValue::from_str(value).map_err(|_| ClientError::Header(name.clone()))?;
            header_value.set_sensitive(true);
            headers.insert(header_name, header_value);
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("model-monitor/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| ClientError::Build(error_text(error)))?;
        Ok(Http {
            client,
            bearer_token_file: config.bearer_token_file.clone(),
            basic_auth: config.basic_auth.clone(),
        })
    }

    /// Posts `alerts` to `endpoint`: the outcome, and the start of the
    /// response's body.
    async fn post(&self, endpoint: &url::Url, alerts: &[Value]) -> (Attempt, String) {
        let mut request = self.client.post(endpoint.clone()).json(alerts);
        if let Some(path) = &self.bearer_token_file {
            match read_bearer_token(path).await {
                Ok(token) => request = request.header(AUTHORIZATION, token),
                Err(error) => return retry(error.to_string()),
            }
        } else if let Some(auth) = &self.basic_auth {
            match resolve_password(&auth.password) {
                Ok(password) => request = request.basic_auth(&auth.username, Some(password)),
                Err(error) => return retry(error.to_string()),
            }
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return retry(error_text(error)),
        };
        response_outcome(response).await
    }
}

fn retry(reason: String) -> (Attempt, String) {
    (
        Attempt::Retry {
            reason,
            retry_after: None,
        },
        String::new(),
    )
}

/// One Alertmanager: its endpoint and its queue.
pub struct Target {
    /// The URL as logs and metrics show it: no credentials, no query.
    pub name: String,
    endpoint: url::Url,
    queue: Mutex<VecDeque<Value>>,
    capacity: usize,
    wake: Notify,
    metrics: AlertmanagerMetrics,
}

impl Target {
    /// The Alertmanager at `base` (with `path_prefix` before
    /// `api/v2/alerts`).
    pub fn new(
        base: &url::Url,
        path_prefix: &str,
        capacity: usize,
        metrics: AlertmanagerMetrics,
    ) -> Target {
        let mut endpoint = base.clone();
        let _ = endpoint.set_username("");
        let _ = endpoint.set_password(None);
        endpoint.set_query(None);
        endpoint.set_fragment(None);
        let prefix = format!(
            "{}/{}",
            endpoint.path().trim_end_matches('/'),
            path_prefix.trim_matches('/')
        );
        let path = format!("{}/api/v2/alerts", prefix.trim_end_matches('/'));
        endpoint.set_path(&path);
        let name = endpoint.to_string();
        Target {
            name,
            endpoint,
            queue: Mutex::new(VecDeque::new()),
            capacity,
            wake: Notify::new(),
            metrics,
        }
    }

    /// Queues `alerts` and wakes the sender; past the capacity the oldest
    /// queued alerts are dropped and counted.
    pub fn push(&self, alerts: &[Value]) {
        if alerts.is_empty() {
            return;
        }
        let mut queue = self.queue.lock().expect("no panics while held");
        queue.extend(alerts.iter().cloned());
        let excess = queue.len().saturating_sub(self.capacity);
        if excess > 0 {
            queue.drain(..excess);
            self.metrics
                .dropped
                .with_label_values(&[&self.name])
                .inc_by(excess as u64);
            tracing::warn!(alertmanager = %self.name, dropped = excess, "the alertmanager queue is full; dropped the oldest alerts");
        }
        self.metrics
            .queue_length
            .with_label_values(&[&self.name])
            .set(queue.len() as i64);
        drop(queue);
        self.wake.notify_one();
    }

    /// The alerts waiting, oldest first.
    pub fn queued(&self) -> Vec<Value> {
        let queue = self.queue.lock().expect("no panics while held");
        queue.iter().cloned().collect()
    }

    /// Takes the next batch, at most [`MAX_BATCH`] alerts.
    pub(super) fn next_batch(&self) -> Vec<Value> {
        let mut queue = self.queue.lock().expect("no panics while held");
        let count = queue.len().min(MAX_BATCH);
        let batch: Vec<Value> = queue.drain(..count).collect();
        self.metrics
            .queue_length
            .with_label_values(&[&self.name])
            .set(queue.len() as i64);
        batch
    }

    /// Sends what is queued until `stop`; each batch is tried until it is
    /// accepted, rejected, or `retry_for` has passed.
    pub async fn run(
        self: Arc<Self>,
        http: Arc<Http>,
        retry_for: Duration,
        stop: CancellationToken,
    ) {
        loop {
            let batch = self.next_batch();
            if batch.is_empty() {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = self.wake.notified() => continue,
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.send(&http, &batch, retry_for) => {}
            }
        }
    }

    /// One batch, with its retries.
    async fn send(&self, http: &Http, batch: &[Value], retry_for: Duration) {
        let labels = &[self.name.as_str()];
        let count = batch.len() as u64;
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let attempt_started = Instant::now();
            let (attempt, body) = http.post(&self.endpoint, batch).await;
            self.metrics
                .latency
                .with_label_values(labels)
                .observe(attempt_started.elapsed().as_secs_f64());
            self.metrics.sent.with_label_values(labels).inc_by(count);
            match attempt {
                Attempt::Delivered => return,
                Attempt::Reject { reason } => {
                    self.metrics.errors.with_label_values(labels).inc_by(count);
                    tracing::error!(alertmanager = %self.name, alerts = count, %reason, body = %body, "the alertmanager rejected the alerts; dropped them");
                    return;
                }
                Attempt::Retry {
                    reason,
                    retry_after,
                } => {
                    self.metrics.errors.with_label_values(labels).inc_by(count);
                    let wait = retry_after.unwrap_or_else(|| {
                        backoff(attempts, MIN_BACKOFF, MAX_BACKOFF, rand::random::<f64>())
                    });
                    if started.elapsed() + wait >= retry_for {
                        tracing::error!(alertmanager = %self.name, alerts = count, attempts, %reason, body = %body, "cannot send alerts to the alertmanager; giving up until the next resend");
                        return;
                    }
                    tracing::warn!(alertmanager = %self.name, alerts = count, attempts, %reason, body = %body, "sending alerts to the alertmanager failed; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}
