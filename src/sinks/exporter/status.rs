//! `/api/v1/status`: the configuration summary, the last evaluation, the
//! alerts and the webhook deliveries as one JSON document, written model by
//! model from the published snapshot into a streamed body (as `/metrics`
//! is), so that a call holds a few 256 KB pieces rather than the whole
//! document, however many models there are and however many calls run at
//! once.
//!
//! `?limit=N` lists at most N models, and `?after=CURSOR` starts after the
//! model a cursor names: a paged answer adds `models_total` (every model of
//! the snapshot) and `next` (the cursor to pass as `after` for the next
//! page, or null after the last model) to `data.evaluation`. Without either
//! parameter the document is what it always was.

use std::ops::Bound;

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

use super::AppState;
use super::pieces::{PIECE_BYTES, body_written_in_pieces};
use crate::engine::{ModelEntry, Snapshot};
use crate::model::{ModelId, ModelKey};

/// Which models a call lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// List the models after this one (in the snapshot's order).
    pub after: Option<ModelId>,
    /// List at most this many.
    pub limit: Option<usize>,
}

impl Page {
    /// Whether the call asked for a page (the answer then says how to go on).
    fn paged(&self) -> bool {
        self.after.is_some() || self.limit.is_some()
    }

    /// Reads `limit` and `after` from a URL query string; anything else, a
    /// limit that is not a whole number of at least 1, or a cursor this
    /// server did not write is an error that names it.
    pub fn from_query(query: Option<&str>) -> Result<Page, String> {
        let mut page = Page::default();
        let pairs = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes());
        for (name, value) in pairs {
            match &*name {
                "limit" => {
                    let limit = value.parse::<usize>().ok().filter(|limit| *limit > 0);
                    page.limit = Some(limit.ok_or_else(|| {
                        format!("limit must be a whole number of at least 1, got {value:?}")
                    })?);
                }
                "after" => page.after = Some(parse_cursor(&value)?),
                other => {
                    return Err(format!(
                        "unknown parameter {other:?} (the status api takes limit and after)"
                    ));
                }
            }
        }
        Ok(page)
    }
}

