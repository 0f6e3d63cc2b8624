//! The documents' promises about the repository: every path that README.md
//! and ARCHITECTURE.md name exists, so a newcomer following them never
//! lands on a file that moved.

use std::path::Path;

/// Top-level folders whose paths the documents name.
const ROOTS: [&str; 11] = [
    "src/",
    "tests/",
    "scripts/",
    "examples/",
    "docs/",
    "alerts/",
    "grafana/",
    "deploy/",
    "benches/",
    ".ci/",
    "target/",
];

/// Every repository path in `text`: words that start with one of [`ROOTS`]
/// or are a top-level Markdown or Cargo file, without trailing punctuation.
/// Patterns (`*`, `{`, `<`, `...`) are not paths and are left out, and so is
/// `target/`, which builds create.
fn named_paths(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || "._-/".contains(c);
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| is_path_char(c)) {
        let from = &rest[start..];
        let end = from.find(|c: char| !is_path_char(c)).unwrap_or(from.len());
        let word = &from[..end];
        let preceded_ok = start == 0
            || !rest[..start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '/' || c == '.' || c == ':');
        let next = from[end..].chars().next();
        let pattern = matches!(next, Some('*' | '{' | '<')) || word.contains("...");
        let word = word.trim_end_matches(['.', ',']);
        let candidate = ROOTS.iter().any(|root| word.starts_with(root))
            || (word.ends_with(".md") && !word.contains('/'))
            || word == "Cargo.toml";
        if preceded_ok && candidate && !pattern && !word.starts_with("target/") {
            paths.push(word.to_owned());
        }
        rest = &from[end..];
    }
    paths
}

#[test]
fn finds_paths_but_not_urls_globs_or_build_output() {
    let text = "see `src/engine/` and [b](BENCHMARKS.md), scripts/test.sh. Not \
                https://x.example/src/a.rs, /etc/alerts/x.yml, tests/*.rs, \
                src/config/<section>.rs or target/debug/x.";
    assert_eq!(
        named_paths(text),
        ["src/engine/", "BENCHMARKS.md", "scripts/test.sh"]
    );
}

#[test]
fn every_path_named_in_readme_and_architecture_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut missing = Vec::new();
    let mut checked = 0;
    for document in ["README.md", "ARCHITECTURE.md"] {
        let text = std::fs::read_to_string(root.join(document)).expect("reading the document");
        for path in named_paths(&text) {
            checked += 1;
            if !root.join(&path).exists() {
                missing.push(format!("{document}: {path}"));
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} paths found: is the scan broken?"
    );
    assert!(
        missing.is_empty(),
        "paths that do not exist:\n{}",
        missing.join("\n")
    );
}
