//! Delivery: one task per receiver takes its notifications from the outbox
//! in order and sends them until each gets a 2xx, is rejected, or expires.
//!
//! - Each attempt has the receiver's `timeout`.
//! - A connection error, a timeout, 408, 429 and 5xx are retried after an
//!   exponential backoff with jitter (`min_backoff` doubling up to
//!   `max_backoff`), or after `Retry-After` (seconds or an HTTP date) on 429
//!   and 503.
//! - Any other status (4xx, an unfollowed 3xx) moves the notification to the
//!   dead-letter table: it is never retried forever.
//! - A notification older than `max_age` expires into the dead-letter table.
//! - Signed receivers get Standard Webhooks headers; `webhook-id` is the
//!   stored notification id, `webhook-timestamp` the time of the attempt.
//!
//! Receivers share nothing but the outbox file: a slow or dead receiver
//! delays only its own queue. On shutdown an attempt in flight gets a
//! deadline; whatever is not delivered stays in the outbox for the next start.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderValue};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Receiver;
use crate::store::{DeadLetter, Notification, Store, StoreError};
use crate::telemetry::SelfMetrics;

/// How long an attempt in flight may go on after shutdown starts.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// The first and the longest wait before writing an attempt's outcome
/// again, while the store cannot write.
const STORE_RETRY_MIN: Duration = Duration::from_millis(500);
const STORE_RETRY_MAX: Duration = Duration::from_secs(10);

/// A write of an attempt's outcome to the store.
type StoreWrite = Arc<dyn Fn(&Store) -> Result<(), StoreError> + Send + Sync>;

/// Longest part of a rejecting response's body kept in the dead letter.
const REASON_BODY_CHARS: usize = 200;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered,
    /// Worth another attempt, after `retry_after` when the receiver said so.
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Not worth another attempt.
    Reject {
        reason: String,
    },
}

/// The wait before attempt `attempts + 1` after `attempts` failures:
/// `min * 2^(attempts - 1)` capped at `max`, of which a random half
/// (`jitter` in [0, 1)) is kept, so receivers recovering from an outage are
/// not hit by every sender at once.
pub fn backoff(attempts: u32, min: Duration, max: Duration, jitter: f64) -> Duration {
    let exponent = attempts.saturating_sub(1).min(32);
    let base = min
        .checked_mul(1u32 << exponent.min(31))
        .unwrap_or(max)
        .min(max);
    base / 2 + base.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
}

/// Reads a `Retry-After` value: delay seconds, or an HTTP date (a date in
/// the past means now).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The outcome of an HTTP status (with its `Retry-After` header, if any).
pub fn classify(status: u16, retry_after: Option<&str>, now: SystemTime) -> Attempt {
    match status {
        200..=299 => Attempt::Delivered,
        408 | 429 | 500..=599 => Attempt::Retry {
            reason: format!("http {status}"),
            retry_after: if matches!(status, 429 | 503) {
                retry_after.and_then(|v| parse_retry_after(v, now))
            } else {
                None
            },
        },
        _ => Attempt::Reject {
            reason: format!("http {status}"),
        },
    }
}

/// An error's message and causes, with no URL in it.
pub fn error_text(error: reqwest::Error) -> String {
    let timeout = error.is_timeout();
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if timeout && !text.contains("timed out") {
        text.push_str(" (timed out)");
    }
    text
}

