//! Gates: whether one notification about an alert reaches one receiver,
//! decided on what earlier notifications left behind.
//!
//! - A cooldown lets a receiver hear about a model at most once per
//!   `cooldown`: a notification passes when none passed for the same scope
//!   within `cooldown` before it, and then the cooldown restarts.
//! - A receiver hears of a resolution only when it was told the alert fired:
//!   every firing notification that passes leaves the receiver owed the
//!   resolution, which the resolution then takes.
//!
//! The rules are here; what they read and write (the last time each
//! receiver passed each cooldown, the resolutions each receiver is owed) is
//! kept by a store behind [`GateLedger`], in the transaction that stores the
//! notifications, so that a crash loses both or neither.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// What decides whether a notification is stored for its receiver.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// Stored.
    Always,
    /// Stored when the receiver got nothing about `scope` (a model) within
    /// `cooldown` before `at`; then the cooldown restarts at `at`.
    Cooldown {
        scope: String,
        cooldown: Duration,
        at: DateTime<Utc>,
    },
    /// A resolution: stored only when the receiver was told the alert fired.
    Resolution,
}

/// What gates remember, per receiver: read and written inside the store's
/// transaction.
pub trait GateLedger {
    type Error;
    /// When `receiver` last passed the cooldown of `scope`.
    fn last_notified(
        &mut self,
        receiver: &str,
        scope: &str,
    ) -> Result<Option<DateTime<Utc>>, Self::Error>;
    /// Restarts the cooldown of `scope` for `receiver` at `at`.
    fn set_last_notified(
        &mut self,
        receiver: &str,
        scope: &str,
        at: DateTime<Utc>,
    ) -> Result<(), Self::Error>;
    /// Records that `receiver` is owed the resolution of `alert` (its
    /// fingerprint), told it fired at `since`.
    fn owe_resolution(
        &mut self,
        receiver: &str,
        alert: &str,
        since: DateTime<Utc>,
    ) -> Result<(), Self::Error>;
    /// Whether `receiver` was owed the resolution of `alert`; it no longer is.
    fn take_resolution(&mut self, receiver: &str, alert: &str) -> Result<bool, Self::Error>;
}

/// The cooldown rule: a notification at `at` passes when the last one that
/// passed (`last`) is `cooldown` or more before it. Pure; times count in
/// whole milliseconds, as the store keeps them.
pub fn cooldown_passed(last: Option<DateTime<Utc>>, cooldown: Duration, at: DateTime<Utc>) -> bool {
    let until = last.map(|last| {
        last.timestamp_millis()
            .saturating_add(cooldown.as_millis() as i64)
    });
    until.is_none_or(|until| at.timestamp_millis() >= until)
}

impl Gate {
    /// Whether a notification about `alert` (a fingerprint), created at
    /// `created_at`, passes for `receiver`; updates what later gates read.
    pub fn admit<L: GateLedger + ?Sized>(
        &self,
        ledger: &mut L,
        receiver: &str,
        alert: &str,
        created_at: DateTime<Utc>,
    ) -> Result<bool, L::Error> {
        match self {
            Gate::Always => {}
            Gate::Cooldown {
                scope,
                cooldown,
                at,
            } => {
                let last = ledger.last_notified(receiver, scope)?;
                if !cooldown_passed(last, *cooldown, *at) {
                    return Ok(false);
                }
                ledger.set_last_notified(receiver, scope, *at)?;
            }
            Gate::Resolution => return ledger.take_resolution(receiver, alert),
        }
        ledger.owe_resolution(receiver, alert, created_at)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cooldown_passes_once_it_has_run_out() {
        let at = |ms: i64| DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap();
        let hour = Duration::from_secs(3600);
        #[rustfmt::skip]
        let cases = [
            (None, 0, true),
            (Some(0), 0, false),
            (Some(0), 3_599_999, false),
            (Some(0), 3_600_000, true),
            (Some(0), 7_200_000, true),
            (Some(10), 3_600_009, false),
        ];
        for (last, now, expected) in cases {
            assert_eq!(
                cooldown_passed(last.map(at), hour, at(now)),
                expected,
                "last {last:?}, now {now}"
            );
        }
    }
}
