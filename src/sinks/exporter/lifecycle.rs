//! The lifecycle API, as Prometheus has it: `POST` (or `PUT`) `/-/reload`
//! re-reads the configuration file when `run` was started with
//! `--web.enable-lifecycle`. It answers 200 when the new configuration was
//! taken, 500 with every problem in the body (one a line, as
//! `check-config` prints them) when it was not, 403 without the flag, and
//! 405 to any other method. The reload itself is the caller's
//! ([`Reload`]): the exporter only routes to it.
//!
//! Also [`ConfigSummary`], the configuration the status API shows, which a
//! reload replaces.

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use futures::future::BoxFuture;

/// What `/-/reload` runs: a reload of the configuration file, with a
/// message on success and the problem lines on failure.
pub trait Reload: Send + Sync + 'static {
    fn reload(&self) -> BoxFuture<'_, Result<String, Vec<String>>>;
}

/// The lifecycle routes (`/-/reload`); `reload` is `None` when the
/// lifecycle API is not enabled.
pub fn routes(reload: Option<Arc<dyn Reload>>) -> Router {
    Router::new()
        .route("/-/reload", reload_route())
        .with_state(reload)
}

fn reload_route() -> MethodRouter<Option<Arc<dyn Reload>>> {
    get(only_post).post(reload).put(reload).fallback(only_post)
}

async fn only_post() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        "only POST or PUT requests allowed\n",
    )
        .into_response()
}

async fn reload(State(reload): State<Option<Arc<dyn Reload>>>) -> Response {
    let Some(reload) = reload else {
        return (
            StatusCode::FORBIDDEN,
            "lifecycle APIs are not enabled (start with --web.enable-lifecycle)\n",
        )
            .into_response();
    };
    match reload.reload().await {
        Ok(message) => (StatusCode::OK, format!("{message}\n")).into_response(),
        Err(problems) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "failed to reload the configuration; the running one is kept:\n{}\n",
                problems.join("\n")
            ),
        )
            .into_response(),
    }
}

/// The configuration as the status API shows it (see
/// [`config_summary`](super::config_summary)); clones share it, and a
/// reload replaces it.
#[derive(Clone)]
pub struct ConfigSummary(Arc<ArcSwap<serde_json::Value>>);

impl ConfigSummary {
    /// Shows `summary` from now on.
    pub fn replace(&self, summary: serde_json::Value) {
        self.0.store(Arc::new(summary));
    }

    /// The summary shown now.
    pub fn current(&self) -> serde_json::Value {
        serde_json::Value::clone(&self.0.load())
    }
}

impl From<serde_json::Value> for ConfigSummary {
    fn from(summary: serde_json::Value) -> ConfigSummary {
        ConfigSummary(Arc::new(ArcSwap::from_pointee(summary)))
    }
}

impl serde::Serialize for ConfigSummary {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.load().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    /// A reload that answers as told.
    struct Scripted(Result<String, Vec<String>>);

    impl Reload for Scripted {
        fn reload(&self) -> BoxFuture<'_, Result<String, Vec<String>>> {
            Box::pin(async move { self.0.clone() })
        }
    }

    async fn call(reload: Option<Arc<dyn Reload>>, method: &str) -> (StatusCode, String) {
        let request = axum::http::Request::builder()
            .method(method)
            .uri("/-/reload")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = routes(reload).oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn reload_answers_as_prometheus_does_for_each_method_and_outcome() {
        let good: Arc<dyn Reload> = Arc::new(Scripted(Ok("reloaded".to_owned())));
        let bad: Arc<dyn Reload> = Arc::new(Scripted(Err(vec![
            "a.yml:3:5: first".to_owned(),
            "a.yml: 1 problem(s) found".to_owned(),
        ])));
        assert_eq!(
            call(Some(good.clone()), "POST").await,
            (StatusCode::OK, "reloaded\n".to_owned())
        );
        assert_eq!(call(Some(good.clone()), "PUT").await.0, StatusCode::OK);
        let (status, body) = call(Some(bad), "POST").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.ends_with("\na.yml:3:5: first\na.yml: 1 problem(s) found\n"));
        for method in ["GET", "DELETE"] {
            assert_eq!(
                call(Some(good.clone()), method).await.0,
                StatusCode::METHOD_NOT_ALLOWED
            );
            assert_eq!(call(None, method).await.0, StatusCode::METHOD_NOT_ALLOWED);
        }
        let (status, body) = call(None, "POST").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("lifecycle APIs are not enabled"), "{body}");
    }

    #[test]
    fn a_replaced_summary_is_what_every_clone_serializes() {
        let summary = ConfigSummary::from(serde_json::json!({"monitors": ["a"]}));
        let clone = summary.clone();
        summary.replace(serde_json::json!({"monitors": ["b"]}));
        assert_eq!(
            serde_json::to_value(&clone).unwrap(),
            serde_json::json!({"monitors": ["b"]})
        );
    }
}