/// Sends one notification once.
pub async fn attempt(
    client: &reqwest::Client,
    receiver: &Receiver,
    notification: &Notification,
) -> Attempt {
    let mut headers = HeaderMap::new();
    headers.insert(
        reqwest::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        reqwest::header::USER_AGENT,
        HeaderValue::from_static(concat!("model-monitor/", env!("CARGO_PKG_VERSION"))),
    );
    for (name, value) in receiver.headers.iter() {
        headers.insert(name.clone(), value.clone());
    }
    if let Some(signer) = &receiver.signer {
        let timestamp = Utc::now().timestamp();
        match signer.sign(&notification.id, timestamp, notification.body.as_bytes()) {
            Ok(signature) => {
                for (name, value) in [
                    (standardwebhooks::HEADER_WEBHOOK_ID, notification.id.clone()),
                    (
                        standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
                        timestamp.to_string(),
                    ),
                    (standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature),
                ] {
                    if let Ok(value) = HeaderValue::from_str(&value) {
                        headers.insert(name, value);
                    }
                }
            }
            Err(error) => {
                return Attempt::Reject {
                    reason: format!("cannot sign: {error}"),
                };
            }
        }
    } else if let Ok(value) = HeaderValue::from_str(&notification.id) {
        // Unsigned receivers can deduplicate too.
        headers.insert(standardwebhooks::HEADER_WEBHOOK_ID, value);
    }
    let request = client
        .request(receiver.method.clone(), receiver.url.clone())
        .timeout(receiver.config.timeout)
        .headers(headers)
        .body(notification.body.clone());
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            return Attempt::Retry {
                reason: error_text(error),
                retry_after: None,
            };
        }
    };
    let (outcome, excerpt) = response_outcome(response).await;
    match outcome {
        Attempt::Reject { reason } if !excerpt.is_empty() => Attempt::Reject {
            reason: format!("{reason}: {excerpt}"),
        },
        outcome => outcome,
    }
}

/// What a response's status (and `Retry-After`) makes of an attempt, and
/// the start of its body, trimmed. The body is read (bounded by the
/// request's timeout) so the connection can be reused.
pub async fn response_outcome(response: reqwest::Response) -> (Attempt, String) {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let outcome = classify(status, retry_after.as_deref(), SystemTime::now());
    let body = response.text().await.unwrap_or_default();
    let excerpt: String = body.trim().chars().take(REASON_BODY_CHARS).collect();
    (outcome, excerpt)
}

/// Runs a blocking store operation off the async threads.
async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> T + Send + 'static,
) -> T {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .expect("store operations do not panic")
}

/// One receiver's delivery loop.
pub struct Worker {
    /// The receiver's name, which a reload never changes.
    pub name: String,
    /// The receiver's settings: a reload swaps them, and the next attempt
    /// uses the new ones.
    pub receiver: Arc<arc_swap::ArcSwap<Receiver>>,
    pub store: Arc<Store>,
    pub client: reqwest::Client,
    pub metrics: Arc<SelfMetrics>,
    /// Signalled when the receiver's queue got a notification.
    pub wake: Arc<Notify>,
    pub shutdown: CancellationToken,
}

impl Worker {
    fn name(&self) -> &str {
        &self.name
    }

    /// Refreshes the queue and dead-letter gauges. Sequences grow with
    /// time, so the head is the oldest notification.
    async fn refresh_gauges(&self, head: Option<&Notification>, depth: u64) {
        let name = self.name().to_owned();
        self.metrics
            .webhook_queue_depth
            .with_label_values(&[&name])
            .set(depth as i64);
        self.metrics.webhook_oldest_pending.set_oldest(
            &name,
            head.map(|n| n.created_at.timestamp_millis() as f64 / 1000.0),
        );
        let counts = blocking(&self.store, move |o| o.counts(&name)).await;
        if let Ok((_, dead)) = counts {
            self.metrics
                .webhook_dead_letters
                .with_label_values(&[self.name()])
                .set(dead as i64);
        }
    }

