//! Sinks: where an evaluation's results go.
//!
//! - [`exporter`]: the HTTP face, `/metrics` (drift gauges rendered from the
//!   last snapshot), health, readiness and the status API.
//! - [`webhooks`]: alert notifications to Slack, Alertmanager-compatible and
//!   templated receivers, through the durable outbox in [`crate::store`].

pub mod exporter;
pub mod webhooks;
