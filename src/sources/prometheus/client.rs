//! [`PromClient`], the HTTP side of the PromQL source: building requests,
//! authenticating, enforcing the timeout and the body size cap, handing the
//! body to a decoder as it arrives, and classifying failures.
//!
//! Credentials never reach an error message: the URL shown in errors has no
//! userinfo and no query string, reqwest errors are stripped of their URL,
//! and header values are never formatted.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::{AnswerDecoder, AnswerLimits, PromError, VectorSink, VectorStream};
use crate::config::{PrometheusConfig, SecretSource};

/// Sent with every request.
const USER_AGENT: &str = concat!("model-monitor/", env!("CARGO_PKG_VERSION"));

/// A PromQL API client; cheap to clone.
#[derive(Clone)]
pub struct PromClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: PrometheusConfig,
    http: reqwest::Client,
    /// The configured URL without userinfo, as [`PromClient::base_url`] shows it.
    base_url: Url,
    /// `<base path>/api/v1/query`, without userinfo.
    endpoint: Url,
    /// The endpoint as shown in errors: no userinfo, no query string.
    endpoint_display: String,
    /// Username and password written into the URL, used as basic auth when
    /// `basic_auth` is not configured.
    url_credentials: Option<(String, Option<String>)>,
}

impl std::fmt::Debug for PromClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromClient")
            .field("endpoint", &self.inner.endpoint_display)
            .finish_non_exhaustive()
    }
}