    /// Delivers until shutdown.
    pub async fn run(self) {
        let name = self.name().to_owned();
        loop {
            if self.shutdown.is_cancelled() {
                break;
            }
            let receiver = name.clone();
            let (head, depth) = match blocking(&self.store, move |o| o.head(&receiver)).await {
                Ok(head) => head,
                Err(error) => {
                    tracing::error!(receiver = %name, %error, "cannot read the outbox");
                    tokio::select! {
                        _ = self.shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                    }
                }
            };
            self.refresh_gauges(head.as_ref().map(|(_, n)| n), depth)
                .await;
            let Some((sequence, notification)) = head else {
                tokio::select! {
                    _ = self.shutdown.cancelled() => break,
                    _ = self.wake.notified() => continue,
                }
            };
            let now = Utc::now();
            let receiver = self.receiver.load_full();
            let config = &receiver.config;
            let expires = notification.created_at
                + chrono::Duration::from_std(config.max_age).unwrap_or(chrono::Duration::MAX);
            if now >= expires {
                self.expire(sequence, notification, now).await;
                continue;
            }
            if let Some(next) = notification.next_attempt_at
                && next > now
            {
                let wait = (next.min(expires) - now).to_std().unwrap_or_default();
                tokio::select! {
                    _ = self.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
            let started = std::time::Instant::now();
            let outcome = tokio::select! {
                outcome = attempt(&self.client, &receiver, &notification) => outcome,
                _ = async {
                    self.shutdown.cancelled().await;
                    tokio::time::sleep(SHUTDOWN_DEADLINE).await;
                } => {
                    tracing::warn!(receiver = %name, id = %notification.id, "delivery abandoned at shutdown; it stays in the outbox");
                    break;
                }
            };
            self.metrics
                .webhook_delivery_duration
                .with_label_values(&[&name])
                .observe(started.elapsed().as_secs_f64());
            self.settle(sequence, notification, outcome, expires).await;
        }
        tracing::debug!(receiver = %name, "delivery stopped");
    }

    async fn settle(
        &self,
        sequence: u64,
        mut notification: Notification,
        outcome: Attempt,
        expires: DateTime<Utc>,
    ) {
        let name = self.name().to_owned();
        let count = |outcome: &str| {
            self.metrics
                .webhook_deliveries
                .with_label_values(&[name.as_str(), outcome])
                .inc();
        };
        notification.attempts += 1;
        let receiver = name.clone();
        let write: StoreWrite = match outcome {
            Attempt::Delivered => {
                count("success");
                tracing::info!(receiver = %name, id = %notification.id, attempts = notification.attempts, "notification delivered");
                Arc::new(move |o| o.complete(&receiver, sequence))
            }
            Attempt::Reject { reason } => {
                count("dead_letter");
                tracing::warn!(receiver = %name, id = %notification.id, %reason, "notification rejected; moved to the dead letters");
                let letter = DeadLetter {
                    notification,
                    reason,
                    dead_at: Utc::now(),
                };
                Arc::new(move |o| o.dead_letter(&receiver, sequence, &letter))
            }
            Attempt::Retry {
                reason,
                retry_after,
            } => {
                let settings = self.receiver.load();
                let config = &settings.config;
                let delay = retry_after.unwrap_or_else(|| {
                    backoff(
                        notification.attempts,
                        config.min_backoff,
                        config.max_backoff,
                        rand::random::<f64>(),
                    )
                });
                let next =
                    Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                if next >= expires {
                    self.expire(sequence, notification, Utc::now()).await;
                    return;
                }
                count("failure");
                tracing::warn!(receiver = %name, id = %notification.id, attempts = notification.attempts, %reason, retry_in = ?delay, "delivery failed; will retry");
                notification.last_error = Some(reason);
                notification.next_attempt_at = Some(next);
                Arc::new(move |o| o.update(&receiver, sequence, &notification))
            }
        };
        self.write_until_done(write).await;
    }

    /// Writes an attempt's outcome, again and again while the store cannot
    /// write (a full disk), so that a delivered notification is not sent
    /// again; at shutdown it gives up, and the notification stays in the
    /// outbox as it was.
    async fn write_until_done(&self, write: StoreWrite) {
        let mut wait = STORE_RETRY_MIN;
        loop {
            let attempt = write.clone();
            let error = match blocking(&self.store, move |o| attempt(o)).await {
                Ok(()) => return,
                Err(error) => error,
            };
            tracing::error!(receiver = %self.name(), %error, retry_in = ?wait, "cannot update the outbox; will retry");
            tokio::select! {
                _ = self.shutdown.cancelled() => {
                    tracing::warn!(receiver = %self.name(), "stopping before the outbox took an attempt's outcome; the notification stays as it was");
                    return;
                }
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(STORE_RETRY_MAX);
        }
    }

    async fn expire(&self, sequence: u64, notification: Notification, now: DateTime<Utc>) {
        let name = self.name().to_owned();
        self.metrics
            .webhook_deliveries
            .with_label_values(&[name.as_str(), "expired"])
            .inc();
        tracing::warn!(receiver = %name, id = %notification.id, attempts = notification.attempts, "notification expired (older than max_age); moved to the dead letters");
        let reason = format!(
            "expired after {} attempt(s); last error: {}",
            notification.attempts,
            notification.last_error.as_deref().unwrap_or("none")
        );
        let letter = DeadLetter {
            notification,
            reason,
            dead_at: now,
        };
        let receiver = name.clone();
        self.write_until_done(Arc::new(move |o| {
            o.dead_letter(&receiver, sequence, &letter)
        }))
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_half_jitter() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(60));
        #[rustfmt::skip]
        let cases = [
            // (attempts, jitter, expected)
            (1, 0.0, Duration::from_millis(500)),
            (1, 0.999_999, Duration::from_millis(999)),
            (2, 0.0, Duration::from_secs(1)),
            (3, 1.0, Duration::from_secs(4)),
            (7, 0.0, Duration::from_secs(30)),
            (7, 1.0, Duration::from_secs(60)),
            (40, 1.0, Duration::from_secs(60)),
            (u32::MAX, 0.5, Duration::from_secs(45)),
        ];
        for (attempts, jitter, expected) in cases {
            let got = backoff(attempts, min, max, jitter);
            assert!(
                got.abs_diff(expected) < Duration::from_millis(2),
                "attempts {attempts}, jitter {jitter}: {got:?} != {expected:?}"
            );
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        #[rustfmt::skip]
        let cases = [
            ("120", Some(Duration::from_secs(120))),
            (" 0 ", Some(Duration::ZERO)),
            ("Wed, 21 Oct 2015 07:29:00 GMT", Some(Duration::from_secs(60))),
            ("Wed, 21 Oct 2015 07:00:00 GMT", Some(Duration::ZERO)),
            ("-5", None),
            ("soon", None),
            ("", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_retry_after(value, now), expected, "{value:?}");
        }
    }

    #[test]
    fn statuses_are_delivered_retried_or_rejected() {
        let now = SystemTime::UNIX_EPOCH;
        let retry = |after: Option<u64>| Attempt::Retry {
            reason: String::new(),
            retry_after: after.map(Duration::from_secs),
        };
        let reject = Attempt::Reject {
            reason: String::new(),
        };
        #[rustfmt::skip]
        let cases = [
            (200, None, Attempt::Delivered),
            (204, None, Attempt::Delivered),
            (408, None, retry(None)),
            (429, Some("7"), retry(Some(7))),
            (503, Some("3"), retry(Some(3))),
            (500, Some("3"), retry(None)),
            (502, None, retry(None)),
            (429, Some("junk"), retry(None)),
            (400, None, reject.clone()),
            (401, None, reject.clone()),
            (404, Some("5"), reject.clone()),
            (302, None, reject.clone()),
        ];
        for (status, header, expected) in cases {
            let got = match classify(status, header, now) {
                Attempt::Retry { retry_after, .. } => Attempt::Retry {
                    reason: String::new(),
                    retry_after,
                },
                Attempt::Reject { .. } => Attempt::Reject {
                    reason: String::new(),
                },
                other => other,
            };
            assert_eq!(got, expected, "{status} {header:?}");
        }
    }
}
