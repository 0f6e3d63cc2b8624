//! Reading a config file: the three passes from text to [`Config`].
//!
//! [`tree::parse`] turns the text into a tree of nodes with lines (a syntax
//! error stops here, with its line); [`tree::expand_tree`] expands `${VAR}`
//! in every scalar; the [`Decoder`] walks the tree into the validated types,
//! reporting each problem with file, line, key path and a lower-case
//! message, and carrying on so that one run lists them all.

use std::path::Path;

use super::Config;
use super::decode::{ConfigError, ConfigProblem, Decoder};
use super::tree;

/// The process environment, as `${VAR}` expansion sees it.
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Reads and validates a config file; `${VAR}` comes from the process environment.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    load_file_with_env(path, &process_env)
}

/// Reads and validates a config file, taking `${VAR}` values from `env`
/// (tests and embedders that must not touch the process environment).
pub fn load_file_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let (text, file) = read_text(path)?;
    let base_dir = path.parent().unwrap_or(Path::new(""));
    parse_in(&text, &file, base_dir, env)
}

/// A config file's text and its name as problems give it; a file that
/// cannot be read is the one problem.
pub(super) fn read_text(path: &Path) -> Result<(String, String), ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
        problems: vec![ConfigProblem {
            file: file.clone(),
            line: None,
            path: String::new(),
            message: format!("cannot read the file: {error}"),
        }],
    })?;
    Ok((text, file))
}

/// Validates config text; `file` names it in problems, and relative paths in
/// it resolve against `file`'s directory. `${VAR}` comes from the process
/// environment.
pub fn parse_str(text: &str, file: &str) -> Result<Config, ConfigError> {
    parse_str_with_env(text, file, &process_env)
}

/// [`parse_str`] with `${VAR}` values taken from `env`.
pub fn parse_str_with_env(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let base_dir = Path::new(file).parent().unwrap_or(Path::new(""));
    parse_in(text, file, base_dir, env)
}

/// Added to a syntax error on a line with an unquoted `${`: inside `{...}`
/// or `[...]` YAML reads `{` as the start of a nested mapping, so
/// `{url: ${X}}` does not parse.
const UNQUOTED_VARIABLE_HINT: &str = " (an unquoted ${VAR} inside {...} or [...] is read as a nested mapping: quote it, e.g. {url: \"${VAR}\"})";

/// Whether `line` has a `${` outside single and double quotes (before any
/// comment).
fn has_unquoted_variable(line: &str) -> bool {
    let mut quote = None;
    let mut previous = ' ';
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '#') if previous.is_whitespace() => return false,
            (None, '$') if chars.peek() == Some(&'{') => return true,
            (None, '\'' | '"') => quote = Some(c),
            (Some('"'), '\\') => {
                chars.next();
            }
            (Some(open), _) if c == open => quote = None,
            _ => {}
        }
        previous = c;
    }
    false
}

fn parse_in(
    text: &str,
    file: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut decoder = Decoder {
        file,
        base_dir,
        problems: Vec::new(),
        files: Vec::new(),
    };
    let mut root = match tree::parse(text) {
        Ok(root) => root,
        Err(error) => {
            let hint = text
                .lines()
                .nth(error.line - 1)
                .filter(|line| has_unquoted_variable(line))
                .map_or("", |_| UNQUOTED_VARIABLE_HINT);
            decoder.report(
                error.line,
                "",
                format!("invalid yaml: {}{hint}", error.message),
            );
            return Err(decoder.into_error());
        }
    };
    if let Some(root) = &mut root {
        let mut expand_problems = Vec::new();
        tree::expand_tree(root, "", env, &mut expand_problems);
        for (line, path, message) in expand_problems {
            decoder.report(line, &path, message);
        }
    }
    let config = decoder.config(root.as_ref());
    match config {
        Some(mut config) if decoder.problems.is_empty() => {
            config.files = std::mem::take(&mut decoder.files);
            Ok(config)
        }
        _ => Err(decoder.into_error()),
    }
}
