//! Alert delivery: receivers configured under `webhooks:`, a durable outbox
//! and one delivery task per receiver.
//!
//! The [`Notifier`] is the evaluation loop's
//! [`AlertSink`](crate::alerting::AlertSink): for every alert notice it
//! picks the receivers that want it (`on`, `match`, `send_resolved`),
//! renders each body once (Slack, Alertmanager or a template), and stores
//! the notifications that pass their gates together with the lifecycle's
//! changes in the store ([`crate::store`]), in one transaction, before any
//! attempt is made. Then each receiver's [`delivery::Worker`] sends its
//! queue.
//!
//! - `receiver.rs`: a [`Receiver`] resolved from its config, and which
//!   notices it wants.
//! - `notifier.rs`: the [`Notifier`], from notices to stored notifications,
//!   and the delivery status.
//! - `holding.rs`: notifications held in memory while the store cannot
//!   write.
//! - `reconfigure.rs`: a reload's receivers, swapped in while delivery
//!   goes on.
//! - `delivery.rs`: sending, retries and dead letters.
//! - `payload.rs`: the bodies.
//! - `ids.rs`: each notification's `webhook-id`, derived from the alert's
//!   identity, episode, status and repeat number, so that replicas agree.
//!
//! URLs, header values and secrets are resolved at start and at each
//! reload, and never logged, shown in the status API or put into an error message.

pub mod delivery;
mod holding;
pub mod ids;
mod notifier;
pub mod payload;
mod receiver;
mod reconfigure;

pub use holding::HELD_LIMIT;
pub use notifier::{Notifier, NotifierError, Routing};
pub use receiver::{Receiver, ReceiverError, matches, signer};
pub use reconfigure::ReceiverChanges;
