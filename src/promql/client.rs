//! The HTTP side of the PromQL client.

use chrono::{DateTime, Utc};

use super::{PromError, QueryResponse};
use crate::config::PrometheusConfig;

/// A PromQL API client; cheap to clone.
#[derive(Clone)]
pub struct PromClient {
    _config: std::sync::Arc<PrometheusConfig>,
}

impl PromClient {
    /// Builds a client. TLS verification is always on.
    pub fn new(config: &PrometheusConfig) -> Result<PromClient, PromError> {
        todo!("{config:?}")
    }

    /// Runs an instant query evaluated at `time`.
    pub async fn query(
        &self,
        query: &str,
        time: DateTime<Utc>,
    ) -> Result<QueryResponse, PromError> {
        todo!("{query} {time}")
    }

    /// The base URL queries go to (no credentials in it).
    pub fn base_url(&self) -> &url::Url {
        &self._config.url
    }
}
