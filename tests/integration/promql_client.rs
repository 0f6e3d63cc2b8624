//! The PromQL client against an in-process fake PromQL server, and the
//! answer decoders against a whole-body reading of each answer.
//!
//! Each client test starts an axum server on `127.0.0.1:0` that answers
//! with a canned response and records what it received (method, path, query
//! and form parameters, headers), then checks what the client made of the
//! answer.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use model_monitor::config::{BasicAuth, PrometheusConfig, SecretSource};
use model_monitor::sources::prometheus::{
    AnswerDecoder, PromClient, PromError, VectorSink, VectorStream, parse_vector_into,
};

use crate::support::answers::{QueryData, QueryResponse, WholeAnswers, parse_response};
use crate::support::promql::{FakePromql, Reply, body_never_sent};

/// A canned answer of the fake server.
#[derive(Clone)]
enum Answer {
    /// Status and body, sent with a Content-Length.
    Fixed(StatusCode, &'static str),
    /// Status and an owned body, sent with a Content-Length.
    Owned(StatusCode, String),
    /// An endless chunked body without a Content-Length.
    Endless,
    /// Announces a Content-Length of 1 GB, then never sends the body.
    HugeLengthNeverSent,
    /// Never answers.
    Never,
}

async fn serve(answer: Answer) -> (SocketAddr, FakePromql) {
    let fake = FakePromql::start(Arc::new(move |_| match answer.clone() {
        Answer::Fixed(status, body) => json(status, body.to_owned()).into(),
        Answer::Owned(status, body) => json(status, body).into(),
        Answer::Endless => {
            let chunk = Bytes::from(vec![b' '; 1024]);
            let stream =
                futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
            Response::new(Body::from_stream(stream)).into()
        }
        Answer::HugeLengthNeverSent => {
            let mut response = body_never_sent();
            response.headers_mut().insert(
                header::CONTENT_LENGTH,
                header::HeaderValue::from_static("1000000000"),
            );
            response.into()
        }
        Answer::Never => Reply::Hang,
    }))
    .await;
    (fake.address, fake)
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn config(url: &str) -> PrometheusConfig {
    PrometheusConfig {
        timeout: Duration::from_secs(5),
        max_response_bytes: 1 << 20,
        ..PrometheusConfig::new(url.parse().unwrap())
    }
}

fn base(address: SocketAddr) -> String {
    format!("http://{address}/")
}

fn at() -> DateTime<Utc> {
    "2023-11-14T22:13:20.250Z".parse().unwrap()
}

/// Queries `up` once with a new client of `settings`.
async fn query_with(settings: &PrometheusConfig) -> Result<QueryResponse, PromError> {
    PromClient::new(settings).unwrap().query("up", at()).await
}

async fn query_fixed(status: StatusCode, body: &'static str) -> Result<QueryResponse, PromError> {
    let (address, _) = serve(Answer::Fixed(status, body)).await;
    query_with(&config(&base(address))).await
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

const VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
    {"metric":{"model":"fraud","version":"v1","le":"0.5"},"value":[1700000000.25,"42"]},
    {"metric":{"model":"fraud","version":"v1","le":"+Inf"},"value":[1700000000.25,"50"]}]}}"#;

#[tokio::test]
async fn decodes_a_vector_with_labels() {
    let answer = query_fixed(StatusCode::OK, VECTOR).await.unwrap();
    assert!(answer.warnings.is_empty());
    let samples = answer.into_vector().unwrap();
    assert_eq!(samples.len(), 2);
    assert_eq!(
        samples[0].labels,
        labels(&[("model", "fraud"), ("version", "v1"), ("le", "0.5")])
    );
    assert_eq!(samples[0].timestamp, 1_700_000_000.25);
    assert_eq!(samples[0].value, 42.0);
    assert_eq!(samples[1].value, 50.0);
}

#[tokio::test]
async fn decodes_a_matrix() {
    let answer = query_fixed(
        StatusCode::OK,
        r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"job":"a"},"values":[[1700000000,"1"],[1700000015,"2.5"]]},
            {"metric":{"job":"b"},"values":[]}]}}"#,
    )
    .await
    .unwrap();
    let QueryData::Matrix(series) = answer.data else {
        panic!("not a matrix: {:?}", answer.data)
    };
    assert_eq!(series.len(), 2);
    assert_eq!(series[0].labels, labels(&[("job", "a")]));
    assert_eq!(
        series[0].values,
        vec![(1_700_000_000.0, 1.0), (1_700_000_015.0, 2.5)]
    );
    assert!(series[1].values.is_empty());
}

