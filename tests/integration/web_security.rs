//! The endpoints behind a web config (`--web.config.file`, Prometheus'
//! exporter-toolkit format): TLS with certificates generated here (a CA, a
//! server certificate for 127.0.0.1 and localhost, a client certificate
//! from that CA and one from another CA), client certificates, basic auth,
//! response headers, certificate rotation, the header-read timeout over an
//! unfinished handshake, `check-web-config`, and a real Prometheus scraping
//! over mTLS with basic auth, with a web config written as for Prometheus.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

use crate::support::process::{wait_for, wait_until_ok};
use crate::support::prometheus::PrometheusServer;
use crate::support::promql::{FakePromql, STEADY, Script, model, vector};
use crate::support::sidecar::{Sidecar, SidecarConfig};

/// The password of user `prometheus` in these tests.
const PASSWORD: &str = "correct horse battery staple";

/// A bound on how long a raw read may block, so a broken server fails the
/// test rather than hanging it; never what a test asserts.
const READ_BOUND: Duration = Duration::from_secs(30);

/// A certificate authority that signs certificates for the tests.
struct Authority {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        Authority {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A certificate and its key (PEM) for `names`, for a server or a
    /// client.
    fn issue(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// The files of one test: a CA, the server's certificate and key, a
/// client certificate from the CA and one from a stranger CA.
struct Pki {
    dir: PathBuf,
    ca: Authority,
    client: (String, String),
    stranger: (String, String),
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let ca = Authority::new("model-monitor test ca");
        let stranger_ca = Authority::new("another ca");
        let server = ca.issue(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let client = ca.issue(&["prometheus"], ExtendedKeyUsagePurpose::ClientAuth);
        let stranger = stranger_ca.issue(&["prometheus"], ExtendedKeyUsagePurpose::ClientAuth);
        let pki = Pki {
            dir: dir.to_owned(),
            ca,
            client,
            stranger,
        };
        pki.write("ca.crt", &pki.ca.pem);
        pki.write("server.crt", &server.0);
        pki.write("server.key", &server.1);
        pki.write("client.crt", &pki.client.0);
        pki.write("client.key", &pki.client.1);
        pki
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Replaces a file as rotation tools do: written aside, then renamed
    /// over the old one.
    fn replace(&self, name: &str, text: &str) {
        let aside = self.write(&format!("{name}.new"), text);
        std::fs::rename(aside, self.dir.join(name)).unwrap();
    }
}

/// A client that trusts only `ca_pem`, offers `identity` (certificate and
/// key PEM) when given, opens a new connection per request and reports the
/// server's certificate.
fn tls_client(ca_pem: &str, identity: Option<&(String, String)>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .tls_info(true)
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()]);
    if let Some((cert, key)) = identity {
        builder = builder
            .identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// A bcrypt hash of [`PASSWORD`] (cost 4: the tests check, not the cost).
fn password_hash() -> String {
    bcrypt::hash(PASSWORD, 4).unwrap()
}

fn steady_models() -> Script {
    Arc::new(|_| vector(&[model("model-a", &STEADY)]).into())
}

/// A sidecar watching a fake PromQL API, with `web_config` written to
/// `web.yml` in `dir` and more `flags`.
async fn secured_sidecar(dir: &Path, web_config: &str, flags: &[&str]) -> (Sidecar, FakePromql) {
    let web = dir.join("web.yml");
    std::fs::write(&web, web_config).unwrap();
    let fake = FakePromql::start(steady_models()).await;
    let mut all = vec![format!("--web.config.file={}", web.display())];
    all.extend(flags.iter().map(|flag| (*flag).to_owned()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let sidecar =
        Sidecar::start_with_flags(dir, &SidecarConfig::fake_source(&fake.url, "5s"), &all);
    (sidecar, fake)
}

fn https(sidecar: &Sidecar, path: &str) -> String {
    format!("https://localhost:{}{path}", sidecar.port)
}

/// Waits until the sidecar answers `/-/healthy` over https to `client`.
async fn wait_served(client: &reqwest::Client, sidecar: &Sidecar) {
    let url = https(sidecar, "/-/healthy");
    wait_until_ok(
        client,
        "the sidecar over tls",
        &url,
        Duration::from_secs(30),
    )
    .await;
}

/// The DER of the certificate the server presented.
fn peer_certificate(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("a tls connection with a server certificate")
        .to_vec()
}

fn der_of(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// `model-monitor ARGS`: exit code, stdout, stderr.
fn model_monitor(args: &[&str]) -> (i32, String, String) {
    crate::support::process::run_binary(
        &args.iter().map(|arg| (*arg).to_owned()).collect::<Vec<_>>(),
    )
}

#[tokio::test]
async fn tls_serves_clients_that_trust_the_ca_with_the_configured_headers_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let web = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n";
    let (sidecar, _fake) = secured_sidecar(dir.path(), web, &[]).await;
    let trusting = tls_client(&pki.ca.pem, None);
    wait_served(&trusting, &sidecar).await;

    let response = trusting
        .get(https(&sidecar, "/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.version(),
        reqwest::Version::HTTP_2,
        "h2 is offered by default"
    );
    assert_eq!(response.headers()["x-frame-options"], "deny");
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    assert!(response.text().await.unwrap().contains("model_monitor_up"));

    let stranger = Authority::new("a ca the server never used");
    let distrusting = tls_client(&stranger.pem, None);
    let error = distrusting
        .get(https(&sidecar, "/metrics"))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_connect(), "{error:?}");

    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let answer = plain.get(sidecar.url("/metrics")).send().await;
    assert!(
        answer.is_err(),
        "plain http to the tls port was answered: {answer:?}"
    );
}

#[tokio::test]
async fn client_certificates_are_required_and_verified_against_the_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let web = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  client_allowed_sans: [prometheus]\n";
    let (sidecar, _fake) = secured_sidecar(dir.path(), web, &[]).await;
    let good = tls_client(&pki.ca.pem, Some(&pki.client));
    wait_served(&good, &sidecar).await;

    let without = tls_client(&pki.ca.pem, None);
    let answer = without.get(https(&sidecar, "/-/healthy")).send().await;
    assert!(
        answer.is_err(),
        "a client without a certificate was answered: {answer:?}"
    );

    let stranger = tls_client(&pki.ca.pem, Some(&pki.stranger));
    let answer = stranger.get(https(&sidecar, "/-/healthy")).send().await;
    assert!(
        answer.is_err(),
        "a certificate from another ca was accepted: {answer:?}"
    );

    // A certificate from the right CA, for a name not in client_allowed_sans.
    let other_name = pki
        .ca
        .issue(&["someone-else"], ExtendedKeyUsagePurpose::ClientAuth);
    let other = tls_client(&pki.ca.pem, Some(&other_name));
    let answer = other.get(https(&sidecar, "/-/healthy")).send().await;
    assert!(
        answer.is_err(),
        "a certificate for a name not allowed was accepted: {answer:?}"
    );

    let response = good
        .get(https(&sidecar, "/-/healthy"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn basic_auth_lets_the_right_password_in_and_answers_401_otherwise_without_logging_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let hash = password_hash();
    let web = format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: {hash}\n"
    );
    let (sidecar, _fake) = secured_sidecar(dir.path(), &web, &["--log.level=debug"]).await;
    let client = tls_client(&pki.ca.pem, None);
    let url = https(&sidecar, "/metrics");
    wait_for("the sidecar over tls", Duration::from_secs(30), || async {
        client.get(&url).send().await.ok().map(|_| ())
    })
    .await;

    let none = client.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Basic");
    let wrong = client
        .get(&url)
        .basic_auth("prometheus", Some("tr0ub4dor"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let unknown = client
        .get(&url)
        .basic_auth("grafana", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    for _ in 0..3 {
        let right = client
            .get(&url)
            .basic_auth("prometheus", Some(PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(right.status(), 200);
    }

    let log = sidecar.process.log_text();
    assert!(log.contains("web config loaded"), "{log}");
    for secret in [PASSWORD, "tr0ub4dor", hash.as_str(), "PRIVATE KEY"] {
        assert!(!log.contains(secret), "the log shows {secret:?}:\n{log}");
    }
}

#[tokio::test]
async fn a_rotated_certificate_is_served_on_the_next_connection_and_a_broken_one_refuses_connections()
 {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let web = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let (sidecar, _fake) = secured_sidecar(dir.path(), web, &[]).await;
    let client = tls_client(&pki.ca.pem, None);
    wait_served(&client, &sidecar).await;
    let first = client
        .get(https(&sidecar, "/-/healthy"))
        .send()
        .await
        .unwrap();
    let first_der = peer_certificate(&first);
    assert_eq!(
        first_der,
        der_of(&std::fs::read_to_string(dir.path().join("server.crt")).unwrap())
    );

    // The key first, then the certificate: in between, the pair does not
    // match and connections are refused; after, the new pair is served.
    let (cert, key) = pki.ca.issue(
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    pki.replace("server.key", &key);
    let answer = client.get(https(&sidecar, "/-/healthy")).send().await;
    assert!(
        answer.is_err(),
        "a mismatched key and certificate were served: {answer:?}"
    );
    pki.replace("server.crt", &cert);
    let rotated = client
        .get(https(&sidecar, "/-/healthy"))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 200);
    assert_eq!(peer_certificate(&rotated), der_of(&cert));
    assert_ne!(peer_certificate(&rotated), first_der);

    let log = sidecar.process.log_text();
    assert!(log.contains("web config is invalid"), "{log}");
    assert!(log.contains("web config reloaded"), "{log}");
}

#[test]
fn a_connection_that_never_finishes_the_handshake_is_dropped_after_the_header_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pki = Pki::new(dir.path());
    let web = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let (sidecar, _fake) = runtime.block_on(secured_sidecar(
        dir.path(),
        web,
        &["--web.read-header-timeout=1s"],
    ));
    let client = tls_client(&pki.ca.pem, None);
    runtime.block_on(wait_served(&client, &sidecar));

    let mut silent = TcpStream::connect(("127.0.0.1", sidecar.port)).unwrap();
    silent.set_read_timeout(Some(READ_BOUND)).unwrap();
    let mut buffer = [0u8; 64];
    let read = silent.read(&mut buffer);
    assert!(
        matches!(read, Ok(0))
            || matches!(&read, Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset),
        "the silent connection was not closed: {read:?}"
    );
}

#[test]
fn check_web_config_accepts_a_good_file_and_names_the_key_or_file_of_each_problem() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let hash = password_hash();
    let good = pki.write(
        "good.yml",
        &format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\nbasic_auth_users:\n  prometheus: {hash}\n"),
    );
    let (code, stdout, stderr) = model_monitor(&["check-web-config", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(
            "ok (tls on, client certificates RequireAndVerifyClientCert, 1 basic auth user(s)"
        ),
        "{stdout}"
    );

    let keys = pki.write(
        "keys.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS11\n  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n  certfile: x\n",
    );
    let (code, _, stderr) = model_monitor(&["check-web-config", keys.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    let name = keys.display().to_string();
    for expected in [
        format!("{name}:4: tls_server_config.min_version: TLS11 is not supported"),
        format!(
            "{name}:5: tls_server_config.cipher_suites[0]: cipher suite \"TLS_RSA_WITH_AES_128_CBC_SHA\" is not supported"
        ),
        format!("{name}:6: tls_server_config.certfile: unknown key \"certfile\""),
        format!("{name}: 3 problem(s) found"),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }

    pki.write("garbage.crt", "not a certificate\n");
    let files = pki.write(
        "files.yml",
        "tls_server_config:\n  cert_file: garbage.crt\n  key_file: server.key\n",
    );
    let (code, _, stderr) = model_monitor(&["check-web-config", files.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("no certificate in") && stderr.contains("garbage.crt"),
        "{stderr}"
    );

    let missing_key = pki.write(
        "missing.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: missing.key\n",
    );
    let (code, _, stderr) = model_monitor(&["check-web-config", missing_key.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    let expected = format!(
        "{}:3: tls_server_config.key_file: cannot read {}",
        missing_key.display(),
        dir.path().join("missing.key").display()
    );
    assert!(
        stderr.contains(&expected),
        "missing {expected:?} in:\n{stderr}"
    );

    // check-config checks the web config it is given too.
    let config = pki.write("config.yml", "prometheus:\n  url: http://127.0.0.1:9090\nmonitors:\n  - name: m\n    signals:\n      confidence:\n        histogram: model_prediction_confidence\n        detectors: [{type: psi}]\n");
    let (code, _, stderr) = model_monitor(&[
        "check-config",
        config.to_str().unwrap(),
        &format!("--web.config.file={}", keys.display()),
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("unknown key \"certfile\""), "{stderr}");
    let (code, stdout, stderr) = model_monitor(&[
        "check-config",
        config.to_str().unwrap(),
        &format!("--web.config.file={}", good.display()),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("good.yml: ok"), "{stdout}");
}

#[tokio::test]
async fn a_real_prometheus_scrapes_the_sidecar_over_mtls_with_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    // The files Prometheus and the sidecar read.
    let _pki = Pki::new(dir.path());
    let hash = password_hash();
    // As a user writes it for Prometheus itself.
    let web = format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS12\nhttp_server_config:\n  http2: false\nbasic_auth_users:\n  prometheus: {hash}\n"
    );
    let (sidecar, _fake) = secured_sidecar(dir.path(), &web, &[]).await;
    let d = dir.path().display();
    let prometheus = PrometheusServer::start_with_config(
        dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: sidecar\n    scheme: https\n    tls_config:\n      ca_file: {d}/ca.crt\n      cert_file: {d}/client.crt\n      key_file: {d}/client.key\n    basic_auth:\n      username: prometheus\n      password: '{PASSWORD}'\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            sidecar.port
        ),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    prometheus.wait_ready(&client).await;
    let query = format!(
        "{}/api/v1/query?query=up%7Bjob%3D%22sidecar%22%7D",
        prometheus.url()
    );
    wait_for(
        "prometheus to scrape the sidecar with up == 1",
        Duration::from_secs(60),
        || async {
            let answer: serde_json::Value =
                client.get(&query).send().await.ok()?.json().await.ok()?;
            let value = answer["data"]["result"][0]["value"][1].as_str()?.to_owned();
            (value == "1").then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn the_example_web_config_is_valid_and_lets_the_demo_client_in_with_the_documented_password()
{
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let example = examples.join("web-config.yml");
    let (code, stdout, stderr) = model_monitor(&["check-web-config", example.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("ok (tls on, client certificates RequireAndVerifyClientCert"),
        "{stdout}"
    );

    let dir = tempfile::tempdir().unwrap();
    let fake = FakePromql::start(steady_models()).await;
    let flag = format!("--web.config.file={}", example.display());
    let sidecar = Sidecar::start_with_flags(
        dir.path(),
        &SidecarConfig::fake_source(&fake.url, "5s"),
        &[&flag],
    );
    let secret =
        |name: &str| std::fs::read_to_string(examples.join("secrets/tls").join(name)).unwrap();
    let client = tls_client(
        &secret("ca.crt"),
        Some(&(secret("client.crt"), secret("client.key"))),
    );
    let url = https(&sidecar, "/-/healthy");
    wait_for(
        "the sidecar with the example web config",
        Duration::from_secs(30),
        || async { client.get(&url).send().await.ok().map(|_| ()) },
    )
    .await;
    let denied = client
        .get(&url)
        .basic_auth("prometheus", Some("not-demo"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    let admitted = client
        .get(&url)
        .basic_auth("prometheus", Some("demo"))
        .send()
        .await
        .unwrap();
    assert_eq!(admitted.status(), 200);
    assert_eq!(admitted.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn without_tls_basic_auth_and_the_rate_limit_apply_and_a_broken_reload_answers_500() {
    let dir = tempfile::tempdir().unwrap();
    let hash = password_hash();
    let web = format!(
        "basic_auth_users:\n  prometheus: {hash}\nrate_limit:\n  interval: 1h\n  burst: 3\n"
    );
    let (sidecar, _fake) = secured_sidecar(dir.path(), &web, &[]).await;
    // Every request takes a token: wait for the port without one.
    let port = sidecar.port;
    wait_for(
        "the sidecar to listen",
        Duration::from_secs(30),
        || async move { TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ()) },
    )
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = sidecar.url("/-/healthy");
    let status = |password: &'static str| {
        let request = client.get(&url).basic_auth("prometheus", Some(password));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(PASSWORD).await, 200);
    assert_eq!(status("wrong").await, 401);
    assert_eq!(status(PASSWORD).await, 200);
    assert_eq!(status(PASSWORD).await, 429, "the burst of 3 is spent");

    std::fs::write(
        dir.path().join("web.yml"),
        "basic_auth_users: [not, a, mapping]\n",
    )
    .unwrap();
    assert_eq!(status(PASSWORD).await, 500);
    let log = sidecar.process.log_text();
    assert!(
        log.contains("basic_auth_users: expected a mapping"),
        "{log}"
    );
}

#[tokio::test]
async fn verify_client_cert_if_given_lets_clients_without_one_in_but_checks_those_that_send_one_over_http1_when_http2_is_off()
 {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let web = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\nhttp_server_config:\n  http2: false\n";
    let (sidecar, _fake) = secured_sidecar(dir.path(), web, &[]).await;
    let without = tls_client(&pki.ca.pem, None);
    let url = https(&sidecar, "/-/healthy");
    wait_served(&without, &sidecar).await;
    let good = tls_client(&pki.ca.pem, Some(&pki.client));
    let response = good.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.version(),
        reqwest::Version::HTTP_11,
        "http2: false"
    );
    let stranger = tls_client(&pki.ca.pem, Some(&pki.stranger));
    let answer = stranger.get(&url).send().await;
    assert!(
        answer.is_err(),
        "a certificate from another ca was accepted: {answer:?}"
    );
}
