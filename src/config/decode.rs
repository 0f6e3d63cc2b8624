//! The generic decoding layer: the [`Decoder`] that walks the line-numbered
//! tree, collecting every [`ConfigProblem`] instead of stopping at the first,
//! and the [`Fields`] of one mapping section.
//!
//! A section reads its keys through [`Fields`], which records each key it is
//! asked for; when the section closes, every key it never asked for is
//! reported as unknown, and the keys it asked for, in that order, are the
//! "allowed keys" of the message. So a key cannot be decoded without being
//! allowed, nor allowed without being decoded. Sections must therefore read
//! every key they know before giving up on the first bad one, which the
//! `Option`-returning readers make natural: read all, combine with `?` last.
//!
//! The scalar readers (numbers, durations, urls...) are in `scalars.rs`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

use super::tree::{Kind, Node, Scalar, join};

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The file, or `<string>` for text parsed from memory.
    pub file: String,
    /// 1-based line, when the problem has a place.
    pub line: Option<usize>,
    /// Key path such as `monitors[0].signals.confidence.detectors[1].type`;
    /// empty for problems of the whole file (YAML syntax, unreadable file).
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem of a config file, ordered by line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in config: {}", problems.len(), problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
}

#[cfg(test)]
impl ConfigError {
    /// Each problem as `line: path: message` (line 0 when it has none),
    /// which the section tests compare.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.problems
            .iter()
            .map(|p| format!("{}: {}: {}", p.line.unwrap_or(0), p.path, p.message))
            .collect()
    }
}

/// The string-keyed entries of one mapping, first occurrence of each key,
/// null values included, and the keys the section has read so far.
pub(super) struct Fields<'n> {
    /// Line of the mapping, for keys that are missing from it.
    pub line: usize,
    pub path: String,
    entries: Vec<(&'n Scalar, &'n Node, &'n Node)>,
    /// The keys the section asked for, in the order it first asked.
    read: RefCell<Vec<&'static str>>,
    /// Where unknown keys go in the problem list: after the mapping's own
    /// key problems (duplicates), before the problems of its values.
    unknown_at: usize,
}

impl<'n> Fields<'n> {
    /// A mapping without entries, for finding the keys a section reads.
    fn empty() -> Fields<'n> {
        Fields {
            line: 0,
            path: String::new(),
            entries: Vec::new(),
            read: RefCell::new(Vec::new()),
            unknown_at: 0,
        }
    }

    /// The value of a key, `None` when absent or null (the default applies).
    /// Reading a key allows it.
    pub fn get(&self, key: &'static str) -> Option<&'n Node> {
        self.entry(key)
            .filter(|(_, value)| !value.is_null())
            .map(|(_, value)| value)
    }

    /// The key's node itself (for its line), when written with a non-null value.
    pub fn key_node(&self, key: &'static str) -> Option<&'n Node> {
        self.entry(key)
            .filter(|(_, value)| !value.is_null())
            .map(|(key, _)| key)
    }

    /// The key and value nodes of a key, null or not; reading allows the key.
    fn entry(&self, key: &'static str) -> Option<(&'n Node, &'n Node)> {
        let mut read = self.read.borrow_mut();
        if !read.contains(&key) {
            read.push(key);
        }
        self.entries
            .iter()
            .find(|(name, _, _)| name.text == key)
            .map(|(_, key, value)| (*key, *value))
    }

    pub fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The keys read so far, in the order first read.
    fn read(&self) -> Vec<&'static str> {
        self.read.borrow().clone()
    }
}

/// Walks the tree into the validated types, collecting problems.
pub(super) struct Decoder<'a> {
    pub file: &'a str,
    pub base_dir: &'a Path,
    pub problems: Vec<ConfigProblem>,
    /// The files the config names, in the order decoded.
    pub files: Vec<FileReference>,
}

