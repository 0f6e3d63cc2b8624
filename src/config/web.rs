//! The web configuration file (`--web.config.file`): TLS, basic
//! authentication, response headers and a rate limit for the sidecar's own
//! endpoints, in the format of Prometheus' exporter-toolkit
//! (`docs/web-configuration.md` there), so that a file written for
//! Prometheus or one of its exporters works here unchanged.
//!
//! The file is decoded like the main config (every problem collected, with
//! line and key path; unknown keys are errors listing the allowed ones) with
//! two differences that keep exporter-toolkit's meaning: `${VAR}` is not
//! expanded (a bcrypt hash is full of `$`), and relative paths resolve
//! against the web config file's directory. Whatever needs the files
//! themselves (certificates, keys) is checked by the exporter's TLS layer
//! (`src/sinks/exporter/tls.rs`); decoding never touches the file system
//! beyond reading this file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::decode::{ConfigError, Decoder, FileReference};
use super::tree::{self, Node};

/// The headers `http_server_config.headers` may set, as exporter-toolkit
/// allows them.
pub const ALLOWED_HEADERS: [&str; 5] = [
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Strict-Transport-Security",
];

/// The TLS 1.2 cipher suites, by their Go names, that rustls implements and
/// `cipher_suites` may therefore list (TLS 1.3 suites are not configurable,
/// as in Go).
pub const TLS12_CIPHER_SUITES: [&str; 6] = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// Go's short names of the two ChaCha20 suites, accepted as the long ones.
const CIPHER_SUITE_ALIASES: [(&str, &str); 2] = [
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
];

/// The key-exchange groups, by their Go names, that `curve_preferences` may
/// list: the ones rustls implements.
pub const CURVES: [&str; 4] = ["X25519", "CurveP256", "CurveP384", "X25519MLKEM768"];

/// The TLS versions rustls speaks, by their Go names.
pub const TLS_VERSIONS: [&str; 2] = ["TLS12", "TLS13"];

/// The client certificate policies, by Go's names.
pub const CLIENT_AUTH_TYPES: [&str; 5] = [
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
];

/// Default `http_server_config.http2`.
pub const DEFAULT_HTTP2: bool = true;
/// Default `tls_server_config.prefer_server_cipher_suites`.
pub const DEFAULT_PREFER_SERVER_CIPHER_SUITES: bool = true;

/// The whole web config file. An empty file is valid: plain HTTP, no
/// authentication, as without the flag.
#[derive(Debug, Clone, PartialEq)]
pub struct WebConfig {
    /// `None` when the file sets no certificate, key or client policy: the
    /// endpoints then speak plain HTTP, as exporter-toolkit's do.
    pub tls: Option<TlsServerConfig>,
    pub http2: bool,
    /// Response headers in the order written; a blank value is left out.
    pub headers: Vec<(String, String)>,
    pub basic_auth_users: BasicAuthUsers,
    /// `None` when absent or when its interval is 0.
    pub rate_limit: Option<RateLimit>,
    /// The files the web config names (certificates, keys, client CAs),
    /// re-read when they change.
    pub files: Vec<FileReference>,
}

/// User names and their bcrypt hashes. `Debug` shows the names only.
#[derive(Clone, Default, PartialEq)]
pub struct BasicAuthUsers(pub BTreeMap<String, String>);

impl std::fmt::Debug for BasicAuthUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// PEM text given inline or as a file. `Debug` never shows inline text.
#[derive(Clone, PartialEq)]
pub enum Pem {
    File(PathBuf),
    Inline(String),
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pem::File(path) => f.debug_tuple("File").field(path).finish(),
            Pem::Inline(_) => f.write_str("Inline(<redacted>)"),
        }
    }
}

impl Pem {
    /// Where the PEM comes from, for messages: the file, or the key that
    /// holds it inline.
    pub fn describe(&self, inline_key: &str) -> String {
        match self {
            Pem::File(path) => path.display().to_string(),
            Pem::Inline(_) => format!("the inline {inline_key}"),
        }
    }
}

