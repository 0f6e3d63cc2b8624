//! The sidecar's HTTP server as clients meet it on a real port: `/metrics`
//! gzipped when the scraper asks, the connection cap
//! (`--web.max-connections`), the idle timeout (`--web.idle-timeout`) and
//! the header-read timeout (`--web.read-header-timeout`) and a graceful
//! shutdown with connections open, against a real
//! `model-monitor run` process watching the fake PromQL API.

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use crate::support::process::{get, http_client, wait_for};
use crate::support::prometheus::promtool_check_metrics;
use crate::support::promql::{FakePromql, STEADY, Script, model, vector};
use crate::support::sidecar::{Sidecar, SidecarConfig};

/// A bound on how long a raw read may block, so a broken server fails the
/// test rather than hanging it; never what a test asserts.
const READ_BOUND: Duration = Duration::from_secs(30);

const HEALTHY_REQUEST: &[u8] = b"GET /-/healthy HTTP/1.1\r\nHost: sidecar\r\n\r\n";
const HEALTHY_BODY: &str = "model-monitor is healthy\n";

/// Two steady models, whatever the query.
fn steady_models() -> Script {
    Arc::new(|_| vector(&[model("model-a", &STEADY), model("model-b", &STEADY)]).into())
}

async fn sidecar_with_flags(dir: &std::path::Path, flags: &[&str]) -> (Sidecar, FakePromql) {
    let fake = FakePromql::start(steady_models()).await;
    let sidecar =
        Sidecar::start_with_flags(dir, &SidecarConfig::fake_source(&fake.url, "5s"), flags);
    (sidecar, fake)
}

/// The series of an exposition text: each sample line without its value,
/// so two scrapes taken at different times compare equal.
fn series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            line.rsplit_once(' ')
                .map_or(line, |(series, _)| series)
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn metrics_are_gzipped_when_the_scraper_asks_and_unzip_to_the_plain_exposition() {
    let dir = tempfile::tempdir().unwrap();
    let (sidecar, _fake) = sidecar_with_flags(dir.path(), &[]).await;
    let client = http_client();
    sidecar.wait_ready(&client).await;

    let plain = client.get(sidecar.url("/metrics")).send().await.unwrap();
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.text().await.unwrap();

    let zipped = client
        .get(sidecar.url("/metrics"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.status(), 200);
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert!(
        zipped.headers()["vary"]
            .to_str()
            .unwrap()
            .to_lowercase()
            .contains("accept-encoding"),
        "vary: {:?}",
        zipped.headers()["vary"]
    );
    assert_eq!(
        zipped.headers()["content-type"],
        model_monitor::exposition::CONTENT_TYPE
    );
    let bytes = zipped.bytes().await.unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "a gzip stream");
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut unzipped)
        .expect("a whole gzip stream of UTF-8 text");
    assert!(bytes.len() < unzipped.len(), "compressed");

    // The drift gauges and the sidecar's own metrics are both in it.
    assert!(unzipped.contains("model=\"model-a\""), "{unzipped}");
    assert!(unzipped.contains("model_monitor_"), "{unzipped}");
    assert_eq!(series(&unzipped), series(&plain));
    promtool_check_metrics(&unzipped).unwrap();
}

/// Connects to the sidecar, retrying while it is not listening yet.
async fn connect(sidecar: &Sidecar) -> TcpStream {
    let address = format!("127.0.0.1:{}", sidecar.port);
    let stream = wait_for("the sidecar to listen", Duration::from_secs(30), || {
        let address = address.clone();
        async move { TcpStream::connect(&address).ok() }
    })
    .await;
    stream.set_read_timeout(Some(READ_BOUND)).unwrap();
    stream
}

