//! The web config's decoding: exporter-toolkit's files read unchanged, and
//! each mistake named with its line and key.

use super::*;

fn parse(text: &str) -> Result<WebConfig, Vec<String>> {
    parse_web_config(text, "web.yml", Path::new("/etc/mm"))
        .map_err(|error| error.problems.iter().map(ToString::to_string).collect())
}

fn problems(text: &str) -> String {
    parse(text)
        .expect_err("the web config is invalid")
        .join("\n")
}

const HASH: &str = "$2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze";

#[test]
fn an_empty_file_is_plain_http_without_authentication() {
    let config = parse("").unwrap();
    assert_eq!(config.tls, None);
    assert!(config.http2);
    assert!(config.basic_auth_users.0.is_empty());
}

#[test]
fn exporter_toolkits_example_file_is_read_unchanged() {
    let text = format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  alice: {HASH}\nrate_limit:\n  interval: \"1s\"\n  burst: 20\n"
    );
    let config = parse(&text).unwrap();
    let tls = config.tls.unwrap();
    assert_eq!(tls.cert, Pem::File("/etc/mm/server.crt".into()));
    assert_eq!(tls.client_auth, ClientAuth::NoClientCert);
    assert!(tls.min_tls12 && tls.max_tls13 && tls.prefer_server_cipher_suites);
    assert_eq!(config.basic_auth_users.0["alice"], HASH);
    assert_eq!(
        config.rate_limit,
        Some(RateLimit {
            interval: Duration::from_secs(1),
            burst: 20
        })
    );
    assert_eq!(config.files.len(), 2);
}

#[test]
fn unknown_keys_are_named_with_the_allowed_ones() {
    let text = "tls_server_config:\n  cert_file: a\n  key_file: b\n  certfile: c\n";
    let message = problems(text);
    assert!(
        message.contains("web.yml:4: tls_server_config.certfile: unknown key \"certfile\""),
        "{message}"
    );
    assert!(
        message.contains("allowed keys: cert, cert_file, key, key_file"),
        "{message}"
    );
}

#[test]
fn old_tls_versions_are_refused_naming_the_version() {
    let message =
        problems("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n");
    assert!(
        message.contains("tls_server_config.min_version: TLS10 is not supported"),
        "{message}"
    );
    let message = problems(
        "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12\n",
    );
    assert!(
        message.contains("min_version TLS13 is above max_version TLS12"),
        "{message}"
    );
}

#[test]
fn unsupported_cipher_suites_and_curves_are_named() {
    let text = "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305, TLS_RSA_WITH_AES_128_CBC_SHA]\n  curve_preferences: [X25519, CurveP521]\n";
    let message = problems(text);
    assert!(
        message.contains(
            "cipher_suites[1]: cipher suite \"TLS_RSA_WITH_AES_128_CBC_SHA\" is not supported"
        ),
        "{message}"
    );
    assert!(
        message.contains("curve_preferences[1]: curve \"CurveP521\" is not supported"),
        "{message}"
    );
    assert!(!message.contains("cipher_suites[0]"), "{message}");
}

#[test]
fn client_policies_need_a_ca_exactly_when_they_verify() {
    let message = problems(
        "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n",
    );
    assert!(
        message.contains("RequireAndVerifyClientCert needs client_ca_file"),
        "{message}"
    );
    let message =
        problems("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: ca.crt\n");
    assert!(
        message.contains("does not verify client certificates"),
        "{message}"
    );
    let message = problems(
        "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Required\n",
    );
    assert!(
        message.contains("unknown client_auth_type \"Required\""),
        "{message}"
    );
    let config = parse("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  client_allowed_sans: [client.example]\n").unwrap();
    assert_eq!(config.tls.unwrap().client_allowed_sans, ["client.example"]);
}

#[test]
fn a_certificate_without_a_key_is_a_problem() {
    let message = problems("tls_server_config:\n  cert_file: a\n");
    assert!(
        message.contains("tls_server_config.key_file: missing one of key and key_file"),
        "{message}"
    );
    let message = problems("tls_server_config:\n  cert_file: a\n  cert: inline\n  key_file: b\n");
    assert!(
        message.contains("set only one of cert and cert_file"),
        "{message}"
    );
}

#[test]
fn only_exporter_toolkits_headers_are_allowed() {
    let text = "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n    X-Content-Type-Options: ''\n";
    let config = parse(text).unwrap();
    assert!(!config.http2);
    assert_eq!(config.headers.len(), 2);
    let message = problems(
        "http_server_config:\n  headers:\n    Server: nginx\n    X-Frame-Options: allow\n",
    );
    assert!(
        message.contains("http_server_config.headers.Server: unknown key \"Server\""),
        "{message}"
    );
    assert!(
        message.contains("X-Frame-Options: invalid value \"allow\"; accepted: deny, sameorigin"),
        "{message}"
    );
}

#[test]
fn a_password_where_a_hash_belongs_is_refused_without_showing_it() {
    let message = problems("basic_auth_users:\n  alice: hunter2\n");
    assert!(
        message.contains("basic_auth_users.alice: not a bcrypt hash"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    let config = parse(&format!("basic_auth_users:\n  alice: {HASH}\n")).unwrap();
    assert!(!format!("{config:?}").contains(HASH));
}

#[test]
fn a_rate_limit_needs_a_burst_and_a_zero_interval_disables_it() {
    assert_eq!(
        parse("rate_limit: {interval: 0, burst: 5}\n")
            .unwrap()
            .rate_limit,
        None
    );
    assert_eq!(
        parse("rate_limit: {interval: 0s, burst: 0}\n")
            .unwrap()
            .rate_limit,
        None
    );
    let message = problems("rate_limit: {interval: 1s}\n");
    assert!(
        message.contains("rate_limit.burst: must be at least 1"),
        "{message}"
    );
}
