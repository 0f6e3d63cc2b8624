//! A YAML tree that remembers the line of every node, and `${VAR}` expansion
//! on its scalars.
//!
//! The tree is built from `saphyr-parser` events rather than decoded straight
//! into Rust types, for three reasons: every node keeps its 1-based line, so
//! each problem can point at the place it comes from; a mapping keeps all its
//! entries in order, so duplicate keys become ordinary problems instead of
//! stopping the parse; and scalars keep their raw text and style, so `${VAR}`
//! can be expanded after parsing (line numbers stay right, and an environment
//! value can never inject YAML structure) and a plain scalar is typed (null,
//! bool, int, float, string) by the YAML 1.2 core schema only after expansion.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr::ScalarOwned;
use saphyr_parser::{Event, Parser, ScalarStyle, Span, SpannedEventReceiver, Tag};

/// Most nodes that alias expansion (`*anchor`) may create, against
/// "billion laughs" documents.
const ALIAS_NODE_BUDGET: usize = 10_000;

/// One node of the document with its 1-based line.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub line: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Scalar(Scalar),
    Sequence(Vec<Node>),
    /// Entries in document order; duplicate keys are kept so they can be reported.
    Mapping(Vec<(Node, Node)>),
}

/// A scalar as written, and after `${VAR}` expansion.
#[derive(Debug, Clone)]
pub(crate) struct Scalar {
    /// The text as written in the file (after YAML unquoting).
    pub raw: String,
    /// The text after `${VAR}` and `$$` expansion.
    pub text: String,
    /// Whether an environment value went into `text`: such text is never
    /// shown in a problem, since it may be a secret.
    pub from_env: bool,
    /// Expansion failed (already reported): decoders skip the value silently.
    pub broken: bool,
    pub style: ScalarStyle,
    pub tag: Option<Tag>,
}

impl Scalar {
    /// Whether the scalar, as written, is a YAML null (`~`, `null`, empty).
    pub fn is_null(&self) -> bool {
        matches!(
            resolve(&self.raw, self.style, self.tag.as_ref()),
            Some(ScalarOwned::Null)
        )
    }

    /// The typed value of the expanded text, by the YAML 1.2 core schema;
    /// `None` for a value its explicit tag rejects (`!!int abc`). A scalar
    /// that was not null as written never becomes null by expansion.
    ///
    /// Text that came from the environment is typed as if it were plain,
    /// even when quoted: YAML needs quotes around `${` inside `{...}` and
    /// `[...]`, so `{concurrency: "${N}"}` is an integer.
    pub fn value(&self) -> Option<ScalarOwned> {
        let style = match (self.from_env, &self.tag) {
            (true, None) => ScalarStyle::Plain,
            _ => self.style,
        };
        match resolve(&self.text, style, self.tag.as_ref()) {
            Some(ScalarOwned::Null) if !self.is_null() => {
                Some(ScalarOwned::String(self.text.clone()))
            }
            other => other,
        }
    }

    /// The value for a problem message: quoted, and for text that came from
    /// the environment the text as written (`"${VAR}"`), never the secret.
    pub fn describe(&self) -> String {
        if self.from_env {
            format!("{:?} (after expansion)", self.raw)
        } else {
            format!("{:?}", self.text)
        }
    }
}

fn resolve(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Option<ScalarOwned> {
    let tag = tag.map(|tag| Cow::Owned(tag.clone()));
    ScalarOwned::parse_from_cow_and_metadata(Cow::Borrowed(text), style, tag.as_ref())
}

impl Node {
    /// What kind of node this is, for "expected X, got Y" messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            Kind::Sequence(_) => "a list",
            Kind::Mapping(_) => "a mapping",
            Kind::Scalar(scalar) => match scalar.value() {
                None => "an invalid tagged value",
                Some(ScalarOwned::Null) => "null",
                Some(ScalarOwned::Boolean(_)) => "a boolean",
                Some(ScalarOwned::Integer(_)) => "an integer",
                Some(ScalarOwned::FloatingPoint(_)) => "a number",
                Some(ScalarOwned::String(_)) => "a string",
            },
        }
    }

    /// Whether the node is a null scalar as written.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(scalar) if scalar.is_null())
    }
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// The lines of `text` as YAML counts them: a line ends at `\r\n`, `\r` or
/// `\n`, and the text after the last break is a line too.
fn line_count(text: &str) -> usize {
    let bytes = text.as_bytes();
    let breaks = bytes
        .iter()
        .enumerate()
        .filter(|&(at, &byte)| {
            byte == b'\n' || (byte == b'\r' && bytes.get(at + 1) != Some(&b'\n'))
        })
        .count();
    breaks + 1
}

