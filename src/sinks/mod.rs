//! Sinks: where an evaluation's results go.
//!
//! - [`exporter`]: the HTTP face, `/metrics` (drift gauges rendered from the
//!   last snapshot), health, readiness and the status API.
//! - [`alertmanager`]: the sidecar's alerts pushed to Alertmanager's API v2.
//! - [`webhooks`]: alert notifications to Slack, Alertmanager-compatible and
//!   templated receivers, through the durable outbox in [`crate::store`].

pub mod alertmanager;
pub mod exporter;
pub mod webhooks;
