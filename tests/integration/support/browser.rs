//! A real browser for the tests: Debian's headless Chromium renders a page
//! to a PNG and dumps the DOM it built, and its console is read from its
//! log. Chromium is a test package (`scripts/test.sh` installs it); a
//! missing one fails the test.

use std::path::Path;
use std::process::Command;

use super::process::program;

/// What Chromium made of one page.
pub struct Rendered {
    /// The screenshot's PNG bytes.
    pub png: Vec<u8>,
    /// The DOM after rendering.
    pub dom: String,
    /// Chromium's log (console messages among them).
    pub log: String,
}

/// The flags that keep a headless Chromium off the network and out of the
/// user's profile; its profile lives in `dir`.
fn chromium(dir: &Path, profile: &str) -> Command {
    let mut command = Command::new(program("chromium"));
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", dir.join(profile).display()))
        .env("HOME", dir);
    command
}

/// Renders `page` (a file) at 1200x2000: a screenshot into `dir` and the
/// DOM, each by its own Chromium run.
pub fn render(page: &Path, dir: &Path) -> Rendered {
    let url = format!("file://{}", page.display());
    let screenshot = dir.join("screenshot.png");
    let shot = chromium(dir, "profile-shot")
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg("--window-size=1200,2000")
        .arg(&url)
        .output()
        .expect("running chromium");
    let mut log = String::from_utf8_lossy(&shot.stderr).into_owned();
    assert!(
        shot.status.success(),
        "chromium --screenshot failed:\n{log}"
    );
    let dump = chromium(dir, "profile-dom")
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("running chromium");
    log.push_str(&String::from_utf8_lossy(&dump.stderr));
    assert!(dump.status.success(), "chromium --dump-dom failed:\n{log}");
    Rendered {
        png: std::fs::read(&screenshot).expect("chromium wrote the screenshot"),
        dom: String::from_utf8_lossy(&dump.stdout).into_owned(),
        log,
    }
}

/// A PNG's width and height, from its header.
pub fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" {
        return None;
    }
    let word = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    Some((word(16), word(20)))
}