#[tokio::test]
async fn decodes_a_scalar_and_a_string() {
    let scalar = query_fixed(
        StatusCode::OK,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"0.75"]}}"#,
    )
    .await
    .unwrap();
    assert_eq!(
        scalar.data,
        QueryData::Scalar {
            timestamp: 1_700_000_000.0,
            value: 0.75
        }
    );
    let string = query_fixed(
        StatusCode::OK,
        r#"{"status":"success","data":{"resultType":"string","result":[1700000000,"hello"]}}"#,
    )
    .await
    .unwrap();
    assert_eq!(
        string.data,
        QueryData::String {
            timestamp: 1_700_000_000.0,
            value: "hello".to_owned()
        }
    );
    assert!(matches!(
        string.into_vector(),
        Err(PromError::UnexpectedResultType {
            expected: "vector",
            got: "string"
        })
    ));
}

#[tokio::test]
async fn keeps_the_server_warnings() {
    let answer = query_fixed(
        StatusCode::OK,
        r#"{"status":"success","data":{"resultType":"vector","result":[]},
            "warnings":["PromQL warning: partial response"],"infos":["PromQL info: not a counter"]}"#,
    )
    .await
    .unwrap();
    assert_eq!(answer.warnings, vec!["PromQL warning: partial response"]);
    assert_eq!(answer.data, QueryData::Vector(Vec::new()));
}

#[tokio::test]
async fn keeps_nan_and_infinite_sample_values() {
    let answer = query_fixed(
        StatusCode::OK,
        r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"m":"nan"},"value":[1700000000,"NaN"]},
            {"metric":{"m":"pos"},"value":[1700000000,"+Inf"]},
            {"metric":{"m":"neg"},"value":[1700000000,"-Inf"]}]}}"#,
    )
    .await
    .unwrap();
    let samples = answer.into_vector().unwrap();
    assert!(samples[0].value.is_nan());
    assert_eq!(samples[1].value, f64::INFINITY);
    assert_eq!(samples[2].value, f64::NEG_INFINITY);
}

