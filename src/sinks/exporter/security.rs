//! The web config in force (`--web.config.file`): what each connection and
//! request of the exporter's server passes through. TLS is set up per
//! connection from the current rustls configuration; every request is rate
//! limited, checked for basic auth and given the configured headers.
//!
//! The web config and the files it names (certificate, key, client CA) are
//! looked at (a `stat` each) on every new connection and request, and read
//! again when one changed (size, modification time or inode: a file
//! replaced by a rename, as Kubernetes does with secrets, counts), so
//! certificates rotate without a restart. A file that is broken on re-read
//! is treated as exporter-toolkit does: the error is logged once, TLS
//! handshakes fail and plain requests get 500 until it is fixed; the
//! sidecar never goes on serving with the old settings, which could be the
//! very key being revoked. Whether TLS is on at all is fixed at start: a
//! change that turns it on or off is such an error too.
//!
//! A successful basic-auth check is cached (a SHA-256 of a per-process
//! salt, the user, the hash and the password: the password itself is never
//! kept), so a scrape every few seconds does not cost a bcrypt each time.
//! Failed checks are not cached. Passwords, hashes and key material never
//! reach a log line.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use tokio::time::Instant;

use crate::config::{self, RateLimit, WebConfig};

/// Most cached successful basic-auth checks; the cache starts over when full.
const AUTH_CACHE_ENTRIES: usize = 1024;

/// A valid bcrypt hash checked against when the user is unknown, so the
/// answer takes as long as for a known user with a wrong password.
const UNKNOWN_USER_HASH: &str = "$2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze";

/// The sidecar's web config, re-read when it or its files change.
pub struct WebSecurity {
    path: PathBuf,
    tls_at_start: bool,
    active: Mutex<Arc<Active>>,
    auth_cache: Mutex<HashSet<[u8; 32]>>,
    salt: [u8; 32],
}

/// One reading of the web config: what was on disk, and what it gave.
struct Active {
    stamps: Vec<Stamp>,
    outcome: Result<Arc<Loaded>, String>,
}

/// A usable web config and what was built from it.
pub struct Loaded {
    pub config: WebConfig,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    headers: Vec<(HeaderName, HeaderValue)>,
    limiter: Option<Mutex<Bucket>>,
    /// The files as they were just before they were read.
    stamps: Vec<Stamp>,
}

/// Why a web config cannot be used, and the files to watch for a fix.
struct Failure {
    problems: String,
    stamps: Vec<Stamp>,
}

/// A file as last seen: size, modification time and inode, or absent.
type Stamp = (PathBuf, Option<(u64, std::time::SystemTime, u64)>);

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let seen = std::fs::metadata(path).ok().map(|meta| {
        (
            meta.len(),
            meta.modified().unwrap_or(std::time::UNIX_EPOCH),
            meta.ino(),
        )
    });
    (path.to_owned(), seen)
}

/// Reads the web config at `path` and builds what it sets up; the error
/// lists every problem, one a line, each naming its file and key.
pub fn load(path: &Path) -> Result<Loaded, String> {
    read(path).map_err(|failure| failure.problems)
}