/// Parses the text into one document; `Ok(None)` for an empty file.
pub(crate) fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut builder = Builder {
        last_line: line_count(text),
        ..Builder::default()
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(error) = parser.load(&mut builder, true) {
        return Err(SyntaxError {
            line: error.marker().line().clamp(1, builder.last_line),
            message: error.info().to_owned(),
        });
    }
    if let Some(error) = builder.error {
        return Err(error);
    }
    let mut documents = builder.documents.into_iter();
    let first = documents.next();
    if let Some(second) = documents.next() {
        return Err(SyntaxError {
            line: second.line,
            message: "expected one YAML document, found several".to_owned(),
        });
    }
    Ok(first)
}

/// A collection being built, and the anchor it will be stored under.
struct Frame {
    node: Node,
    anchor: usize,
    pending_key: Option<Node>,
}

#[derive(Default)]
struct Builder {
    /// The text's last line: the parser places what it finds at the very
    /// end (an empty value, an error) one line past it.
    last_line: usize,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    documents: Vec<Node>,
    alias_nodes: usize,
    error: Option<SyntaxError>,
}

impl Builder {
    fn insert(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let Some(frame) = self.stack.last_mut() else {
            self.documents.push(node);
            return;
        };
        match &mut frame.node.kind {
            Kind::Sequence(items) => items.push(node),
            Kind::Mapping(entries) => match frame.pending_key.take() {
                None => frame.pending_key = Some(node),
                Some(key) => entries.push((key, node)),
            },
            Kind::Scalar(_) => unreachable!("scalars are never frames"),
        }
    }

    fn fail(&mut self, line: usize, message: &str) {
        if self.error.is_none() {
            self.error = Some(SyntaxError {
                line,
                message: message.to_owned(),
            });
        }
    }
}

fn count_nodes(node: &Node) -> usize {
    1 + match &node.kind {
        Kind::Scalar(_) => 0,
        Kind::Sequence(items) => items.iter().map(count_nodes).sum(),
        Kind::Mapping(entries) => entries
            .iter()
            .map(|(k, v)| count_nodes(k) + count_nodes(v))
            .sum(),
    }
}

impl<'input> SpannedEventReceiver<'input> for Builder {
    fn on_event(&mut self, event: Event<'input>, span: Span) {
        let line = span.start.line().clamp(1, self.last_line.max(1));
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let scalar = Scalar {
                    raw: text.to_string(),
                    text: text.into_owned(),
                    from_env: false,
                    broken: false,
                    style,
                    tag: tag.map(Cow::into_owned),
                };
                self.insert(
                    Node {
                        line,
                        kind: Kind::Scalar(scalar),
                    },
                    anchor,
                );
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame {
                node: Node {
                    line,
                    kind: Kind::Sequence(Vec::new()),
                },
                anchor,
                pending_key: None,
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame {
                node: Node {
                    line,
                    kind: Kind::Mapping(Vec::new()),
                },
                anchor,
                pending_key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(frame) = self.stack.pop() {
                    self.insert(frame.node, frame.anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    self.alias_nodes += count_nodes(&node);
                    if self.alias_nodes > ALIAS_NODE_BUDGET {
                        self.fail(line, "aliases expand to too many nodes");
                    }
                    node.line = line;
                    self.insert(node, 0);
                }
                None => self.fail(line, "alias of an unknown anchor"),
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => {}
        }
    }
}

/// A problem found while expanding: line, key path, message.
pub(crate) type ExpandProblem = (usize, String, String);

/// Expands `${VAR}` and `$$` in every scalar (keys included), in place.
/// `path` is the key path of `node`; problems name the variable and never
/// the values.
pub(crate) fn expand_tree(
    node: &mut Node,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<ExpandProblem>,
) {
    let line = node.line;
    match &mut node.kind {
        Kind::Scalar(scalar) => expand_scalar(scalar, line, path, env, problems),
        Kind::Sequence(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                expand_tree(item, &format!("{path}[{index}]"), env, problems);
            }
        }
        Kind::Mapping(entries) => {
            for (key, value) in entries {
                let key_path = match &key.kind {
                    Kind::Scalar(scalar) => join(path, &scalar.raw),
                    _ => path.to_owned(),
                };
                expand_tree(key, &key_path, env, problems);
                expand_tree(value, &key_path, env, problems);
            }
        }
    }
}

/// `a.b` from a path and a key; the key alone at the top.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn expand_scalar(
    scalar: &mut Scalar,
    line: usize,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<ExpandProblem>,
) {
    if !scalar.raw.contains('$') {
        return;
    }
    match expand(&scalar.raw, env) {
        Ok((text, from_env)) => {
            scalar.text = text;
            scalar.from_env = from_env;
        }
        Err(messages) => {
            scalar.broken = true;
            problems.extend(
                messages
                    .into_iter()
                    .map(|message| (line, path.to_owned(), message)),
            );
        }
    }
}