/// Who may connect, by their client certificate (Go's `tls.ClientAuthType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    fn from_name(name: &str) -> ClientAuth {
        match name {
            "RequestClientCert" => ClientAuth::RequestClientCert,
            "RequireAnyClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            _ => ClientAuth::NoClientCert,
        }
    }

    /// Whether a client certificate is checked against the client CA.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }

    /// Whether a client without a certificate is turned away.
    pub fn requires(self) -> bool {
        matches!(
            self,
            ClientAuth::RequireAnyClientCert | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// `tls_server_config`.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsServerConfig {
    pub cert: Pem,
    pub key: Pem,
    pub client_auth: ClientAuth,
    /// Set exactly when `client_auth` verifies.
    pub client_ca: Option<Pem>,
    /// A client certificate must name one of these (DNS name or IP address)
    /// when not empty.
    pub client_allowed_sans: Vec<String>,
    /// `true` for TLS 1.2, `false` for TLS 1.3; min is at most max.
    pub min_tls12: bool,
    pub max_tls13: bool,
    /// Names from [`TLS12_CIPHER_SUITES`], in preference order; empty for
    /// rustls' defaults.
    pub cipher_suites: Vec<&'static str>,
    pub prefer_server_cipher_suites: bool,
    /// Names from [`CURVES`], in preference order; empty for rustls'
    /// defaults.
    pub curve_preferences: Vec<&'static str>,
}

/// `rate_limit`: a token bucket over every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// One token is added per interval (greater than 0).
    pub interval: Duration,
    /// The bucket holds this many tokens (at least 1).
    pub burst: u32,
}

/// Reads and validates a web config file.
pub fn load_web_config(path: &Path) -> Result<WebConfig, ConfigError> {
    let (text, file) = super::load::read_text(path)?;
    let base_dir = path.parent().unwrap_or(Path::new(""));
    parse_web_config(&text, &file, base_dir)
}

/// Validates web config text; `file` names it in problems and relative
/// paths resolve against `base_dir`.
pub fn parse_web_config(text: &str, file: &str, base_dir: &Path) -> Result<WebConfig, ConfigError> {
    let mut decoder = Decoder {
        file,
        base_dir,
        problems: Vec::new(),
        files: Vec::new(),
    };
    let root = match tree::parse(text) {
        Ok(root) => root,
        Err(error) => {
            decoder.report(error.line, "", format!("invalid yaml: {}", error.message));
            return Err(decoder.into_error());
        }
    };
    let config = match &root {
        None => Some(WebConfig {
            tls: None,
            http2: DEFAULT_HTTP2,
            headers: Vec::new(),
            basic_auth_users: BasicAuthUsers::default(),
            rate_limit: None,
            files: Vec::new(),
        }),
        Some(root) => decoder.web_config(root),
    };
    match config {
        Some(mut config) if decoder.problems.is_empty() => {
            config.files = std::mem::take(&mut decoder.files);
            Ok(config)
        }
        _ => Err(decoder.into_error()),
    }
}

/// Whether `hash` has the form of a bcrypt hash (`$2a$`, `$2b$`, `$2x$` or
/// `$2y$`, a two-digit cost from 4 to 31, 53 characters of salt and hash).
fn looks_like_bcrypt(hash: &str) -> bool {
    let bytes = hash.as_bytes();
    bytes.len() == 60
        && hash.starts_with("$2")
        && matches!(bytes[2], b'a' | b'b' | b'x' | b'y')
        && bytes[3] == b'$'
        && bytes[6] == b'$'
        && hash[4..6]
            .parse::<u32>()
            .is_ok_and(|cost| (4..=31).contains(&cost))
}

