//! Response bodies written on a blocking thread in pieces and streamed out
//! as each piece is written: `/metrics` and `/api/v1/status` with many
//! models are tens of megabytes, and no handler holds one whole.
//!
//! A bounded channel carries the pieces: a client that reads slowly holds
//! the writer back, one that goes away stops it (the writer's `send`
//! returns false), so a request holds at most a few pieces however large
//! the body and however many requests run at once.

use axum::body::Body;
use bytes::Bytes;

/// Bytes per piece of a streamed body.
pub const PIECE_BYTES: usize = 256 * 1024;

/// Pieces written ahead of what the client has taken.
const PIECES_AHEAD: usize = 2;

/// A body whose pieces `write` hands, in order, to the `send` it is given,
/// on a blocking thread; `send` returns false once the client is gone, and
/// `write` should then stop.
pub fn body_written_in_pieces<F>(write: F) -> Body
where
    F: FnOnce(&mut dyn FnMut(Bytes) -> bool) + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(PIECES_AHEAD);
    tokio::task::spawn_blocking(move || {
        write(&mut |piece| tx.blocking_send(piece).is_ok());
    });
    // Fused: the gzip encoder polls its source once more after the end.
    let body = futures::StreamExt::fuse(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|piece| (Ok::<_, std::convert::Infallible>(piece), rx))
    }));
    Body::from_stream(body)
}
