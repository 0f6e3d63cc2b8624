//! The floors of `src/` run one way: each part of the library imports only
//! parts below it, in the order ARCHITECTURE.md's codemap lists them, so
//! there is no cycle and no arrow running back up. The binary (`main.rs`,
//! `simulate/`) sits on top and may use anything.

use std::path::{Path, PathBuf};

/// The library's parts, bottom first. Parts on one floor do not import
/// each other.
const FLOORS: [&[&str]; 12] = [
    &["duration", "exposition", "telemetry", "stats"],
    &["config"],
    &["detectors"],
    &["model"],
    &["sources"],
    &["alerting"],
    &["engine"],
    &["backtest"],
    &["store"],
    &["sinks"],
    &["app"],
    &["lib"],
];

fn floor_of(part: &str) -> Option<usize> {
    FLOORS.iter().position(|floor| floor.contains(&part))
}

/// The part a file of `src/` belongs to: its top folder, or its file name.
fn part_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("a file under src/");
    let first = relative.components().next().expect("a path");
    let name = first.as_os_str().to_string_lossy();
    name.strip_suffix(".rs").unwrap_or(&name).to_owned()
}

/// The parts a source text names as `crate::PART`, outside comments.
fn parts_named(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            parts.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading src/") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn finds_crate_paths_outside_comments() {
    let text = "use crate::model::ModelKey;\n// see crate::sinks\nlet x = crate::stats::f(crate::config::X); /// crate::engine";
    assert_eq!(parts_named(text), ["model", "stats", "config"]);
}

#[test]
fn every_part_imports_only_parts_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = Vec::new();
    let mut checked = 0;
    for file in &files {
        let part = part_of(&src, file);
        if part == "main" || part == "simulate" {
            continue;
        }
        let floor = floor_of(&part).unwrap_or_else(|| {
            panic!(
                "{}: part {part:?} has no floor in this test",
                file.display()
            )
        });
        let text = std::fs::read_to_string(file).expect("reading a source file");
        for named in parts_named(&text) {
            checked += 1;
            if named == part {
                continue;
            }
            let target = floor_of(&named).unwrap_or_else(|| {
                panic!("{}: crate::{named} is not a known part", file.display())
            });
            if target >= floor {
                upward.push(format!("{} ({part}) -> {named}", file.display()));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} crate paths found: is the scan broken?"
    );
    assert!(
        upward.is_empty(),
        "imports that do not run down:\n{}",
        upward.join("\n")
    );
}