#[tokio::test]
async fn reports_the_start_of_a_plain_error_body() {
    let error = query_fixed(StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded\n")
        .await
        .unwrap_err();
    let PromError::Http {
        status,
        error_type,
        message,
    } = &error
    else {
        panic!("expected an http error: {error:?}")
    };
    assert_eq!(*status, 500);
    assert_eq!(*error_type, None);
    assert_eq!(message, "upstream exploded");
    assert_eq!(error.reason(), "http");
}

#[tokio::test]
async fn surfaces_the_error_envelope_of_a_422() {
    let error = query_fixed(
        StatusCode::UNPROCESSABLE_ENTITY,
        r#"{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory"}"#,
    )
    .await
    .unwrap_err();
    let PromError::Http {
        status,
        error_type,
        message,
    } = &error
    else {
        panic!("expected an http error: {error:?}")
    };
    assert_eq!(*status, 422);
    assert_eq!(error_type.as_deref(), Some("execution"));
    assert_eq!(
        message,
        "query processing would load too many samples into memory"
    );
    assert!(error.to_string().contains("(execution)"), "{error}");
}

#[tokio::test]
async fn surfaces_bad_data_of_a_400() {
    let error = query_fixed(
        StatusCode::BAD_REQUEST,
        r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unexpected end of input"}"#,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            &error,
            PromError::Http { status: 400, error_type: Some(kind), message }
                if kind == "bad_data" && message.contains("parse error")
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn reports_an_error_envelope_with_status_200_as_api_error() {
    let error = query_fixed(
        StatusCode::OK,
        r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, PromError::Api { error_type, message }
            if error_type == "timeout" && message == "query timed out in expression evaluation"),
        "{error:?}"
    );
    assert_eq!(error.reason(), "api");
}

#[tokio::test]
async fn times_out_on_a_server_that_never_answers() {
    let (address, log) = serve(Answer::Never).await;
    let mut settings = config(&base(address));
    settings.timeout = Duration::from_millis(100);
    let client = PromClient::new(&settings).unwrap();
    let error = client.query("up", at()).await.unwrap_err();
    assert!(
        matches!(error, PromError::Timeout(limit) if limit == Duration::from_millis(100)),
        "{error:?}"
    );
    assert_eq!(log.requests().len(), 1, "the request reached the server");
}

#[tokio::test]
async fn reports_garbage_and_truncated_json_as_decode_errors() {
    for body in [
        "<html>not json</html>",
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},"val"#,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"many"]}]}}"#,
    ] {
        let error = query_fixed(StatusCode::OK, body).await.unwrap_err();
        let PromError::Decode(message) = &error else {
            panic!("expected a decode error for {body}: {error:?}")
        };
        assert!(
            message.contains("line 1 column"),
            "serde's message: {message}"
        );
    }
}

#[tokio::test]
async fn rejects_a_body_over_the_cap_from_its_content_length() {
    let body = format!(
        r#"{{"status":"success","data":{{"resultType":"string","result":[1,"{}"]}}}}"#,
        "x".repeat(2000)
    );
    let (address, _) = serve(Answer::Owned(StatusCode::OK, body.clone())).await;
    let mut settings = config(&base(address));
    settings.max_response_bytes = 1000;
    let error = query_with(&settings).await.unwrap_err();
    assert!(
        matches!(error, PromError::TooLarge { limit: 1000 }),
        "{error:?}"
    );
    // The same answer passes under a cap that fits it exactly.
    settings.max_response_bytes = body.len() as u64;
    let answer = query_with(&settings).await.unwrap();
    assert_eq!(answer.data.result_type(), "string");
}

#[tokio::test]
async fn rejects_an_announced_oversized_body_before_reading_it() {
    let (address, _) = serve(Answer::HugeLengthNeverSent).await;
    let mut settings = config(&base(address));
    // Reading the body would hang until this timeout: only the early check passes.
    settings.timeout = Duration::from_secs(5);
    let error = query_with(&settings).await.unwrap_err();
    assert!(
        matches!(error, PromError::TooLarge { limit: 1_048_576 }),
        "{error:?}"
    );
}

#[tokio::test]
async fn rejects_an_endless_chunked_body_while_streaming() {
    let (address, _) = serve(Answer::Endless).await;
    let mut settings = config(&base(address));
    settings.max_response_bytes = 64 * 1024;
    let error = query_with(&settings).await.unwrap_err();
    assert!(
        matches!(error, PromError::TooLarge { limit: 65536 }),
        "{error:?}"
    );
}

#[tokio::test]
async fn sends_short_queries_as_get_and_long_ones_as_post_form() {
    let (address, log) = serve(Answer::Fixed(StatusCode::OK, VECTOR)).await;
    let mut settings = config(&base(address));
    settings.post_threshold_bytes = 64;
    let client = PromClient::new(&settings).unwrap();
    let short = r#"sum by (le) (rate(h_bucket{a="b c"}[5m]))"#;
    let long = format!(
        r#"sum by (le) (rate(h_bucket{{a=~"{}"}}[5m]))"#,
        "x|".repeat(40)
    );
    client.query(short, at()).await.unwrap();
    client.query(&long, at()).await.unwrap();

    let received = log.requests();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].method, Method::GET);
    assert_eq!(received[0].path, "/api/v1/query");
    assert_eq!(received[0].params["query"], short);
    assert_eq!(received[0].params["time"], "1700000000.250");
    assert_eq!(received[1].method, Method::POST);
    assert_eq!(received[1].path, "/api/v1/query");
    assert_eq!(
        received[1].content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(received[1].params["query"], long);
    assert_eq!(received[1].params["time"], "1700000000.250");
}

#[tokio::test]
async fn keeps_the_base_url_path_prefix() {
    let (address, log) = serve(Answer::Fixed(StatusCode::OK, VECTOR)).await;
    for prefix in ["prometheus", "prometheus/", "select/0/prometheus"] {
        let client = PromClient::new(&config(&format!("http://{address}/{prefix}"))).unwrap();
        client.query("up", at()).await.unwrap();
    }
    let paths: Vec<String> = log.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        vec![
            "/prometheus/api/v1/query",
            "/prometheus/api/v1/query",
            "/select/0/prometheus/api/v1/query"
        ]
    );
}

