//! Tests of `model-monitor simulate` through its face: the
//! clock-free [`Simulation`] with injected time and the HTTP server on a
//! real port. `promtool` checks its exposition in the integration tests
//! (`tests/integration/cli.rs`), through the binary.

use super::buckets::{CONFIDENCE_BUCKETS, LATENCY_BUCKETS};
use super::exposition::CONTENT_TYPE;
use super::server::{router_with_clock, serve};
use super::{SimulateOptions, Simulation};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

fn options(models: usize, seed: u64, rate: f64) -> SimulateOptions {
    SimulateOptions {
        models,
        seed,
        drift_model: None,
        drift_after: Duration::from_secs(600),
        rate,
        ..SimulateOptions::default()
    }
}

fn render_at(options: &SimulateOptions, elapsed: Duration) -> String {
    let mut simulation = Simulation::new(options.clone()).unwrap();
    simulation.advance_to(elapsed);
    let mut out = String::new();
    simulation.render(&mut out);
    out
}

/// The samples of an exposition, keyed by the series as printed (name and
/// labels).
struct Samples(HashMap<String, f64>);

impl Samples {
    fn parse(text: &str) -> Samples {
        let mut samples = HashMap::new();
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').expect("a sample line has a value");
            let value: f64 = value.parse().expect("a sample value is a number");
            assert!(
                samples.insert(series.to_owned(), value).is_none(),
                "duplicate series {series}"
            );
        }
        Samples(samples)
    }

    fn get(&self, name: &str, model: usize, le: Option<&str>) -> f64 {
        let series = match le {
            Some(le) => format!("{name}{{model=\"model-{model}\",version=\"v1\",le=\"{le}\"}}"),
            None => format!("{name}{{model=\"model-{model}\",version=\"v1\"}}"),
        };
        *self
            .0
            .get(&series)
            .unwrap_or_else(|| panic!("missing series {series}"))
    }

    fn count(&self, model: usize) -> f64 {
        self.get("model_requests_total", model, None)
    }

    /// Count and sum of a histogram.
    fn histogram(&self, name: &str, model: usize) -> (f64, f64) {
        (
            self.get(&format!("{name}_count"), model, None),
            self.get(&format!("{name}_sum"), model, None),
        )
    }

    /// The cumulative bucket counts of a histogram, `+Inf` last.
    fn buckets(&self, name: &str, model: usize) -> Vec<(String, f64)> {
        let bounds: Vec<f64> = if name == "model_prediction_confidence" {
            CONFIDENCE_BUCKETS.to_vec()
        } else {
            LATENCY_BUCKETS.to_vec()
        };
        let mut labels: Vec<String> = bounds.iter().map(|bound| format!("{bound}")).collect();
        labels.push("+Inf".to_owned());
        labels
            .into_iter()
            .map(|le| {
                let value = self.get(&format!("{name}_bucket"), model, Some(&le));
                (le, value)
            })
            .collect()
    }
}

/// Mean of the observations between two snapshots of a histogram.
fn window_mean(before: &Samples, after: &Samples, name: &str, model: usize) -> (f64, f64) {
    let (count_before, sum_before) = before.histogram(name, model);
    let (count_after, sum_after) = after.histogram(name, model);
    let count = count_after - count_before;
    (count, (sum_after - sum_before) / count)
}

#[test]
fn the_same_seed_and_elapsed_time_give_identical_bytes() {
    let seeded = SimulateOptions {
        drift_model: Some("model-2".to_owned()),
        drift_after: Duration::from_secs(30),
        ..options(5, 1234, 7.5)
    };
    let elapsed = Duration::from_millis(61_250);
    let first = render_at(&seeded, elapsed);
    let second = render_at(&seeded, elapsed);
    assert_eq!(first, second);
    assert!(first.contains("model-4"));

    let other_seed = SimulateOptions {
        seed: 1235,
        ..seeded.clone()
    };
    assert_ne!(first, render_at(&other_seed, elapsed));
    assert_ne!(first, render_at(&seeded, elapsed + Duration::from_secs(1)));
}