impl Decoder<'_> {
    pub fn report(&mut self, line: usize, path: &str, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            file: self.file.to_owned(),
            line: Some(line),
            path: path.to_owned(),
            message: message.into(),
        });
    }

    pub fn into_error(mut self) -> ConfigError {
        self.problems.sort_by_key(|problem| problem.line);
        ConfigError {
            problems: self.problems,
        }
    }

    /// Runs `decode` with its problems (and the files it names) discarded.
    pub fn quietly<T>(&mut self, decode: impl FnOnce(&mut Self) -> T) -> T {
        let saved = (self.problems.len(), self.files.len());
        let value = decode(self);
        self.problems.truncate(saved.0);
        self.files.truncate(saved.1);
        value
    }

    /// The keys `decode` reads from a section, in the order it reads them,
    /// found by decoding a mapping without entries and discarding problems.
    pub fn keys_read(decode: impl FnOnce(&mut Decoder<'_>, &Fields<'_>)) -> Vec<&'static str> {
        let mut scratch = Decoder {
            file: "",
            base_dir: Path::new(""),
            problems: Vec::new(),
            files: Vec::new(),
        };
        let fields = Fields::empty();
        decode(&mut scratch, &fields);
        fields.read()
    }

    // ----- structure -----

    /// The entries of a mapping with string keys, duplicates reported.
    pub fn entries<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
    ) -> Option<Vec<(&'n Scalar, &'n Node, &'n Node)>> {
        let Kind::Mapping(pairs) = &node.kind else {
            self.report(
                node.line,
                path,
                format!("expected a mapping, got {}", node.kind_name()),
            );
            return None;
        };
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut entries = Vec::new();
        for (key, value) in pairs {
            let Kind::Scalar(scalar) = &key.kind else {
                self.report(
                    key.line,
                    path,
                    format!("keys must be strings, got {}", key.kind_name()),
                );
                continue;
            };
            if scalar.broken {
                continue;
            }
            if let Some(first) = seen.get(scalar.text.as_str()) {
                self.report(
                    key.line,
                    &join(path, &scalar.raw),
                    format!(
                        "duplicate key {} (first on line {first})",
                        scalar.describe()
                    ),
                );
                continue;
            }
            seen.insert(&scalar.text, key.line);
            entries.push((scalar, key, value));
        }
        Some(entries)
    }

    /// Opens a mapping as a section; close it with [`Decoder::close`].
    pub fn open<'n>(&mut self, node: &'n Node, path: &str) -> Option<Fields<'n>> {
        let entries = self.entries(node, path)?;
        Some(Fields {
            line: node.line,
            path: path.to_owned(),
            entries,
            read: RefCell::new(Vec::new()),
            unknown_at: self.problems.len(),
        })
    }

    /// Closes a section: every key it never read is unknown, and the keys it
    /// read are the allowed ones.
    pub fn close(&mut self, fields: Fields<'_>) {
        self.close_with(fields, |key, allowed| {
            Some(format!(
                "unknown key {}; allowed keys: {}",
                key.describe(),
                allowed.join(", ")
            ))
        });
    }

    /// [`Decoder::close`] with a custom message for each key the section did
    /// not read, given the keys it read; `None` lets the key pass.
    pub fn close_with(
        &mut self,
        fields: Fields<'_>,
        unknown: impl Fn(&Scalar, &[&'static str]) -> Option<String>,
    ) {
        let allowed = fields.read();
        let unknown: Vec<ConfigProblem> = fields
            .entries
            .iter()
            .filter(|(name, _, _)| !allowed.contains(&name.text.as_str()))
            .filter_map(|(name, key, _)| {
                Some(ConfigProblem {
                    file: self.file.to_owned(),
                    line: Some(key.line),
                    path: join(&fields.path, &name.raw),
                    message: unknown(name, &allowed)?,
                })
            })
            .collect();
        let at = fields.unknown_at;
        self.problems.splice(at..at, unknown);
    }

    /// Decodes a mapping section with `decode`, then reports the keys it did
    /// not read.
    pub fn section<'n, T>(
        &mut self,
        node: &'n Node,
        path: &str,
        decode: impl FnOnce(&mut Self, &Fields<'n>) -> Option<T>,
    ) -> Option<T> {
        let fields = self.open(node, path)?;
        let value = decode(self, &fields);
        self.close(fields);
        value
    }

    /// A key that must be given.
    pub fn require<'n>(&mut self, fields: &Fields<'n>, key: &'static str) -> Option<&'n Node> {
        match fields.entry(key) {
            Some((_, value)) if !value.is_null() => return Some(value),
            Some((key_node, _)) => self.report(key_node.line, &fields.path(key), "missing value"),
            None => self.report(fields.line, &fields.path(key), "missing required key"),
        }
        None
    }

    /// Reads an optional key, or gives the default.
    pub fn optional<'n, T>(
        &mut self,
        fields: &Fields<'n>,
        key: &'static str,
        default: T,
        read: impl FnOnce(&mut Self, &'n Node, &str) -> Option<T>,
    ) -> Option<T> {
        match fields.get(key) {
            Some(node) => read(self, node, &fields.path(key)),
            None => Some(default),
        }
    }

    /// Reads a required key.
    pub fn required<'n, T>(
        &mut self,
        fields: &Fields<'n>,
        key: &'static str,
        read: impl FnOnce(&mut Self, &'n Node, &str) -> Option<T>,
    ) -> Option<T> {
        let node = self.require(fields, key)?;
        read(self, node, &fields.path(key))
    }

    /// The items of a list.
    pub fn sequence<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Node]> {
        match &node.kind {
            Kind::Sequence(items) => Some(items),
            _ => {
                self.report(
                    node.line,
                    path,
                    format!("expected a list, got {}", node.kind_name()),
                );
                None
            }
        }
    }

    /// Decodes every item of a list with `decode`; `None` if any fails.
    pub fn each<'n, T>(
        &mut self,
        items: &'n [Node],
        path: &str,
        mut decode: impl FnMut(&mut Self, &'n Node, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let mut values = Vec::new();
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            match decode(self, item, &format!("{path}[{index}]")) {
                Some(value) => values.push(value),
                None => ok = false,
            }
        }
        ok.then_some(values)
    }

    /// Reports list items whose `name` repeats an earlier one; false if any.
    pub fn unique_names(&mut self, items: &[Node], path: &str, what: &str) -> bool {
        let mut first_line: HashMap<String, usize> = HashMap::new();
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            let Some((name, name_node)) = peek(item, "name") else {
                continue;
            };
            match first_line.get(&name) {
                Some(first) => {
                    self.report(
                        name_node.line,
                        &format!("{path}[{index}].name"),
                        format!(
                            "duplicate {what} name {} (first on line {first})",
                            shown(name_node)
                        ),
                    );
                    ok = false;
                }
                None => {
                    first_line.insert(name, name_node.line);
                }
            }
        }
        ok
    }
}