#[tokio::test]
async fn sends_the_bearer_token_read_at_each_request_and_extra_headers() {
    let (address, log) = serve(Answer::Fixed(StatusCode::OK, VECTOR)).await;
    let directory = tempfile::tempdir().unwrap();
    let token_path = directory.path().join("token");
    std::fs::write(&token_path, "first-token\n").unwrap();
    let mut settings = config(&base(address));
    settings.bearer_token_file = Some(token_path.clone());
    settings
        .headers
        .insert("X-Scope-OrgID".to_owned(), "team-a".to_owned());
    let client = PromClient::new(&settings).unwrap();
    client.query("up", at()).await.unwrap();
    std::fs::write(&token_path, "rotated-token").unwrap();
    client.query("up", at()).await.unwrap();

    let received = log.requests();
    let header = |index: usize, name: &str| {
        received[index]
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header(0, "authorization").as_deref(),
        Some("Bearer first-token")
    );
    assert_eq!(
        header(1, "authorization").as_deref(),
        Some("Bearer rotated-token")
    );
    assert_eq!(header(0, "x-scope-orgid").as_deref(), Some("team-a"));
    assert_eq!(
        header(0, "user-agent"),
        Some(format!("model-monitor/{}", env!("CARGO_PKG_VERSION")))
    );
}

#[tokio::test]
async fn reports_a_missing_bearer_token_file_without_querying() {
    let (address, log) = serve(Answer::Fixed(StatusCode::OK, VECTOR)).await;
    let mut settings = config(&base(address));
    settings.bearer_token_file = Some("/nonexistent/model-monitor/token".into());
    let error = query_with(&settings).await.unwrap_err();
    assert_eq!(error.reason(), "credentials", "{error:?}");
    assert!(
        error
            .to_string()
            .contains("/nonexistent/model-monitor/token")
    );
    assert!(log.requests().is_empty());
}

#[tokio::test]
async fn sends_basic_auth_with_the_password_from_a_file() {
    let (address, log) = serve(Answer::Fixed(StatusCode::OK, VECTOR)).await;
    let directory = tempfile::tempdir().unwrap();
    let password_path = directory.path().join("password");
    std::fs::write(&password_path, "open sesame\n").unwrap();
    let mut settings = config(&base(address));
    settings.basic_auth = Some(BasicAuth {
        username: "alice".to_owned(),
        password: SecretSource::File(password_path),
    });
    query_with(&settings).await.unwrap();
    let received = log.requests();
    // base64("alice:open sesame")
    assert_eq!(
        received[0].headers.get("authorization").unwrap(),
        "Basic YWxpY2U6b3BlbiBzZXNhbWU="
    );
}

#[tokio::test]
async fn sends_credentials_written_in_the_url_as_basic_auth() {
    let (address, log) = serve(Answer::Fixed(StatusCode::OK, VECTOR)).await;
    let client = PromClient::new(&config(&format!("http://alice:s3cret@{address}/"))).unwrap();
    assert!(!client.base_url().as_str().contains("s3cret"));
    client.query("up", at()).await.unwrap();
    let received = log.requests();
    // base64("alice:s3cret")
    assert_eq!(
        received[0].headers.get("authorization").unwrap(),
        "Basic YWxpY2U6czNjcmV0"
    );
}

#[tokio::test]
async fn reports_connection_refused_without_credentials() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let client = PromClient::new(&config(&format!("http://alice:s3cret@{address}/prom"))).unwrap();
    let error = client.query("up", at()).await.unwrap_err();
    let PromError::Connect { url, .. } = &error else {
        panic!("expected a connect error: {error:?}")
    };
    assert_eq!(url, &format!("http://{address}/prom/api/v1/query"));
    assert_eq!(error.reason(), "connect");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(!shown.contains("alice"), "{shown}");
}

#[tokio::test]
async fn keeps_tokens_out_of_error_messages() {
    let (address, _) = serve(Answer::Fixed(StatusCode::UNAUTHORIZED, "unauthorized")).await;
    let directory = tempfile::tempdir().unwrap();
    let token_path = directory.path().join("token");
    std::fs::write(&token_path, "very-secret-token").unwrap();
    let mut settings = config(&base(address));
    settings.bearer_token_file = Some(token_path);
    let error = query_with(&settings).await.unwrap_err();
    assert!(
        matches!(error, PromError::Http { status: 401, .. }),
        "{error:?}"
    );
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("very-secret-token"), "{shown}");
}

// The decoders, against the whole-body reading of `support::answers`.

/// Reads a complete answer with status 200.
fn decode(body: &str) -> Result<QueryResponse, PromError> {
    parse_response(200, body.as_bytes())
}