#[test]
fn request_counts_follow_the_poisson_rate() {
    // Counts are Poisson with mean rate * t; five standard deviations keep
    // the check deterministic for the seed and still tight.
    let check = |rate: f64, seconds: u64, models: usize| {
        let options = options(models, 99, rate);
        let early = Samples::parse(&render_at(&options, Duration::from_secs(seconds / 2)));
        let late = Samples::parse(&render_at(&options, Duration::from_secs(seconds)));
        let mean = rate * seconds as f64;
        let mut total = 0.0;
        for model in 0..models {
            let count = late.count(model);
            assert!(
                (count - mean).abs() < 5.0 * mean.sqrt(),
                "model-{model} served {count} requests, expected about {mean}"
            );
            assert!(early.count(model) <= count, "counts never fall");
            assert!(early.count(model) < count, "counts grow over {seconds} s");
            total += count;
        }
        let total_mean = mean * models as f64;
        assert!(
            (total - total_mean).abs() < 5.0 * total_mean.sqrt(),
            "{total} requests in all, expected about {total_mean}"
        );
    };
    check(10.0, 300, 20);
    check(0.1, 10_000, 10);
    check(1.0, 3_600, 50);
}

#[test]
fn nothing_is_served_at_time_zero() {
    let samples = Samples::parse(&render_at(&options(3, 0, 10.0), Duration::ZERO));
    for model in 0..3 {
        assert_eq!(samples.count(model), 0.0);
        assert_eq!(
            samples.histogram("model_request_duration_seconds", model),
            (0.0, 0.0)
        );
    }
}

#[test]
fn histograms_are_cumulative_and_count_equals_the_inf_bucket() {
    let options = SimulateOptions {
        drift_model: Some("model-0".to_owned()),
        drift_after: Duration::from_secs(60),
        ..options(4, 5, 20.0)
    };
    let samples = Samples::parse(&render_at(&options, Duration::from_secs(120)));
    for model in 0..4 {
        for name in [
            "model_prediction_confidence",
            "model_request_duration_seconds",
        ] {
            let buckets = samples.buckets(name, model);
            for pair in buckets.windows(2) {
                assert!(pair[0].1 <= pair[1].1, "{name} model-{model}: {pair:?}");
            }
            let (count, sum) = samples.histogram(name, model);
            assert_eq!(buckets.last().unwrap().1, count, "{name} model-{model}");
            assert_eq!(samples.count(model), count, "{name} model-{model}");
            assert!(count > 0.0 && sum > 0.0, "{name} model-{model}");
        }
        // Confidence never exceeds 1, so the `le="1"` bucket holds everything.
        let confidence = samples.buckets("model_prediction_confidence", model);
        assert_eq!(confidence[19].1, confidence[20].1);
    }
}

#[test]
fn bucket_bounds_print_without_float_noise() {
    let text = render_at(&options(1, 0, 1.0), Duration::from_secs(1));
    for le in ["0.05", "0.1", "0.15", "0.3", "0.35", "0.7", "0.95", "1"] {
        assert!(
            text.contains(&format!(
                "model_prediction_confidence_bucket{{model=\"model-0\",version=\"v1\",le=\"{le}\"}}"
            )),
            "no bucket le={le}"
        );
    }
    for le in [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
    ] {
        assert!(
            text.contains(&format!(
                "model_request_duration_seconds_bucket{{model=\"model-0\",version=\"v1\",le=\"{le}\"}}"
            )),
            "no bucket le={le}"
        );
    }
    assert!(!text.contains("0000000"), "float noise in\n{text}");
}