impl PromClient {
    /// Builds a client. TLS verification is always on.
    pub fn new(config: &PrometheusConfig) -> Result<PromClient, PromError> {
        let scheme = config.url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(PromError::Request(format!(
                "unsupported url scheme {scheme:?}: expected http or https"
            )));
        }
        if config.url.cannot_be_a_base() || config.url.host().is_none() {
            return Err(PromError::Request("url has no host".to_owned()));
        }
        let url_credentials = url_credentials(&config.url);
        let mut base_url = config.url.clone();
        // Neither call can fail on an http(s) URL with a host.
        let _ = base_url.set_username("");
        let _ = base_url.set_password(None);
        base_url.set_fragment(None);
        let mut endpoint = base_url.clone();
        let path = format!("{}/api/v1/query", base_url.path().trim_end_matches('/'));
        endpoint.set_path(&path);
        let mut shown = endpoint.clone();
        shown.set_query(None);
        let endpoint_display = shown.to_string();

        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| PromError::Request(format!("invalid header name {name:?}")))?;
            let mut header_value = HeaderValue::from_str(value)
                .map_err(|_| PromError::Request(format!("invalid value for header {name:?}")))?;
            // Users may put tokens into headers: keep them out of debug output.
            header_value.set_sensitive(true);
            headers.insert(header_name, header_value);
        }
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|error| PromError::Request(error_chain(&error.without_url())))?;
        Ok(PromClient {
            inner: Arc::new(Inner {
                config: config.clone(),
                http,
                base_url,
                endpoint,
                endpoint_display,
                url_credentials,
            }),
        })
    }

    /// Runs an instant query evaluated at `time` and hands the answer's
    /// body to the decoder `decoder` makes from its HTTP status, piece by
    /// piece as it arrives.
    ///
    /// The whole exchange (credentials, connection, headers, body and
    /// decoding) must finish within the configured timeout, and the body
    /// must stay within the size cap.
    pub async fn query_with<D: AnswerDecoder>(
        &self,
        query: &str,
        time: DateTime<Utc>,
        decoder: impl FnOnce(u16) -> D,
    ) -> Result<D::Output, PromError> {
        let timeout = self.inner.config.timeout;
        let exchange = async {
            let mut response = self.send(query, time).await?;
            let mut decoder = decoder(response.status().as_u16());
            let limit = self.inner.config.max_response_bytes;
            let mut received = 0u64;
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|error| self.classify(error))?
            {
                received += chunk.len() as u64;
                if received > limit {
                    return Err(PromError::TooLarge { limit });
                }
                decoder.push(&chunk)?;
            }
            decoder.finish()
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(PromError::Timeout(timeout)),
        }
    }

    /// Runs an instant query that must answer an instant vector and decodes
    /// it into `sink` as the body arrives (see [`VectorStream`]), keeping
    /// the labels named in `wanted`. Memory stays at one sample whatever
    /// the answer's size. Returns the answer's warnings; errors are those
    /// of [`PromClient::query_with`] and of the decoding. After an error the
    /// sink may have seen some samples and should be discarded.
    pub async fn query_vector_into<S: VectorSink>(
        &self,
        query: &str,
        time: DateTime<Utc>,
        wanted: &[&str],
        sink: &mut S,
    ) -> Result<Vec<String>, PromError> {
        self.query_with(query, time, |status| {
            VectorStream::new(status, wanted, sink)
        })
        .await
    }

    /// The most series and models one answer may hold
    /// (`prometheus.max_series`, `prometheus.max_models`).
    pub fn answer_limits(&self) -> AnswerLimits {
        AnswerLimits {
            series: self.inner.config.max_series,
            models: self.inner.config.max_models,
        }
    }

    /// The base URL queries go to (no credentials in it).
    pub fn base_url(&self) -> &url::Url {
        &self.inner.base_url
    }

    /// The query endpoint, `<base URL>/api/v1/query`, without credentials.
    pub fn endpoint(&self) -> &url::Url {
        &self.inner.endpoint
    }

    /// Sends the query with its credentials; the answer's headers have
    /// arrived, its body has not been read.
    async fn send(&self, query: &str, time: DateTime<Utc>) -> Result<reqwest::Response, PromError> {
        let inner = &*self.inner;
        let time_text = format_time(time);
        // The engine's own parameters (`prometheus.query_params`) go with
        // every query, in the URL of a GET and the form of a POST alike.
        let params: Vec<(&str, &str)> = [("query", query), ("time", time_text.as_str())]
            .into_iter()
            .chain(
                inner
                    .config
                    .query_params
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str())),
            )
            .collect();
        let mut request = if query.len() > inner.config.post_threshold_bytes {
            inner.http.post(inner.endpoint.clone()).form(&params)
        } else {
            inner.http.get(inner.endpoint.clone()).query(&params)
        };
        if let Some(path) = &inner.config.bearer_token_file {
            request = request.header(AUTHORIZATION, read_bearer_token(path).await?);
        } else if let Some(basic_auth) = &inner.config.basic_auth {
            let password = resolve_password(&basic_auth.password)?;
            request = request.basic_auth(&basic_auth.username, Some(password));
        } else if let Some((username, password)) = &inner.url_credentials {
            request = request.basic_auth(username, password.as_ref());
        }

        let response = request.send().await.map_err(|error| self.classify(error))?;
        let limit = inner.config.max_response_bytes;
        if response
            .content_length()
            .is_some_and(|length| length > limit)
        {
            return Err(PromError::TooLarge { limit });
        }
        Ok(response)
    }

    /// Maps a reqwest error to a [`PromError`] without its URL.
    fn classify(&self, error: reqwest::Error) -> PromError {
        if error.is_timeout() {
            return PromError::Timeout(self.inner.config.timeout);
        }
        let error = error.without_url();
        let message = error_chain(&error);
        if error.is_connect() {
            PromError::Connect {
                url: self.inner.endpoint_display.clone(),
                message,
            }
        } else {
            PromError::Request(message)
        }
    }
}

/// The evaluation time as unix seconds with milliseconds, e.g. `1700000000.250`.
fn format_time(time: DateTime<Utc>) -> String {
    let millis = time.timestamp_millis();
    format!("{}.{:03}", millis.div_euclid(1000), millis.rem_euclid(1000))
}