#[test]
fn decodes_a_vector_with_labels_and_special_values() {
    let answer = decode(
        r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"model":"a","le":"+Inf"},"value":[1700000000.5,"12"]},
            {"metric":{},"value":[1700000000,"NaN"]},
            {"metric":{"x":"y\"z"},"value":[1700000000,"-Inf"]}]}}"#,
    )
    .unwrap();
    let QueryData::Vector(samples) = answer.data else {
        panic!("not a vector: {answer:?}")
    };
    assert_eq!(samples.len(), 3);
    assert_eq!(samples[0].labels, labels(&[("model", "a"), ("le", "+Inf")]));
    assert_eq!(samples[0].timestamp, 1_700_000_000.5);
    assert_eq!(samples[0].value, 12.0);
    assert!(samples[1].value.is_nan());
    assert_eq!(samples[2].labels, labels(&[("x", "y\"z")]));
    assert_eq!(samples[2].value, f64::NEG_INFINITY);
}

/// Collects what a decoder hands over, owned.
#[derive(Default)]
struct Collect(Vec<(Vec<String>, f64)>);

impl VectorSink for Collect {
    fn sample(&mut self, labels: &[Cow<'_, str>], value: f64) {
        self.0
            .push((labels.iter().map(|l| l.to_string()).collect(), value));
    }
}

/// Decodes `body` with a [`VectorStream`] fed `chunk` bytes at a time.
fn stream(
    status: u16,
    body: &[u8],
    wanted: &[&str],
    chunk: usize,
) -> (Result<Vec<String>, PromError>, Collect) {
    let mut sink = Collect::default();
    let mut stream = VectorStream::new(status, wanted, &mut sink);
    let result = body
        .chunks(chunk.max(1))
        .try_for_each(|piece| stream.push(piece))
        .and_then(|()| stream.finish());
    (result, sink)
}

/// Every answer decodes to the same samples, warnings and errors through
/// the sink, whole or streamed in pieces of any size, as through
/// [`parse_response`]. Streamed errors inside the result array are of
/// the same kind, their position counted from the sample.
#[test]
fn vector_sink_sees_what_the_owned_decoding_sees() {
    let wanted = ["model", "le", "x"];
    let check = |status: u16, body: &str| {
        let owned = parse_response(status, body.as_bytes());
        let mut sink = Collect::default();
        let whole = parse_vector_into(status, body.as_bytes(), &wanted, &mut sink);
        let mut decodings = vec![("whole".to_owned(), whole, sink)];
        for chunk in [1, 2, 7, 64, body.len()] {
            let (result, sink) = stream(status, body.as_bytes(), &wanted, chunk);
            decodings.push((format!("streamed in {chunk}-byte pieces"), result, sink));
        }
        for (how, streamed, sink) in decodings {
            let body = format!("{how}: {body}");
            match (&owned, streamed) {
                (Ok(owned), Ok(warnings)) => {
                    let QueryData::Vector(samples) = &owned.data else {
                        panic!("{body}: owned answer is not a vector")
                    };
                    assert_eq!(samples.len(), sink.0.len(), "{body}");
                    for (owned, (labels, value)) in samples.iter().zip(&sink.0) {
                        let expected: Vec<String> = wanted
                            .iter()
                            .map(|name| owned.labels.get(*name).cloned().unwrap_or_default())
                            .collect();
                        assert_eq!(&expected, labels, "{body}");
                        assert!(
                            owned.value == *value || (owned.value.is_nan() && value.is_nan()),
                            "{body}"
                        );
                    }
                    assert_eq!(owned.warnings, warnings, "{body}");
                }
                (Ok(owned), Err(error)) => {
                    assert!(
                        matches!(error, PromError::UnexpectedResultType { expected: "vector", got } if got == owned.data.result_type()),
                        "{body}: {error:?}"
                    );
                }
                (Err(owned), Err(streamed)) if how == "whole" => {
                    assert_eq!(owned.to_string(), streamed.to_string(), "{body}");
                }
                (Err(owned), Err(streamed)) => {
                    assert_eq!(owned.reason(), streamed.reason(), "{body}: {streamed}");
                }
                (Err(owned), Ok(_)) => panic!("{body}: owned path failed with {owned:?}"),
            }
        }
    };
    check(
        200,
        r#"{"status":"success","warnings":["w"],"data":{"resultType":"vector","result":[
            {"metric":{"model":"a","le":"+Inf","other":"o"},"value":[1700000000.5,"12"]},
            {"metric":{},"value":[1700000000,"NaN"]},
            {"value":[1700000000,"2"],"metric":{"x":"y\"z","model":"caf\u00e9"}},
            {"metric":{"model":"h"},"histogram":[1700000000,{"count":"1"}]}]}}"#,
    );
    check(
        200,
        r#"{"data":{"result":[{"metric":{"le":"1"},"value":[1,"5"]}],"resultType":"vector"},"status":"success"}"#,
    );
    check(
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
    );
    check(
        200,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1,"3"]}}"#,
    );
    check(
        200,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"2"]]}]}}"#,
    );
    check(
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}"#,
    );
    check(
        200,
        r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
    );
    check(200, r#"{"status":"success"}"#);
    check(
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[]}} trailing"#,
    );
    check(
        503,
        r#"{"status":"error","errorType":"unavailable","error":"down"}"#,
    );
    check(502, "<html>bad gateway</html>");
    check(200, "not json");
    // Prometheus' own compact form, decoded sample by sample.
    let prefix = r#"{"status":"success","data":{"resultType":"vector","result":["#;
    for rest in [
        r#"]}}"#,
        r#"{"metric":{"model":"a","le":"0.5"},"value":[1,"3"]},{"metric":{"model":"a","le":"+Inf"},"value":[1,"4"]}]}}"#,
        // Braces, quotes and backslashes inside strings, whitespace
        // between samples, keys in any order, a native histogram.
        r#" {"metric":{"x":"}{\"\\","model":"b{"},"value":[1,"1"]} ,
           {"value":[1,"2"],"metric":{"model":"\u00e9}"}},
           {"metric":{"model":"h"},"histogram":[1,{"count":"1","buckets":[[0,"1","2","3"]]}]}
        ]},"warnings":["w1"],"infos":["i"]}"#,
        r#"{"metric":{"model":"a"},"value":[1,"2"]}]},"warnings":["w"]}"#,
        // Timestamps and values in every form; empty label sets; raw
        // UTF-8; a label value with a control character (not JSON).
        r#"{"metric":{},"value":[0,"NaN"]},{"metric":{"model":"é"},"value":[-1.5e+3,"+Inf"]},{"metric":{"le":"1","le":"2"},"value":[17E2,"-2.5e-3"]}]}}"#,
        r#"{"metric":{"model":"a"},"value":[01,"2"]}]}}"#,
        r#"{"metric":{"model":"a"},"value":[1.,"2"]}]}}"#,
        r#"{"metric":{"model":"a"},"value":[1,2]}]}}"#,
        "{\"metric\":{\"model\":\"a\u{1}\"},\"value\":[1,\"2\"]}]}}",
        // Broken inside the array, after it, or cut short.
        r#"{"metric":{"model":"a"},"value":[1,"x"]}]}}"#,
        r#"{"metric":{"model":"a"},"value":[1,"2"]},3]}}"#,
        r#"{"metric":{"model":"a"},"value":[1,"2"]}]}} trailing"#,
        r#"{"metric":{"model":"a"},"value":[1,"2"]}]}"#,
        r#"{"metric":{"model":"a"},"value":[1,"2"]},{"metric":{"mod"#,
        r#"{"metric":{"model":"a"},"value":[1,"2"]}]"#,
        r#"{"metric":{"model":"a"},"value":[1,"2"]}"#,
        "",
    ] {
        check(200, &format!("{prefix}{rest}"));
    }
}