/// A scalar for a problem message (see [`Scalar::describe`]).
pub(super) fn shown(node: &Node) -> String {
    match &node.kind {
        Kind::Scalar(scalar) => scalar.describe(),
        _ => node.kind_name().to_owned(),
    }
}

/// The text and node of a key's non-null scalar value in a mapping node,
/// without reporting anything (duplicate-name checks).
pub(super) fn peek<'n>(node: &'n Node, key: &str) -> Option<(String, &'n Node)> {
    let Kind::Mapping(entries) = &node.kind else {
        return None;
    };
    entries.iter().find_map(
        |(key_node, value_node)| match (&key_node.kind, &value_node.kind) {
            (Kind::Scalar(k), Kind::Scalar(v)) if k.text == key && !v.broken && !v.is_null() => {
                Some((v.text.clone(), value_node))
            }
            _ => None,
        },
    )
}

/// When the sidecar reads a file the config names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRead {
    /// At start: `run` stops when it cannot be read.
    AtStart,
    /// At each request: a file that cannot be read fails those requests only.
    AtEachRequest,
}

/// A file the config names, and where it names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReference {
    /// The config file, as problems name it.
    pub config_file: String,
    /// The line of the value.
    pub line: usize,
    /// The key path, such as `webhooks[1].url_file`.
    pub key: String,
    /// The file, resolved against the config file's directory.
    pub path: std::path::PathBuf,
    pub read: FileRead,
}
