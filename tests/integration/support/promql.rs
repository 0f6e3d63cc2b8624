//! A fake PromQL API: an axum server on `127.0.0.1:0`, in the test's
//! process, that records every request it receives (method, path, query and
//! form parameters, headers) and answers as the test scripts it. The script
//! can be swapped while the server runs. Also the histogram answers the
//! sidecar's tests script it with.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::json;

/// What the fake server saw of one request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub path: String,
    /// URL query parameters, then form parameters.
    pub params: BTreeMap<String, String>,
    pub content_type: Option<String>,
    pub headers: HeaderMap,
}

impl Request {
    /// The PromQL query sent, or "" without one.
    pub fn query(&self) -> &str {
        self.params.get("query").map_or("", String::as_str)
    }
}

/// How the fake answers one request.
pub enum Reply {
    Respond(Response),
    /// Never answers: not even a status line is sent.
    Hang,
}

impl From<Response> for Reply {
    fn from(response: Response) -> Reply {
        Reply::Respond(response)
    }
}

/// The fake's answer to every request, a function of the request.
pub type Script = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// A running fake PromQL API. Clones share the server.
#[derive(Clone)]
pub struct FakePromql {
    pub address: SocketAddr,
    /// `http://<address>`, the URL to configure as the Prometheus URL.
    pub url: String,
    script: Arc<Mutex<Script>>,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl FakePromql {
    /// Starts a fake answering every request, on any path, with `script`.
    pub async fn start(script: Script) -> FakePromql {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let fake = FakePromql {
            address,
            url: format!("http://{address}"),
            script: Arc::new(Mutex::new(script)),
            requests: Arc::default(),
        };
        let server = fake.clone();
        let handler = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let fake = server.clone();
            async move { fake.answer(method, uri, headers, body).await }
        };
        let router = Router::new().fallback(any(handler));
        tokio::spawn(async move { axum::serve(listener, router).await });
        fake
    }

    async fn answer(&self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let mut params = BTreeMap::new();
        if let Some(query) = uri.query() {
            params.extend(url::form_urlencoded::parse(query.as_bytes()).into_owned());
        }
        params.extend(url::form_urlencoded::parse(&body).into_owned());
        let request = Request {
            method,
            path: uri.path().to_owned(),
            params,
            content_type: headers
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            headers,
        };
        let script = self.script.lock().unwrap().clone();
        let reply = script(&request);
        self.requests.lock().unwrap().push(request);
        match reply {
            Reply::Respond(response) => response,
            Reply::Hang => {
                std::future::pending::<()>().await;
                unreachable!("a pending future never completes")
            }
        }
    }

    /// Answers from now on with `script`.
    pub fn answer_with(&self, script: Script) {
        *self.script.lock().unwrap() = script;
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// The query of every request received so far, in order.
    pub fn queries(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|request| request.query().to_owned())
            .collect()
    }
}

/// A response whose status line and headers are sent and whose body never
/// comes.
pub fn body_never_sent() -> Response {
    Response::new(Body::from_stream(futures::stream::pending::<
        Result<Bytes, std::io::Error>,
    >()))
}

/// The bucket bounds of the fake confidence histograms.
pub const CONFIDENCE_BOUNDS: [&str; 4] = ["0.25", "0.5", "0.75", "1"];
/// Cumulative bucket counts of a model as it always was.
pub const STEADY: [f64; 4] = [100.0, 300.0, 700.0, 1000.0];
/// Cumulative bucket counts of a model whose confidence fell.
pub const SHIFTED: [f64; 4] = [400.0, 700.0, 900.0, 1000.0];

