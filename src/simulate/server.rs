//! The HTTP face of the simulation: `/metrics`, a landing page at `/` and
//! `/-/healthy`.
//!
//! This is the only part of the simulation that reads a clock. [`router`]
//! measures elapsed time with `tokio::time::Instant` from the moment it is
//! built; [`router_with_clock`] takes any clock, so tests can set the time a
//! scrape sees. Each scrape advances the simulation to the current elapsed
//! time and renders it under one mutex, on a blocking thread because ten
//! thousand models take milliseconds.
//!
//! Ten thousand models make a 30 MB body. Rather than allocating (and
//! page-faulting) that much on every scrape, the buffer of a finished
//! response goes back to a one-slot pool and the next scrape renders into it.

use super::exposition::CONTENT_TYPE;
use super::{SimulateOptions, Simulation};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Serves `/metrics` on the listener until `shutdown` completes.
///
/// Invalid options fail with [`std::io::ErrorKind::InvalidInput`] before
/// anything is served.
pub async fn serve(
    options: SimulateOptions,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let simulation = Simulation::new(options)
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
    axum::serve(listener, router(simulation))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The routes of the simulated model server; its clock starts now.
pub fn router(simulation: Simulation) -> Router {
    let start = Instant::now();
    router_with_clock(simulation, move || start.elapsed())
}

/// The routes of the simulated model server, reading the elapsed simulated
/// time from `clock` on every scrape. The clock should never go back; if it
/// does, scrapes repeat the latest state.
pub fn router_with_clock(
    simulation: Simulation,
    clock: impl Fn() -> Duration + Send + Sync + 'static,
) -> Router {
    let shared = Arc::new(Shared {
        simulation: Mutex::new(simulation),
        clock: Box::new(clock),
        last_len: AtomicUsize::new(0),
        spare: Mutex::new(None),
    });
    Router::new()
        .route("/", get(landing))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy))
        .with_state(shared)
}

struct Shared {
    simulation: Mutex<Simulation>,
    /// Returns the elapsed simulated time.
    clock: Box<dyn Fn() -> Duration + Send + Sync>,
    /// The length of the last scrape, so a new buffer is allocated once at
    /// the right size.
    last_len: AtomicUsize,
    /// The buffer of the last response once it has been sent.
    spare: Mutex<Option<String>>,
}

/// A rendered body that returns its buffer to [`Shared::spare`] when the
/// response is done with it.
struct PooledBody {
    text: String,
    home: Arc<Shared>,
}

impl AsRef<[u8]> for PooledBody {
    fn as_ref(&self) -> &[u8] {
        self.text.as_bytes()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        let text = std::mem::take(&mut self.text);
        *self
            .home
            .spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(text);
    }
}

impl Shared {
    fn scrape(self: Arc<Shared>, elapsed: Duration) -> Bytes {
        let spare = self
            .spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let mut out = match spare {
            Some(mut spare) => {
                spare.clear();
                spare
            }
            None => String::with_capacity(self.last_len.load(Ordering::Relaxed) + 4096),
        };
        {
            let mut simulation = self
                .simulation
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            simulation.advance_to(elapsed);
            simulation.render(&mut out);
        }
        self.last_len.store(out.len(), Ordering::Relaxed);
        Bytes::from_owner(PooledBody {
            text: out,
            home: self,
        })
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let elapsed = (shared.clock)();
    match tokio::task::spawn_blocking(move || shared.scrape(elapsed)).await {
        Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rendering the simulated metrics failed: {error}"),
        )
            .into_response(),
    }
}

async fn landing(State(shared): State<Arc<Shared>>) -> Html<String> {
    let (options, drift_line) = {
        let simulation = shared
            .simulation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let options = simulation.options().clone();
        let drift_line = match &options.drift_model {
            Some(name) => format!(
                "<p>{} drifts after {} s: confidence falls, latency rises.</p>",
                escape(name),
                options.drift_after.as_secs_f64()
            ),
            None => "<p>No model drifts.</p>".to_owned(),
        };
        (options, drift_line)
    };
    Html(format!(
        "<!DOCTYPE html>\n<html><head><title>model-monitor simulate</title></head><body>\n\
         <h1>model-monitor simulate</h1>\n\
         <p>A synthetic model server: {} models (model-0 .. model-{}), \
         {} requests per second each, seed {}.</p>\n{}\n\
         <p><a href=\"/metrics\">Metrics</a></p>\n</body></html>\n",
        options.models,
        options.models.saturating_sub(1),
        options.rate,
        options.seed,
        drift_line
    ))
}

async fn healthy() -> &'static str {
    "Healthy.\n"
}

/// Escapes the characters HTML gives meaning to.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// `model-monitor simulate`: binds `listen` and serves until `shutdown`.
pub async fn run(
    options: SimulateOptions,
    listen: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen on {listen}: {error}"))?;
    tracing::info!(address = %listener.local_addr()?, models = options.models, "simulating");
    serve(options, listener, async move { shutdown.cancelled().await }).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escaping_covers_markup_characters() {
        assert_eq!(
            escape("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
