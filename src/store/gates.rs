//! What the notification gates remember, per receiver: the last time each
//! cooldown was passed (`cooldowns`) and the resolutions owed (`notified`),
//! as the [`GateLedger`] whose rules are in `crate::alerting`.

use chrono::{DateTime, Utc};
use redb::ReadableTable;

use super::{AtPath, StoreError, Transaction};
use crate::alerting::GateLedger;

impl GateLedger for Transaction<'_> {
    type Error = StoreError;

    fn last_notified(
        &mut self,
        receiver: &str,
        scope: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let last = self.cooldowns.get((receiver, scope)).at(self.path)?;
        Ok(last.and_then(|ms| DateTime::from_timestamp_millis(ms.value())))
    }

    fn set_last_notified(
        &mut self,
        receiver: &str,
        scope: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.cooldowns
            .insert((receiver, scope), at.timestamp_millis())
            .at(self.path)?;
        Ok(())
    }

    fn owe_resolution(
        &mut self,
        receiver: &str,
        alert: &str,
        since: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.notified
            .insert((receiver, alert), since.timestamp_millis())
            .at(self.path)?;
        Ok(())
    }

    fn take_resolution(&mut self, receiver: &str, alert: &str) -> Result<bool, StoreError> {
        let owed = self.notified.remove((receiver, alert)).at(self.path)?;
        Ok(owed.is_some())
    }
}