/// One model's cumulative buckets (including "+Inf"), sum, and how many of
/// its series existed at the window's start (`le="start"`; `None` leaves
/// the sample out, as Prometheus does for series younger than the window).
pub struct ModelAnswer {
    pub model: String,
    pub buckets: Vec<(&'static str, String)>,
    pub sum: Option<f64>,
    pub series_at_start: Option<f64>,
}

impl ModelAnswer {
    /// The same answer for a model whose series are younger than the
    /// window.
    pub fn young(self) -> ModelAnswer {
        ModelAnswer {
            series_at_start: None,
            ..self
        }
    }
}

/// A model's answer: `cumulative` over [`CONFIDENCE_BOUNDS`], then "+Inf";
/// its 5 bucket series all existed at the window's start.
pub fn model(model: &str, cumulative: &[f64]) -> ModelAnswer {
    let mut buckets: Vec<(&str, String)> = CONFIDENCE_BOUNDS
        .iter()
        .zip(cumulative)
        .map(|(le, c)| (*le, c.to_string()))
        .collect();
    buckets.push(("+Inf", cumulative.last().unwrap().to_string()));
    ModelAnswer {
        model: model.to_owned(),
        buckets,
        sum: None,
        series_at_start: Some(5.0),
    }
}

/// The grouped histogram query's answer: every model's buckets (version
/// "v1") as an instant vector.
pub fn vector(models: &[ModelAnswer]) -> Response {
    let mut result = Vec::new();
    for m in models {
        for (le, value) in &m.buckets {
            result.push(json!({"metric": {"model": m.model, "version": "v1", "le": le}, "value": [1700000000.0, value]}));
        }
        if let Some(sum) = m.sum {
            result.push(json!({"metric": {"model": m.model, "version": "v1", "le": "sum"}, "value": [1700000000.0, sum.to_string()]}));
        }
        if let Some(count) = m.series_at_start {
            result.push(json!({"metric": {"model": m.model, "version": "v1", "le": "start"}, "value": [1700000000.0, count.to_string()]}));
        }
    }
    axum::Json(json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
        .into_response()
}

/// A successful instant vector of `series` samples made one by one by
/// `sample` (JSON objects), then `warnings`, sent as it is made: an answer
/// of any size without holding it in memory.
pub fn streamed_vector(
    series: usize,
    sample: impl Fn(usize) -> String + Send + Sync + 'static,
    warnings: Vec<String>,
) -> Response {
    const PER_CHUNK: usize = 5_000;
    let head = r#"{"status":"success","data":{"resultType":"vector","result":["#;
    let tail = format!(
        "]}},\"warnings\":{}}}",
        serde_json::to_string(&warnings).unwrap()
    );
    let sample = Arc::new(sample);
    let chunks = (0..series.div_ceil(PER_CHUNK)).map(move |chunk| {
        let mut text = String::new();
        for index in chunk * PER_CHUNK..((chunk + 1) * PER_CHUNK).min(series) {
            if index > 0 {
                text.push(',');
            }
            text.push_str(&sample(index));
        }
        Ok::<_, std::io::Error>(Bytes::from(text))
    });
    let body = futures::stream::iter(
        std::iter::once(Ok(Bytes::from(head)))
            .chain(chunks)
            .chain(std::iter::once(Ok(Bytes::from(tail)))),
    );
    Response::new(Body::from_stream(body))
}

/// Whether a histogram query is for a reference window: its range selector
/// carries a modifier (`[5m] offset 1d`, `[7d] @ <end>`). The current
/// window's range has none; only its start probe has an `offset`.
pub fn is_reference_query(query: &str) -> bool {
    query.contains("] offset ") || query.contains("] @ ")
}

/// Answers queries of the reference window ([`is_reference_query`]) with
/// `reference` and all others with `current`.
pub fn per_window(current: Vec<ModelAnswer>, reference: Vec<ModelAnswer>) -> Script {
    Arc::new(move |request: &Request| {
        if is_reference_query(request.query()) {
            vector(&reference).into()
        } else {
            vector(&current).into()
        }
    })
}

/// Every model's confidence as it always was, except in the current window
/// of the models in `drifting`.
pub fn drifting_models(models: &[&str], drifting: &[&str]) -> Script {
    let current = |m: &&str| {
        if drifting.contains(m) {
            SHIFTED
        } else {
            STEADY
        }
    };
    per_window(
        models.iter().map(|m| model(m, &current(m))).collect(),
        models.iter().map(|m| model(m, &STEADY)).collect(),
    )
}