#[test]
fn accepts_result_before_result_type() {
    let answer =
        decode(r#"{"data":{"result":[1700000000,"3"],"resultType":"scalar"},"status":"success"}"#)
            .unwrap();
    assert_eq!(
        answer.data,
        QueryData::Scalar {
            timestamp: 1_700_000_000.0,
            value: 3.0
        }
    );
}

#[test]
fn skips_native_histogram_samples_with_a_warning() {
    let answer = decode(
        r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"a":"1"},"histogram":[1700000000,{"count":"1","sum":"1","buckets":[]}]},
            {"metric":{"a":"2"},"value":[1700000000,"1"]}]}}"#,
    )
    .unwrap();
    assert_eq!(answer.data.result_type(), "vector");
    assert_eq!(answer.warnings.len(), 1, "{:?}", answer.warnings);
    let QueryData::Vector(samples) = answer.data else {
        panic!("not a vector")
    };
    assert_eq!(samples.len(), 1);
}

#[test]
fn into_vector_rejects_other_result_types() {
    let scalar = QueryData::Scalar {
        timestamp: 1.0,
        value: 2.0,
    };
    assert!(matches!(
        scalar.into_vector(),
        Err(PromError::UnexpectedResultType {
            expected: "vector",
            got: "scalar"
        })
    ));
    let vector = QueryResponse {
        data: QueryData::Vector(Vec::new()),
        warnings: Vec::new(),
    };
    assert_eq!(vector.into_vector().unwrap(), Vec::new());
}
