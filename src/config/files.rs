//! The files a config names (`url_file`, `secret_file`, `password_file`,
//! `bearer_token_file`, `baseline_file`): where each is named, recorded while
//! decoding, and [`check_files`], the separate pass that looks at them on
//! disk so that `check-config` says "ok" only for a config `run` starts with.
//! Decoding itself never touches the file system.

use std::path::PathBuf;

use super::Config;
use super::decode::{ConfigProblem, Decoder, FileRead, FileReference};
use super::tree::Node;

/// The keys whose file is read at each request rather than when the sidecar
/// starts (README: `bearer_token_file` is "read at each request"; the basic
/// auth password is resolved per request too). A missing one does not stop
/// `run`, so `check-config` only warns about it.
const READ_AT_EACH_REQUEST: [&str; 2] = ["bearer_token_file", "password_file"];

/// What [`check_files`] found: problems that stop `run`, and warnings about
/// files read only at request time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileCheck {
    pub problems: Vec<ConfigProblem>,
    pub warnings: Vec<ConfigProblem>,
}

/// Checks that every file `config` names can be opened for reading; a file
/// read at each request is a warning, any other a problem.
pub fn check_files(config: &Config) -> FileCheck {
    check_file_references(&config.files)
}

/// [`check_files`] for the files of any config file (the web config's too).
pub fn check_file_references(files: &[FileReference]) -> FileCheck {
    let mut check = FileCheck::default();
    for file in files {
        let Err(error) = readable(file) else {
            continue;
        };
        let problem = ConfigProblem {
            file: file.config_file.clone(),
            line: Some(file.line),
            path: file.key.clone(),
            message: format!("cannot read {}: {error}", file.path.display()),
        };
        match file.read {
            FileRead::AtStart => check.problems.push(problem),
            FileRead::AtEachRequest => check.warnings.push(ConfigProblem {
                message: format!(
                    "warning: {} (read at each request: requests fail until it can be read)",
                    problem.message
                ),
                ..problem
            }),
        }
    }
    check
}

/// Whether the file opens for reading and is not a directory.
fn readable(file: &FileReference) -> std::io::Result<()> {
    let opened = std::fs::File::open(&file.path)?;
    if opened.metadata()?.is_dir() {
        return Err(std::io::Error::other("it is a directory"));
    }
    Ok(())
}

impl Decoder<'_> {
    /// A file path; relative paths resolve against the config file's
    /// directory. The reference is recorded for [`check_files`].
    pub(super) fn file_path(&mut self, node: &Node, path: &str) -> Option<PathBuf> {
        let text = self.non_empty(node, path)?;
        let resolved = self.base_dir.join(text);
        let key = path.rsplit('.').next().unwrap_or(path);
        self.files.push(FileReference {
            config_file: self.file.to_owned(),
            line: node.line,
            key: path.to_owned(),
            path: resolved.clone(),
            read: if READ_AT_EACH_REQUEST.contains(&key) {
                FileRead::AtEachRequest
            } else {
                FileRead::AtStart
            },
        });
        Some(resolved)
    }
}