/// The cursor of a model: its source and labels, in its key's order, as a
/// JSON array of strings, hex-encoded so that it needs no escaping in a
/// URL. Clients pass it back as they got it.
pub fn cursor(id: &ModelId) -> String {
    let mut parts = vec![id.source.as_str()];
    for (name, value) in &id.model.0 {
        parts.push(name);
        parts.push(value);
    }
    let json = serde_json::to_vec(&parts).unwrap_or_default();
    let mut hex = String::with_capacity(2 * json.len());
    for byte in json {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

fn parse_cursor(text: &str) -> Result<ModelId, String> {
    let invalid = || format!("after {text:?} is not a cursor from this status api's next field");
    if !text.len().is_multiple_of(2) || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let bytes = (0..text.len())
        .step_by(2)
        .map(|at| {
            text.get(at..at + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    let parts: Vec<String> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let Some((source, labels)) = parts.split_first() else {
        return Err(invalid());
    };
    if !labels.len().is_multiple_of(2) {
        return Err(invalid());
    }
    Ok(ModelId {
        source: source.clone(),
        model: ModelKey(
            labels
                .chunks(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect(),
        ),
    })
}

/// What the document shows besides the snapshot.
#[derive(Debug, Clone)]
pub struct Head {
    pub ready: bool,
    pub config: serde_json::Value,
    pub webhooks: Option<serde_json::Value>,
}

/// `GET /api/v1/status[?limit=N][&after=CURSOR]`.
pub async fn serve(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let page = match Page::from_query(query.as_deref()) {
        Ok(page) => page,
        Err(error) => {
            let body = serde_json::json!({"status": "error", "error": error});
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
    };
    let snapshot = state.monitor.snapshot();
    let head = Head {
        ready: state.monitor.is_ready(),
        config: state.config_summary.current(),
        webhooks: state.monitor.delivery_status(),
    };
    let body = body_written_in_pieces(move |send| {
        write_status_in_pieces(&snapshot, &head, &page, PIECE_BYTES, send);
    });
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Writes the status document of `snapshot` and `head` for `page`, handing
/// it to `sink` in pieces of at least `chunk` bytes (one model over at
/// most; the last piece shorter), in order. Stops early when `sink`
/// returns false. Returns whether every piece was taken.
pub fn write_status_in_pieces(
    snapshot: &Snapshot,
    head: &Head,
    page: &Page,
    chunk: usize,
    sink: &mut dyn FnMut(Bytes) -> bool,
) -> bool {
    let mut out = Writer {
        buffer: Vec::with_capacity(chunk.min(PIECE_BYTES) + 4096),
        chunk,
        sink,
    };
    let (alerts, pending, firing) = (
        &snapshot.alerts,
        snapshot.alerts_pending,
        snapshot.alerts_firing,
    );
    let mut ok = out.raw(r#"{"status":"success","data":{"version":"#)
        && out.value(env!("CARGO_PKG_VERSION"))
        && out.raw(r#","ready":"#)
        && out.value(&head.ready)
        && out.raw(r#","config":"#)
        && out.value(&head.config)
        && out.raw(r#","evaluation":{"timestamp":"#)
        && out.value(&snapshot.timestamp)
        && out.raw(r#","duration_seconds":"#)
        && out.value(&snapshot.duration_seconds)
        && out.raw(r#","evaluations":"#)
        && out.value(&snapshot.evaluations)
        && out.raw(r#","models":["#);
    let start = page
        .after
        .as_ref()
        .map_or(Bound::Unbounded, Bound::Excluded);
    let mut models = snapshot.models.range((start, Bound::Unbounded)).peekable();
    let limit = page.limit.unwrap_or(usize::MAX);
    let mut last = None;
    let mut listed = 0;
    while ok && listed < limit {
        let Some((id, signals)) = models.next() else {
            break;
        };
        ok = (listed == 0 || out.raw(",")) && out.value(&ModelEntry::new(id, signals));
        listed += 1;
        last = Some(id);
    }
    ok = ok
        && out.raw(r#"],"sources":"#)
        && out.value(&snapshot.sources)
        && alerts_and_counts(&mut out, alerts, pending, firing);
    if ok && page.paged() {
        let next = last.filter(|_| models.peek().is_some()).map(cursor);
        ok = out.raw(r#","models_total":"#)
            && out.value(&snapshot.models.len())
            && out.raw(r#","next":"#)
            && out.value(&next);
    }
    ok = ok
        && out.raw("}")
        && alerts_and_counts(&mut out, alerts, pending, firing)
        && out.raw(r#","webhooks":"#)
        && out.value(&head.webhooks)
        && out.raw("}}");
    ok && out.finish()
}

/// `,"alerts":[...],"alerts_pending":N,"alerts_firing":N`, which the
/// document has twice (in `data` and in `data.evaluation`).
fn alerts_and_counts<T: Serialize>(
    out: &mut Writer<'_>,
    alerts: &[T],
    pending: usize,
    firing: usize,
) -> bool {
    out.raw(r#","alerts":"#)
        && out.value(alerts)
        && out.raw(r#","alerts_pending":"#)
        && out.value(&pending)
        && out.raw(r#","alerts_firing":"#)
        && out.value(&firing)
}

/// The piece being written, handed on once it holds `chunk` bytes.
struct Writer<'a> {
    buffer: Vec<u8>,
    chunk: usize,
    sink: &'a mut dyn FnMut(Bytes) -> bool,
}

impl Writer<'_> {
    fn raw(&mut self, text: &str) -> bool {
        self.buffer.extend_from_slice(text.as_bytes());
        self.flush_full()
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> bool {
        if let Err(error) = serde_json::to_writer(&mut self.buffer, value) {
            // The client sees a body that does not parse.
            tracing::warn!(%error, "the status document could not be written");
            return false;
        }
        self.flush_full()
    }

    fn flush_full(&mut self) -> bool {
        if self.buffer.len() < self.chunk {
            return true;
        }
        let piece = std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(self.chunk.min(PIECE_BYTES) + 4096),
        );
        (self.sink)(Bytes::from(piece))
    }

    /// Hands on the rest.
    fn finish(&mut self) -> bool {
        self.buffer.is_empty() || (self.sink)(Bytes::from(std::mem::take(&mut self.buffer)))
    }
}

#[cfg(test)]
mod tests;
