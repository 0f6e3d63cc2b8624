//! `/api/v1/status` with many models against a real `model-monitor run`
//! process: twenty concurrent calls each get the whole document as valid
//! JSON while the sidecar's peak RSS (`VmHWM`) grows by less than a bound
//! (the document is streamed model by model from the shared snapshot, not
//! built per call), pages made with `limit` and `after` list every model
//! once, the answer is gzipped when asked, and a bad parameter is a 400
//! that names it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::support::process::wait_for;
use crate::support::promql::{FakePromql, Request, streamed_vector};
use crate::support::sidecar::{Sidecar, SidecarConfig};

const MODELS: usize = 10_000;
/// Concurrent calls.
const CALLS: usize = 20;
/// How much the peak RSS may grow while the calls run: a few 256 KB pieces
/// per call and what the allocator keeps of them per thread (52 MiB
/// measured for this test, debug build). A document built whole per call,
/// as before, is tens of megabytes per call at this size (BENCHMARKS.md,
/// "HTTP load").
const GROWTH_BOUND: u64 = 96 * 1024 * 1024;

/// Five buckets, the count at the window's start, per model.
const SERIES_PER_MODEL: usize = 6;

/// One sample of model `index / SERIES_PER_MODEL`: bounds 0.25 to 1 and
/// `+Inf` (100 observations each), then `le="start"`.
fn sample(index: usize) -> String {
    let (model, position) = (index / SERIES_PER_MODEL, index % SERIES_PER_MODEL);
    let (le, value) = match position {
        0 => ("0.25", 100),
        1 => ("0.5", 200),
        2 => ("0.75", 300),
        3 => ("1", 400),
        4 => ("+Inf", 400),
        _ => ("start", 5),
    };
    format!(
        r#"{{"metric":{{"le":"{le}","model":"m-{model}","version":"v1"}},"value":[1700000000,"{value}"]}}"#
    )
}

async fn json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client
        .get(url)
        .send()
        .await
        .expect("the status api answers");
    let code = response.status().as_u16();
    let body = response.bytes().await.expect("the whole body");
    let value = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "{url} is not JSON ({e}): {}",
            String::from_utf8_lossy(&body[..body.len().min(500)])
        )
    });
    (code, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_models_stream_as_valid_json_to_concurrent_calls_and_page_with_limit_and_after() {
    let fake = FakePromql::start(Arc::new(|_: &Request| {
        streamed_vector(MODELS * SERIES_PER_MODEL, sample, Vec::new()).into()
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let sidecar = Sidecar::start(dir.path(), &SidecarConfig::fake_source(&fake.url, "60s"));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let first_page = sidecar.url("/api/v1/status?limit=1");
    // A few evaluations of every model, so that the peak RSS has seen them.
    wait_for(
        "three evaluations of every model",
        Duration::from_secs(180),
        || async {
            let (_, status) = json(&client, &first_page).await;
            let evaluation = &status["data"]["evaluation"];
            (evaluation["models_total"] == MODELS && evaluation["evaluations"].as_u64() >= Some(3))
                .then_some(())
        },
    )
    .await;
    let before = sidecar.process.peak_rss_bytes();

    // Every call has its answer's head before any body is read: they run at
    // once, each held back by its unread body.
    let url = sidecar.url("/api/v1/status");
    let responses = futures::future::join_all(
        (0..CALLS).map(|_| async { client.get(&url).send().await.expect("an answer") }),
    )
    .await;
    for response in &responses {
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
    }
    let during = sidecar.process.peak_rss_bytes();
    let bodies = futures::future::join_all(responses.into_iter().map(|response| async move {
        let body = response.bytes().await.expect("the whole body");
        let status: Value = serde_json::from_slice(&body).expect("valid JSON");
        status["data"]["evaluation"]["models"]
            .as_array()
            .map(Vec::len)
    }))
    .await;
    let after = sidecar.process.peak_rss_bytes();
    assert!(
        bodies.iter().all(|models| *models == Some(MODELS)),
        "{bodies:?}"
    );
    eprintln!(
        "peak RSS {:.1} MiB before {CALLS} calls, {:.1} MiB with their heads, {:.1} MiB after",
        before as f64 / 1048576.0,
        during as f64 / 1048576.0,
        after as f64 / 1048576.0
    );
    assert!(
        after - before < GROWTH_BOUND,
        "{CALLS} concurrent calls grew the peak RSS by {} bytes (bound {GROWTH_BOUND})",
        after - before
    );

    // Pages of 4,000: every model once, in order, and then no next.
    let mut seen = Vec::new();
    let mut page_url = sidecar.url("/api/v1/status?limit=4000");
    let mut pages = 0;
    loop {
        let (code, status) = json(&client, &page_url).await;
        assert_eq!(code, 200);
        let evaluation = &status["data"]["evaluation"];
        assert_eq!(evaluation["models_total"], MODELS);
        for model in evaluation["models"].as_array().unwrap() {
            seen.push(model["labels"]["model"].as_str().unwrap().to_owned());
        }
        pages += 1;
        match evaluation["next"].as_str() {
            Some(next) => {
                page_url = sidecar.url(&format!("/api/v1/status?limit=4000&after={next}"));
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (MODELS, MODELS));

    // Gzipped when asked, as /metrics is.
    let zipped = client
        .get(sidecar.url("/api/v1/status?limit=10"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let zipped = zipped.bytes().await.unwrap();
    let page: Value =
        serde_json::from_reader(flate2::read::GzDecoder::new(&zipped[..])).expect("gzipped JSON");
    assert_eq!(
        page["data"]["evaluation"]["models"]
            .as_array()
            .map(Vec::len),
        Some(10)
    );

    let (code, error) = json(&client, &sidecar.url("/api/v1/status?limit=0")).await;
    assert_eq!(code, 400);
    assert_eq!(
        error["error"],
        r#"limit must be a whole number of at least 1, got "0""#
    );
}
