//! Alerting: when a detector's verdicts become a firing alert, when it
//! repeats and when it resolves, and what the layers above owe it: a store
//! that keeps its state across restarts and sinks that deliver its notices.
//!
//! - `alert.rs`: the records ([`AlertKey`], [`Alert`], [`AlertNotice`],
//!   [`AlertSummary`], the [`AlertPolicy`]...).
//! - `lifecycle.rs`: [`step`], one alert's pure state machine, and
//!   [`Lifecycle`], every pending and firing alert and what changed.
//! - `gate.rs`: [`Gate`], the cooldown and resolution rules that decide
//!   whether a notification reaches a receiver.
//! - `persistence.rs`: [`AlertStore`], the persistence the lifecycle needs.
//! - `sink.rs`: [`AlertSink`], where the evaluation loop hands its notices,
//!   and [`FanOut`], several sinks as one.
//!
//! Nothing here reads a clock or touches a file: the evaluation loop passes
//! the evaluation time in, and the layers above (the redb store, the webhook
//! sink) implement the traits.

mod alert;
mod gate;
mod lifecycle;
mod persistence;
mod sink;
#[cfg(test)]
pub(crate) mod tests;

pub use alert::{
    Alert, AlertKey, AlertNotice, AlertPolicy, AlertProgress, AlertState, AlertSummary,
    Observation, Progress, Transition,
};
pub use gate::{Gate, GateLedger, cooldown_passed};
pub use lifecycle::{AlertChanges, Lifecycle, Seen, repeat_number, step};
pub use persistence::{AlertStore, AlertTransaction};
pub use sink::{AlertSink, FanOut, SinkError};
