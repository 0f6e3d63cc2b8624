//! Reading, expanding and decoding the YAML file, collecting every problem.

use std::path::Path;

use super::Config;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The file, or `<string>` for text parsed from memory.
    pub file: String,
    /// 1-based line, when the problem has a place.
    pub line: Option<usize>,
    /// Key path such as `monitors[0].signals.confidence.detectors[1].type`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}: {}", self.file, line, self.path, self.message),
            None => write!(f, "{}: {}: {}", self.file, self.path, self.message),
        }
    }
}

/// Every problem of a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in config: {}", problems.len(), problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
}

/// Reads and validates a config file.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    todo!("{path:?}")
}

/// Validates config text; `file` names it in problems.
pub fn parse_str(text: &str, file: &str) -> Result<Config, ConfigError> {
    todo!("{text} {file}")
}