#[test]
fn after_drift_after_only_the_drift_model_shifts() {
    // Rate 10/s: the ten minutes before the shift against the minute after.
    let drift_model = 3;
    let options = SimulateOptions {
        drift_model: Some(format!("model-{drift_model}")),
        drift_after: Duration::from_secs(600),
        ..options(6, 2024, 10.0)
    };
    let mut simulation = Simulation::new(options).unwrap();
    let mut snapshot = |seconds: u64| {
        simulation.advance_to(Duration::from_secs(seconds));
        let mut out = String::new();
        simulation.render(&mut out);
        Samples::parse(&out)
    };
    let start = snapshot(0);
    let before_last_minute = snapshot(540);
    let at_drift = snapshot(600);
    let after_drift = snapshot(660);

    for model in 0..6 {
        let (reference_count, reference_confidence) =
            window_mean(&start, &at_drift, "model_prediction_confidence", model);
        let (current_count, current_confidence) = window_mean(
            &at_drift,
            &after_drift,
            "model_prediction_confidence",
            model,
        );
        let (_, reference_latency) =
            window_mean(&start, &at_drift, "model_request_duration_seconds", model);
        let (_, current_latency) = window_mean(
            &at_drift,
            &after_drift,
            "model_request_duration_seconds",
            model,
        );
        let (_, last_minute_confidence) = window_mean(
            &before_last_minute,
            &at_drift,
            "model_prediction_confidence",
            model,
        );
        let confidence_drop = reference_confidence - current_confidence;
        let latency_ratio = current_latency / reference_latency;
        eprintln!(
            "model-{model}: {reference_count} then {current_count} requests; confidence mean \
             {reference_confidence:.4} -> {current_confidence:.4} (drop {confidence_drop:.4}); \
             latency mean {:.1} ms -> {:.1} ms (x{latency_ratio:.2})",
            reference_latency * 1e3,
            current_latency * 1e3,
        );
        assert!(
            (reference_confidence - last_minute_confidence).abs() < 0.02,
            "model-{model} is stable before drift_after"
        );
        if model == drift_model {
            assert!(
                (0.14..0.22).contains(&confidence_drop),
                "drift lowers the mean confidence by about 0.18, got {confidence_drop}"
            );
            assert!(
                (1.7..3.0).contains(&latency_ratio),
                "drift about doubles latency, got x{latency_ratio}"
            );
            // The tail grows more than the middle: the share slower than
            // 100 ms at least triples.
            let slow_share = |before: &Samples, after: &Samples| {
                let total = after.count(model) - before.count(model);
                let fast = after.get("model_request_duration_seconds_bucket", model, Some("0.1"))
                    - before.get("model_request_duration_seconds_bucket", model, Some("0.1"));
                (total - fast) / total
            };
            let reference_slow = slow_share(&start, &at_drift);
            let current_slow = slow_share(&at_drift, &after_drift);
            eprintln!("model-{model}: share above 100 ms {reference_slow:.4} -> {current_slow:.4}");
            assert!(current_slow > 3.0 * reference_slow.max(0.01));
        } else {
            assert!(
                confidence_drop.abs() < 0.02,
                "model-{model} confidence moved by {confidence_drop}"
            );
            assert!(
                (0.85..1.15).contains(&latency_ratio),
                "model-{model} latency moved x{latency_ratio}"
            );
        }
    }
}

#[tokio::test]
async fn serves_metrics_over_http_and_stops_on_shutdown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(options(3, 1, 10.0), listener, async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let response = client
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        CONTENT_TYPE
    );
    let samples = Samples::parse(&response.text().await.unwrap());
    for model in 0..3 {
        let (count, _) = samples.histogram("model_prediction_confidence", model);
        assert_eq!(samples.count(model), count);
    }

    let landing = client
        .get(format!("http://{address}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(landing.status(), 200);
    assert!(landing.text().await.unwrap().contains("href=\"/metrics\""));
    drop(client);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops after shutdown")
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "the port is closed after shutdown"
    );
}

#[tokio::test]
async fn invalid_options_fail_before_serving() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bad = SimulateOptions {
        drift_model: Some("model-7".to_owned()),
        ..options(3, 1, 10.0)
    };
    let error = serve(bad, listener, std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("model-7"), "{error}");
}

#[tokio::test]
async fn scrapes_follow_the_server_clock() {
    // The clock is set by the test, so a scrape at 100 s must equal the
    // simulation advanced to 100 s, byte for byte.
    let options = SimulateOptions {
        drift_model: Some("model-0".to_owned()),
        drift_after: Duration::from_secs(50),
        ..options(2, 77, 10.0)
    };
    let millis = Arc::new(AtomicU64::new(0));
    let clock = {
        let millis = millis.clone();
        move || Duration::from_millis(millis.load(Ordering::SeqCst))
    };
    let router = router_with_clock(Simulation::new(options.clone()).unwrap(), clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });

    let client = reqwest::Client::new();
    let scrape = |client: reqwest::Client| async move {
        let response = client
            .get(format!("http://{address}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    };
    assert_eq!(
        scrape(client.clone()).await,
        render_at(&options, Duration::ZERO)
    );
    millis.store(100_000, Ordering::SeqCst);
    let later = scrape(client.clone()).await;
    assert_eq!(later, render_at(&options, Duration::from_secs(100)));
    assert!(Samples::parse(&later).count(1) > 800.0);
    // A clock that goes back repeats the latest state.
    millis.store(10_000, Ordering::SeqCst);
    assert_eq!(scrape(client.clone()).await, later);
    drop(client);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