/// Reads until the healthy answer's body has arrived, or the bound.
fn read_healthy_answer(stream: &mut TcpStream) {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    while !String::from_utf8_lossy(&answer).ends_with(HEALTHY_BODY) {
        let read = stream
            .read(&mut buffer)
            .expect("an answer within the bound");
        assert!(
            read > 0,
            "closed before answering: {:?}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buffer[..read]);
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
}

/// Whether the server has closed the connection: a read finds its end (or
/// a reset) rather than nothing yet. Never blocks.
fn closed_by_server(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut reader = stream;
    let closed = match reader.read(&mut [0u8; 64]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => error.kind() != ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

/// Blocks until the server closes the connection (its end or a reset),
/// within the bound.
fn wait_closed_by_server(stream: &mut TcpStream, what: &str) {
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("{what}: still open after {READ_BOUND:?}")
            }
            Err(_) => return,
        }
    }
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_idle_ones_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sidecar, _fake) = sidecar_with_flags(
        dir.path(),
        &[
            "--web.max-connections=8",
            "--web.idle-timeout=2s",
            "--web.read-header-timeout=1h",
        ],
    )
    .await;

    // Eight kept-alive connections, each served once and then left idle:
    // together they hold every place under the cap.
    let mut idle = Vec::new();
    for _ in 0..8 {
        let mut stream = connect(&sidecar).await;
        stream.write_all(HEALTHY_REQUEST).unwrap();
        read_healthy_answer(&mut stream);
        idle.push(stream);
    }

    // A ninth is answered only once the server has closed an idle one.
    let mut ninth = connect(&sidecar).await;
    ninth.write_all(HEALTHY_REQUEST).unwrap();
    read_healthy_answer(&mut ninth);
    let closed = idle
        .iter()
        .filter(|stream| closed_by_server(stream))
        .count();
    assert!(
        closed >= 1,
        "the ninth connection was served over the cap of 8"
    );

    // Every idle connection is closed, and a new client is answered.
    for (index, stream) in idle.iter_mut().enumerate() {
        wait_closed_by_server(stream, &format!("idle connection {index}"));
    }
    let client = http_client();
    assert_eq!(
        get(&client, &sidecar.url("/-/healthy")).await,
        Some((200, HEALTHY_BODY.to_owned()))
    );
    assert!(sidecar.process.is_running());
}

#[tokio::test]
async fn a_client_that_sends_no_complete_headers_is_cut_after_the_header_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (sidecar, _fake) = sidecar_with_flags(
        dir.path(),
        &["--web.read-header-timeout=1s", "--web.idle-timeout=1h"],
    )
    .await;

    // One sends nothing at all, one half a request, and one a whole request
    // and then half of its next.
    let half_request: &[u8] = b"GET /-/healthy HTTP/1.1\r\nHost: sidecar\r\n";
    let mut silent = connect(&sidecar).await;
    let mut partial = connect(&sidecar).await;
    partial.write_all(half_request).unwrap();
    let mut second_partial = connect(&sidecar).await;
    second_partial.write_all(HEALTHY_REQUEST).unwrap();
    read_healthy_answer(&mut second_partial);
    second_partial.write_all(half_request).unwrap();

    wait_closed_by_server(&mut silent, "a connection that sent nothing");
    wait_closed_by_server(&mut partial, "a connection that sent half its headers");
    wait_closed_by_server(
        &mut second_partial,
        "a connection that sent half its second request's headers",
    );

    // A client that sends its request in time is answered.
    let mut prompt = connect(&sidecar).await;
    prompt.write_all(HEALTHY_REQUEST).unwrap();
    read_healthy_answer(&mut prompt);
}

#[tokio::test]
async fn sigterm_closes_idle_and_silent_connections_without_waiting_for_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sidecar, _fake) = sidecar_with_flags(dir.path(), &[]).await;

    // A kept-alive connection served once, and one that sent nothing.
    let mut idle = connect(&sidecar).await;
    idle.write_all(HEALTHY_REQUEST).unwrap();
    read_healthy_answer(&mut idle);
    let mut silent = connect(&sidecar).await;

    let status = sidecar
        .process
        .signal_and_wait("TERM", Duration::from_secs(15))
        .expect("the sidecar exits after SIGTERM");
    let log = sidecar.process.log_text();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("message=stopped"), "{log}");
    assert!(!log.contains("did not stop within the deadline"), "{log}");
    wait_closed_by_server(&mut idle, "the idle connection");
    wait_closed_by_server(&mut silent, "the silent connection");
}