/// Expands `${VAR}` from `env` and `$$` to `$`; any other `$` stays as it is
/// (PromQL regexes use it). Returns the text and whether an environment
/// value went into it, or every problem of the text.
pub(crate) fn expand(
    raw: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, bool), Vec<String>> {
    let mut out = String::with_capacity(raw.len());
    let mut problems = Vec::new();
    let mut from_env = false;
    let mut rest = raw;
    while let Some(position) = rest.find('$') {
        out.push_str(&rest[..position]);
        let after = &rest[position + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let Some(end) = tail.find('}') else {
                problems.push("unterminated ${ (write $$ for a literal $)".to_owned());
                rest = "";
                break;
            };
            let name = &tail[..end];
            if !is_variable_name(name) {
                problems.push(format!(
                    "invalid environment variable name {name:?} in ${{...}} (write $$ for a literal $)"
                ));
            } else {
                match env(name) {
                    Some(value) => {
                        out.push_str(&value);
                        from_env = true;
                    }
                    None => problems.push(format!("environment variable {name} is not set")),
                }
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    if problems.is_empty() {
        Ok((out, from_env))
    } else {
        Err(problems)
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("prom:9090".to_owned()),
            "STRUCTURE" => Some("a: b\n- c".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_and_escapes() {
        let check = |raw: &str, expected: Result<(&str, bool), Vec<&str>>| {
            let expected = expected
                .map(|(text, from_env)| (text.to_owned(), from_env))
                .map_err(|problems| problems.into_iter().map(str::to_owned).collect());
            assert_eq!(expand(raw, &env), expected, "{raw}");
        };
        check("http://${HOST}/", Ok(("http://prom:9090/", true)));
        check("$${HOST}", Ok(("${HOST}", false)));
        check("cost: 5$$", Ok(("cost: 5$", false)));
        check("job=~\"api.*$\"", Ok(("job=~\"api.*$\"", false)));
        check("${EMPTY}x", Ok(("x", true)));
        check(
            "${MISSING}",
            Err(vec!["environment variable MISSING is not set"]),
        );
        check(
            "${A_MISSING} and ${B_MISSING}",
            Err(vec![
                "environment variable A_MISSING is not set",
                "environment variable B_MISSING is not set",
            ]),
        );
        check(
            "${HOST",
            Err(vec!["unterminated ${ (write $$ for a literal $)"]),
        );
        check(
            "${1X}",
            Err(vec![
                "invalid environment variable name \"1X\" in ${...} (write $$ for a literal $)",
            ]),
        );
    }

    #[test]
    fn keeps_lines_and_duplicate_keys() {
        let node = parse("a: 1\nb:\n  c: x\na: 2\n").unwrap().unwrap();
        let Kind::Mapping(entries) = &node.kind else {
            panic!("mapping")
        };
        let lines: Vec<_> = entries.iter().map(|(k, v)| (k.line, v.line)).collect();
        assert_eq!(lines, vec![(1, 1), (2, 3), (4, 4)]);
    }

    #[test]
    fn environment_values_cannot_inject_structure() {
        let mut node = parse("key: ${STRUCTURE}\n").unwrap().unwrap();
        let mut problems = Vec::new();
        expand_tree(&mut node, "", &env, &mut problems);
        assert!(problems.is_empty());
        let Kind::Mapping(entries) = &node.kind else {
            panic!("mapping")
        };
        assert_eq!(entries.len(), 1);
        let Kind::Scalar(scalar) = &entries[0].1.kind else {
            panic!("scalar")
        };
        assert_eq!(
            scalar.value(),
            Some(ScalarOwned::String("a: b\n- c".to_owned()))
        );
    }

    #[test]
    fn reports_syntax_errors_with_their_line() {
        let error = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(error.line >= 2, "{error:?}");
        assert_eq!(parse("").unwrap().map(|n| n.line), None);
        assert_eq!(parse("a: 1\n---\nb: 2\n").unwrap_err().line, 3);
    }

    /// Found by fuzzing: an error or an empty node at the end of the text
    /// was placed one line past the last.
    #[test]
    fn errors_at_the_end_of_the_text_are_on_its_last_line() {
        for (text, line) in [
            ("detectors:\n[", 2),
            ("\u{1}:\t~\na", 2),
            ("a: 1\nb: '", 2),
            ("a: 1\rb: '", 2),
            ("a: 1\r\nb: '", 2),
            ("a: [\n", 2),
        ] {
            assert_eq!(parse(text).unwrap_err().line, line, "{text:?}");
        }
        // An empty value at the very end, such as the key of `? `.
        let root = parse("? ").unwrap().expect("a mapping");
        let Kind::Mapping(entries) = &root.kind else {
            panic!("not a mapping: {root:?}");
        };
        assert_eq!((root.line, entries[0].0.line, entries[0].1.line), (1, 1, 1));
    }
}