impl Decoder<'_> {
    fn web_config(&mut self, root: &Node) -> Option<WebConfig> {
        self.section(root, "", |d, fields| {
            let tls = d.optional(fields, "tls_server_config", None, Self::tls_server_config);
            let http = d.optional(
                fields,
                "http_server_config",
                (DEFAULT_HTTP2, Vec::new()),
                Self::http_server_config,
            );
            let users = d.optional(
                fields,
                "basic_auth_users",
                BasicAuthUsers::default(),
                Self::basic_auth_users,
            );
            let rate_limit = d.optional(fields, "rate_limit", None, Self::rate_limit);
            let (http2, headers) = http?;
            Some(WebConfig {
                tls: tls?,
                http2,
                headers,
                basic_auth_users: users?,
                rate_limit: rate_limit?,
                files: Vec::new(),
            })
        })
    }

    /// One of `inline_key` and `file_key`, as PEM.
    fn pem(
        &mut self,
        fields: &super::decode::Fields<'_>,
        inline_key: &'static str,
        file_key: &'static str,
    ) -> Option<Option<Pem>> {
        let source = self.inline_or_file(fields, (inline_key, file_key), false, |d, n, p| {
            d.non_empty(n, p).map(super::SecretSource::Inline)
        })?;
        Some(source.map(|source| match source {
            super::SecretSource::Inline(text) => Pem::Inline(text),
            super::SecretSource::File(path) => Pem::File(path),
        }))
    }

    fn tls_server_config(&mut self, node: &Node, path: &str) -> Option<Option<TlsServerConfig>> {
        self.section(node, path, |d, fields| {
            let cert = d.pem(fields, "cert", "cert_file");
            let key = d.pem(fields, "key", "key_file");
            let client_auth = d.optional(fields, "client_auth_type", None, |d, n, p| {
                d.choice(n, p, "client_auth_type", &CLIENT_AUTH_TYPES)
                    .map(|name| Some(ClientAuth::from_name(&name)))
            });
            let client_ca = d.pem(fields, "client_ca", "client_ca_file");
            let sans = d.optional(fields, "client_allowed_sans", Vec::new(), |d, n, p| {
                d.string_list(n, p)
                    .map(|items| items.into_iter().map(|(text, _)| text).collect())
            });
            let min = d.optional(fields, "min_version", true, Self::tls_version);
            let max = d.optional(fields, "max_version", false, Self::tls_version);
            let suites = d.optional(fields, "cipher_suites", Vec::new(), Self::cipher_suites);
            let prefer = d.optional(
                fields,
                "prefer_server_cipher_suites",
                DEFAULT_PREFER_SERVER_CIPHER_SUITES,
                Self::boolean,
            );
            let curves = d.optional(fields, "curve_preferences", Vec::new(), Self::curves);
            let (cert, key, client_auth, client_ca) = (cert?, key?, client_auth?, client_ca?);
            let (sans, min_tls12, max_tls12) = (sans?, min?, max?);
            // As exporter-toolkit: without a certificate, key or client
            // policy, TLS is off.
            if cert.is_none() && key.is_none() && client_auth.is_none() && client_ca.is_none() {
                return Some(None);
            }
            let line = fields.line;
            let (Some(cert), Some(key)) = (cert.clone(), key.clone()) else {
                if cert.is_none() {
                    d.report(line, &fields.path("cert_file"), "missing one of cert and cert_file");
                }
                if key.is_none() {
                    d.report(line, &fields.path("key_file"), "missing one of key and key_file");
                }
                return None;
            };
            let client_auth = client_auth.unwrap_or(ClientAuth::NoClientCert);
            let auth_path = fields.path("client_auth_type");
            let mut ok = true;
            if client_auth.verifies() && client_ca.is_none() {
                d.report(line, &auth_path, format!("{client_auth:?} needs client_ca_file (or client_ca) to verify client certificates against"));
                ok = false;
            }
            if client_ca.is_some() && !client_auth.verifies() {
                d.report(line, &auth_path, format!("a client CA is set, but client_auth_type {client_auth:?} does not verify client certificates: use RequireAndVerifyClientCert or VerifyClientCertIfGiven"));
                ok = false;
            }
            if !sans.is_empty() && !client_auth.requires() {
                d.report(line, &fields.path("client_allowed_sans"), "client_allowed_sans needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert (other policies let a client connect without a certificate)");
                ok = false;
            }
            if !min_tls12 && max_tls12 {
                d.report(line, &fields.path("min_version"), "min_version TLS13 is above max_version TLS12");
                ok = false;
            }
            let config = TlsServerConfig {
                cert,
                key,
                client_auth,
                client_ca,
                client_allowed_sans: sans,
                min_tls12,
                max_tls13: !max_tls12,
                cipher_suites: suites?,
                prefer_server_cipher_suites: prefer?,
                curve_preferences: curves?,
            };
            ok.then_some(Some(config))
        })
    }

    /// A TLS version: `true` for TLS12, `false` for TLS13.
    fn tls_version(&mut self, node: &Node, path: &str) -> Option<bool> {
        let text = self.string(node, path)?;
        match text.as_str() {
            "TLS12" => Some(true),
            "TLS13" => Some(false),
            "TLS10" | "TLS11" => {
                self.report(node.line, path, format!("{text} is not supported: rustls speaks only TLS12 and TLS13, which are also the only versions considered secure"));
                None
            }
            _ => self
                .choice(node, path, "tls version", &TLS_VERSIONS)
                .map(|_| true),
        }
    }

    fn cipher_suites(&mut self, node: &Node, path: &str) -> Option<Vec<&'static str>> {
        let items = self.string_list(node, path)?;
        let mut suites = Vec::new();
        let mut ok = true;
        for (index, (name, item)) in items.into_iter().enumerate() {
            let name = CIPHER_SUITE_ALIASES
                .iter()
                .find(|(alias, _)| *alias == name)
                .map_or(name.as_str(), |(_, full)| full);
            match TLS12_CIPHER_SUITES.iter().find(|suite| **suite == name) {
                Some(suite) => suites.push(*suite),
                None => {
                    self.report(item.line, &format!("{path}[{index}]"), format!("cipher suite {name:?} is not supported: rustls implements only these TLS 1.2 suites: {} (TLS 1.3 suites are not configurable)", TLS12_CIPHER_SUITES.join(", ")));
                    ok = false;
                }
            }
        }
        ok.then_some(suites)
    }

    fn curves(&mut self, node: &Node, path: &str) -> Option<Vec<&'static str>> {
        let items = self.string_list(node, path)?;
        let mut curves = Vec::new();
        let mut ok = true;
        for (index, (name, item)) in items.into_iter().enumerate() {
            match CURVES.iter().find(|curve| **curve == name) {
                Some(curve) => curves.push(*curve),
                None => {
                    self.report(
                        item.line,
                        &format!("{path}[{index}]"),
                        format!(
                            "curve {name:?} is not supported: rustls implements {}",
                            CURVES.join(", ")
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(curves)
    }

    fn http_server_config(
        &mut self,
        node: &Node,
        path: &str,
    ) -> Option<(bool, Vec<(String, String)>)> {
        self.section(node, path, |d, fields| {
            let http2 = d.optional(fields, "http2", DEFAULT_HTTP2, Self::boolean);
            let headers = d.optional(fields, "headers", Vec::new(), Self::security_headers);
            Some((http2?, headers?))
        })
    }

    fn security_headers(&mut self, node: &Node, path: &str) -> Option<Vec<(String, String)>> {
        self.section(node, path, |d, fields| {
            let mut headers = Vec::new();
            let mut ok = true;
            for name in ALLOWED_HEADERS {
                let Some(value_node) = fields.get(name) else {
                    continue;
                };
                let value_path = fields.path(name);
                let Some(value) = d.string(value_node, &value_path) else {
                    ok = false;
                    continue;
                };
                let valid: Option<&[&str]> = match name {
                    "X-Frame-Options" => Some(&["deny", "sameorigin"]),
                    "X-Content-Type-Options" => Some(&["nosniff"]),
                    _ => None,
                };
                if value.trim().is_empty() {
                    continue;
                }
                if let Some(valid) = valid
                    && !valid.iter().any(|v| v.eq_ignore_ascii_case(value.trim()))
                {
                    d.report(
                        value_node.line,
                        &value_path,
                        format!("invalid value {value:?}; accepted: {}", valid.join(", ")),
                    );
                    ok = false;
                    continue;
                }
                if axum::http::HeaderValue::from_str(&value).is_err() {
                    d.report(value_node.line, &value_path, "invalid header value");
                    ok = false;
                    continue;
                }
                headers.push((name.to_owned(), value));
            }
            ok.then_some(headers)
        })
    }

    fn basic_auth_users(&mut self, node: &Node, path: &str) -> Option<BasicAuthUsers> {
        let entries = self.entries(node, path)?;
        let mut users = BTreeMap::new();
        let mut ok = true;
        for (name, _, value) in entries {
            let value_path = tree::join(path, &name.raw);
            let Some(hash) = self.string(value, &value_path) else {
                ok = false;
                continue;
            };
            if name.text.contains(':') {
                self.report(value.line, &value_path, "a user name cannot contain ':' (basic auth separates it from the password with one)");
                ok = false;
            }
            if !looks_like_bcrypt(&hash) {
                // The value is never shown: it may be a password written by
                // mistake where its hash belongs.
                self.report(value.line, &value_path, "not a bcrypt hash (expected $2a$, $2b$ or $2y$, a cost and 53 characters, e.g. from `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)");
                ok = false;
            }
            users.insert(name.text.clone(), hash);
        }
        ok.then_some(BasicAuthUsers(users))
    }

    fn rate_limit(&mut self, node: &Node, path: &str) -> Option<Option<RateLimit>> {
        self.section(node, path, |d, fields| {
            // Go reads `interval: 0` (no unit) as zero too.
            let interval = d.optional(fields, "interval", Duration::ZERO, |d, n, p| {
                match &n.kind {
                    super::tree::Kind::Scalar(scalar) if scalar.text == "0" => Some(Duration::ZERO),
                    _ => d.duration(n, p),
                }
            });
            let burst = d.optional(fields, "burst", 0, |d, n, p| d.integer_at_least(n, p, 0));
            let (interval, burst) = (interval?, burst?);
            if interval.is_zero() {
                return Some(None);
            }
            let Ok(burst @ 1..) = u32::try_from(burst) else {
                d.report(fields.line, &fields.path("burst"), "must be at least 1 when interval is above 0 (a burst of 0 refuses every request)");
                return None;
            };
            Some(Some(RateLimit { interval, burst }))
        })
    }
}

#[cfg(test)]
mod tests;