/// The problems, one a line.
fn lines(problems: &[config::ConfigProblem]) -> String {
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// [`load`], noting each file as it was before it was read.
fn read(path: &Path) -> Result<Loaded, Failure> {
    let mut stamps = vec![stamp(path)];
    let config = config::load_web_config(path).map_err(|error| Failure {
        problems: lines(&error.problems),
        stamps: stamps.clone(),
    })?;
    stamps.extend(config.files.iter().map(|file| stamp(&file.path)));
    let failure = |problems| Failure {
        problems,
        stamps: stamps.clone(),
    };
    let unreadable = config::check_file_references(&config.files).problems;
    if !unreadable.is_empty() {
        return Err(failure(lines(&unreadable)));
    }
    let tls = match &config.tls {
        Some(tls) => Some(Arc::new(
            super::tls::server_config(tls, config.http2).map_err(|error| {
                failure(format!("{}: tls_server_config: {error}", path.display()))
            })?,
        )),
        None => None,
    };
    let headers = config
        .headers
        .iter()
        .filter_map(|(name, value)| {
            Some((
                HeaderName::from_bytes(name.as_bytes()).ok()?,
                HeaderValue::from_str(value).ok()?,
            ))
        })
        .collect();
    let limiter = config
        .rate_limit
        .map(|limit| Mutex::new(Bucket::new(limit)));
    Ok(Loaded {
        config,
        tls,
        headers,
        limiter,
        stamps,
    })
}

impl WebSecurity {
    /// Reads the web config at `path`; any problem stops here.
    pub fn open(path: &Path) -> Result<WebSecurity, String> {
        let loaded = load(path)?;
        let mut salt = [0u8; 32];
        rand::fill(&mut salt);
        Ok(WebSecurity {
            path: path.to_owned(),
            tls_at_start: loaded.tls.is_some(),
            active: Mutex::new(Arc::new(Active {
                stamps: loaded.stamps.clone(),
                outcome: Ok(Arc::new(loaded)),
            })),
            auth_cache: Mutex::new(HashSet::new()),
            salt,
        })
    }

    /// Whether connections speak TLS.
    pub fn uses_tls(&self) -> bool {
        self.tls_at_start
    }

    /// The web config in force, read again first when a file changed.
    pub fn current(&self) -> Result<Arc<Loaded>, String> {
        let active = self.active.lock().expect("never poisoned").clone();
        // Taken before reading: a file that changes while it is read is
        // read again next time.
        let fresh: Vec<Stamp> = active.stamps.iter().map(|(path, _)| stamp(path)).collect();
        if fresh == active.stamps {
            return active.outcome.clone();
        }
        let read = read(&self.path).and_then(|loaded| {
            if loaded.tls.is_some() == self.tls_at_start {
                Ok(loaded)
            } else {
                Err(Failure {
                    problems: format!(
                        "{}: the web config turns tls {}, which takes a restart",
                        self.path.display(),
                        if self.tls_at_start { "off" } else { "on" }
                    ),
                    stamps: loaded.stamps,
                })
            }
        });
        let (stamps, outcome) = match read {
            Ok(loaded) => {
                tracing::info!(file = %self.path.display(), "web config reloaded");
                (loaded.stamps.clone(), Ok(Arc::new(loaded)))
            }
            Err(failure) => {
                tracing::error!(
                    file = %self.path.display(),
                    error = %failure.problems,
                    "web config is invalid: connections are refused until it is fixed"
                );
                // The files of the last reading and of this one: a change
                // to any of them is a reason to try again.
                let mut stamps = fresh;
                stamps.extend(
                    failure
                        .stamps
                        .into_iter()
                        .filter(|(path, _)| !active.stamps.iter().any(|(seen, _)| seen == path)),
                );
                (stamps, Err(failure.problems))
            }
        };
        *self.active.lock().expect("never poisoned") = Arc::new(Active {
            stamps,
            outcome: outcome.clone(),
        });
        outcome
    }

    /// Answers `request` with `router` when the rate limit and basic auth
    /// let it through; every answer carries the configured headers.
    pub async fn serve(
        &self,
        request: Request<hyper::body::Incoming>,
        router: axum::Router,
    ) -> Response<Body> {
        let loaded = match self.current() {
            Ok(loaded) => loaded,
            Err(_) => {
                return plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the web config is invalid: see the sidecar's log\n",
                );
            }
        };
        let mut response = if loaded
            .limiter
            .as_ref()
            .is_some_and(|bucket| !bucket.lock().expect("never poisoned").take(Instant::now()))
        {
            plain(StatusCode::TOO_MANY_REQUESTS, "too many requests\n")
        } else if !self.authorized(&loaded, request.headers()).await {
            let mut response = plain(StatusCode::UNAUTHORIZED, "unauthorized\n");
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
            response
        } else {
            match tower::ServiceExt::oneshot(router, request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        };
        for (name, value) in &loaded.headers {
            response.headers_mut().insert(name.clone(), value.clone());
        }
        response
    }

    /// Whether the request passes basic auth (always, when no users are set).
    async fn authorized(&self, loaded: &Loaded, headers: &axum::http::HeaderMap) -> bool {
        let users = &loaded.config.basic_auth_users.0;
        if users.is_empty() {
            return true;
        }
        let Some((user, password)) = basic_credentials(headers) else {
            return false;
        };
        let hash = users.get(&user);
        let key = self.cache_key(&user, hash.map_or("", String::as_str), &password);
        if hash.is_some()
            && self
                .auth_cache
                .lock()
                .expect("never poisoned")
                .contains(&key)
        {
            return true;
        }
        let checked = hash
            .cloned()
            .unwrap_or_else(|| UNKNOWN_USER_HASH.to_owned());
        let matches = tokio::task::spawn_blocking(move || {
            bcrypt::verify(password, &checked).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if !(matches && hash.is_some()) {
            return false;
        }
        let mut cache = self.auth_cache.lock().expect("never poisoned");
        if cache.len() >= AUTH_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key);
        true
    }

    fn cache_key(&self, user: &str, hash: &str, password: &str) -> [u8; 32] {
        let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        context.update(&self.salt);
        for part in [user, hash, password] {
            context.update(&(part.len() as u64).to_le_bytes());
            context.update(part.as_bytes());
        }
        let digest = context.finish();
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        key
    }
}

/// The user and password of an `Authorization: Basic` header.
fn basic_credentials(headers: &axum::http::HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// `rate_limit`'s token bucket.
struct Bucket {
    limit: RateLimit,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn new(limit: RateLimit) -> Bucket {
        Bucket {
            limit,
            tokens: f64::from(limit.burst),
            updated: Instant::now(),
        }
    }

    /// Takes a token if there is one at `now`.
    fn take(&mut self, now: Instant) -> bool {
        let earned = now.saturating_duration_since(self.updated).as_secs_f64()
            / self.limit.interval.as_secs_f64();
        self.tokens = (self.tokens + earned).min(f64::from(self.limit.burst));
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_bucket_allows_a_burst_then_one_request_per_interval() {
        let limit = RateLimit {
            interval: Duration::from_secs(1),
            burst: 2,
        };
        let start = Instant::now();
        let mut bucket = Bucket {
            limit,
            tokens: 2.0,
            updated: start,
        };
        assert!(bucket.take(start));
        assert!(bucket.take(start));
        assert!(!bucket.take(start));
        assert!(!bucket.take(start + Duration::from_millis(500)));
        assert!(bucket.take(start + Duration::from_millis(1000)));
        assert!(!bucket.take(start + Duration::from_millis(1000)));
    }

    fn basic(user: &str, password: &str) -> axum::http::HeaderMap {
        use base64::Engine;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        headers
    }

    #[tokio::test]
    async fn only_successful_checks_are_cached_and_a_new_hash_is_checked_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        let write = |password: &str| {
            let hash = bcrypt::hash(password, 4).unwrap();
            std::fs::write(&path, format!("basic_auth_users:\n  alice: {hash}\n")).unwrap();
        };
        write("first");
        let security = WebSecurity::open(&path).unwrap();
        let cached = || security.auth_cache.lock().unwrap().len();
        let loaded = security.current().unwrap();
        assert!(!security.authorized(&loaded, &basic("alice", "wrong")).await);
        assert!(!security.authorized(&loaded, &basic("bob", "first")).await);
        assert_eq!(cached(), 0, "failures are not cached");
        assert!(security.authorized(&loaded, &basic("alice", "first")).await);
        assert!(security.authorized(&loaded, &basic("alice", "first")).await);
        assert_eq!(cached(), 1);

        // The key holds the hash: after a password change the old password
        // is checked against the new hash, not found in the cache.
        write("second");
        let reloaded = load(&path).unwrap();
        assert!(
            !security
                .authorized(&reloaded, &basic("alice", "first"))
                .await
        );
        assert!(
            security
                .authorized(&reloaded, &basic("alice", "second"))
                .await
        );
        assert_eq!(cached(), 2);
    }

    #[test]
    fn a_file_named_by_a_broken_reload_is_watched_so_creating_it_fixes_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/secrets/tls");
        for name in ["server.crt", "server.key"] {
            std::fs::copy(demo.join(name), dir.path().join(name)).unwrap();
        }
        let path = dir.path().join("web.yml");
        let web = |cert: &str| {
            format!("tls_server_config:\n  cert_file: {cert}\n  key_file: server.key\n")
        };
        std::fs::write(&path, web("server.crt")).unwrap();
        let security = WebSecurity::open(&path).unwrap();
        assert!(security.uses_tls());

        std::fs::write(&path, web("rotated.crt")).unwrap();
        let error = security
            .current()
            .err()
            .expect("rotated.crt does not exist yet");
        assert!(
            error.contains("tls_server_config.cert_file: cannot read"),
            "{error}"
        );
        assert!(security.current().is_err(), "nothing changed since");

        std::fs::copy(demo.join("server.crt"), dir.path().join("rotated.crt")).unwrap();
        assert!(security.current().is_ok());
    }

    #[test]
    fn basic_credentials_are_read_from_the_authorization_header() {
        let mut headers = axum::http::HeaderMap::new();
        assert_eq!(basic_credentials(&headers), None);
        // "alice:s3cr:et", the password holding a colon.
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YWxpY2U6czNjcjpldA=="),
        );
        assert_eq!(
            basic_credentials(&headers),
            Some(("alice".to_owned(), "s3cr:et".to_owned()))
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer YWxpY2U6cw=="),
        );
        assert_eq!(basic_credentials(&headers), None);
    }
}
