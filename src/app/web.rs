//! `model-monitor check-web-config FILE` and the web config's part of `run`
//! and `check-config --web.config.file`: the file read as `run` reads it
//! (certificates and keys parsed, the TLS setup built), problems listed one
//! a line, each naming its file and key.

use std::path::Path;
use std::sync::Arc;

use crate::sinks::exporter::security::{self, WebSecurity};

/// `model-monitor check-web-config FILE`: every problem on stderr, exit 1;
/// a one-line summary on stdout and exit 0 when `run` would serve with it.
pub fn check_web_config(path: &Path) -> i32 {
    match security::load(path) {
        Ok(loaded) => {
            let config = &loaded.config;
            let tls = match &config.tls {
                Some(tls) => format!("tls on, client certificates {:?}", tls.client_auth),
                None => "tls off".to_owned(),
            };
            println!(
                "{}: ok ({tls}, {} basic auth user(s), http2 {})",
                path.display(),
                config.basic_auth_users.0.len(),
                if config.http2 { "on" } else { "off" }
            );
            0
        }
        Err(problems) => {
            let count = problems.lines().count();
            for problem in problems.lines() {
                eprintln!("{problem}");
            }
            eprintln!("{}: {count} problem(s) found", path.display());
            1
        }
    }
}

/// The web config for `run`, when `--web.config.file` names one; a problem
/// stops the sidecar before it listens, each logged.
pub fn open(path: Option<&Path>) -> anyhow::Result<Option<Arc<WebSecurity>>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let security = WebSecurity::open(path).map_err(|problems| {
        for problem in problems.lines() {
            tracing::error!(problem = %problem, "invalid web config");
        }
        anyhow::anyhow!(
            "{} problem(s) in the web config {}",
            problems.lines().count(),
            path.display()
        )
    })?;
    tracing::info!(file = %path.display(), tls = security.uses_tls(), "web config loaded");
    Ok(Some(Arc::new(security)))
}