/// Username and password written into a URL, percent-decoded.
fn url_credentials(url: &Url) -> Option<(String, Option<String>)> {
    let decode = |text: &str| {
        url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    let username = decode(url.username());
    let password = url.password().map(decode);
    if username.is_empty() && password.is_none() {
        None
    } else {
        Some((username, password))
    }
}

/// Reads the bearer token now, so a rotated file is picked up by the next
/// request.
pub async fn read_bearer_token(path: &std::path::Path) -> Result<HeaderValue, PromError> {
    let text = tokio::fs::read_to_string(path).await.map_err(|error| {
        PromError::Credentials(format!(
            "cannot read bearer token file {}: {error}",
            path.display()
        ))
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(PromError::Credentials(format!(
            "bearer token file {} is empty",
            path.display()
        )));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        PromError::Credentials(format!(
            "bearer token in {} is not a valid header value",
            path.display()
        ))
    })?;
    value.set_sensitive(true);
    Ok(value)
}

pub fn resolve_password(source: &SecretSource) -> Result<String, PromError> {
    source.resolve().map_err(|error| match source {
        SecretSource::File(path) => PromError::Credentials(format!(
            "cannot read basic auth password file {}: {error}",
            path.display()
        )),
        SecretSource::Inline(_) => {
            PromError::Credentials(format!("cannot read basic auth password: {error}"))
        }
    })
}

/// An error and its sources, joined by `: `, skipping repeated messages.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&dyn std::error::Error> = Some(error);
    while let Some(error) = current {
        let text = error.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        current = error.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> PrometheusConfig {
        PrometheusConfig::new(url.parse().unwrap())
    }

    #[test]
    fn formats_the_evaluation_time_as_unix_seconds_with_millis() {
        let cases = [
            (1_700_000_000_250, "1700000000.250"),
            (1_700_000_000_000, "1700000000.000"),
            (5, "0.005"),
            (-1_500, "-2.500"),
        ];
        for (millis, expected) in cases {
            let time = DateTime::<Utc>::from_timestamp_millis(millis).unwrap();
            assert_eq!(format_time(time), expected, "{millis}");
        }
    }

    #[test]
    fn appends_the_api_path_to_any_base_path() {
        let cases = [
            ("http://prom:9090", "http://prom:9090/api/v1/query"),
            ("http://prom:9090/", "http://prom:9090/api/v1/query"),
            (
                "http://host/prometheus",
                "http://host/prometheus/api/v1/query",
            ),
            (
                "http://host/prometheus/",
                "http://host/prometheus/api/v1/query",
            ),
            (
                "https://u:p@host/select/0/prometheus?x=1#frag",
                "https://host/select/0/prometheus/api/v1/query?x=1",
            ),
        ];
        for (base, expected) in cases {
            let client = PromClient::new(&config(base)).unwrap();
            assert_eq!(client.endpoint().as_str(), expected, "{base}");
        }
    }

    #[test]
    fn keeps_url_credentials_out_of_shown_urls() {
        let client = PromClient::new(&config("https://alice:s3cret@host/prom?token=abc")).unwrap();
        assert_eq!(client.base_url().as_str(), "https://host/prom?token=abc");
        assert_eq!(
            client.inner.endpoint_display,
            "https://host/prom/api/v1/query"
        );
        assert!(!format!("{client:?}").contains("s3cret"));
        assert_eq!(
            client.inner.url_credentials,
            Some(("alice".to_owned(), Some("s3cret".to_owned())))
        );
    }

    #[test]
    fn decodes_percent_encoded_url_credentials() {
        let url: Url = "http://a%40b:p%2Bq+r@host/".parse().unwrap();
        assert_eq!(
            url_credentials(&url),
            Some(("a@b".to_owned(), Some("p+q+r".to_owned())))
        );
        assert_eq!(url_credentials(&"http://host/".parse().unwrap()), None);
    }

    #[test]
    fn rejects_unusable_urls_and_headers() {
        assert!(matches!(
            PromClient::new(&config("ftp://host/")),
            Err(PromError::Request(_))
        ));
        let mut bad_header = config("http://host/");
        bad_header
            .headers
            .insert("X-Token".to_owned(), "secret\nvalue".to_owned());
        let error = PromClient::new(&bad_header).unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
        let mut bad_name = config("http://host/");
        bad_name
            .headers
            .insert("bad name".to_owned(), "v".to_owned());
        assert!(PromClient::new(&bad_name).is_err());
    }

    #[test]
    fn client_is_shareable_across_tasks() {
        fn check<T: Send + Sync + Clone>() {}
        check::<PromClient>();
    }

    #[test]
    fn builds_a_verifying_tls_client() {
        // The rustls backend with the platform verifier must initialise here.
        assert!(PromClient::new(&config("https://prometheus.example:9090/")).is_ok());
    }
}
