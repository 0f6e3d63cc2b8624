//! Secrets: a value given inline (normally from `${VAR}`) or as a file read
//! when used, never logged or shown in a problem.

use std::path::PathBuf;

use super::decode::{Decoder, Fields};
use super::tree::Node;

/// A secret value, inline or read from a file when used. `Debug` redacts it.
#[derive(Clone, PartialEq)]
pub enum SecretSource {
    Inline(String),
    File(PathBuf),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Inline(_) => f.write_str("Inline(<redacted>)"),
            SecretSource::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl SecretSource {
    /// The secret's value; files are read now and trailing newlines trimmed.
    pub fn resolve(&self) -> std::io::Result<String> {
        match self {
            SecretSource::Inline(value) => Ok(value.clone()),
            SecretSource::File(path) => {
                let text = std::fs::read_to_string(path)?;
                Ok(text.trim_end_matches(['\r', '\n']).to_owned())
            }
        }
    }
}

impl Decoder<'_> {
    /// A secret given inline or as a file: at most one of the two keys, and
    /// exactly one when `required`. The inline value is never shown.
    pub(super) fn secret(
        &mut self,
        fields: &Fields<'_>,
        inline_key: &'static str,
        file_key: &'static str,
        required: bool,
    ) -> Option<Option<SecretSource>> {
        self.inline_or_file(fields, (inline_key, file_key), required, |d, n, p| {
            d.string(n, p).map(SecretSource::Inline)
        })
    }

    /// [`Decoder::secret`] with `inline` reading the inline value.
    pub(super) fn inline_or_file<'n>(
        &mut self,
        fields: &Fields<'n>,
        (inline_key, file_key): (&'static str, &'static str),
        required: bool,
        inline: impl FnOnce(&mut Self, &'n Node, &str) -> Option<SecretSource>,
    ) -> Option<Option<SecretSource>> {
        match (fields.get(inline_key), fields.get(file_key)) {
            (Some(_), Some(_)) => {
                let line = fields
                    .key_node(file_key)
                    .map_or(fields.line, |key| key.line);
                self.report(
                    line,
                    &fields.path(file_key),
                    format!("set only one of {inline_key} and {file_key}"),
                );
                None
            }
            (Some(node), None) => inline(self, node, &fields.path(inline_key)).map(Some),
            (None, Some(node)) => {
                let path = self.file_path(node, &fields.path(file_key))?;
                Some(Some(SecretSource::File(path)))
            }
            (None, None) if required => {
                self.report(
                    fields.line,
                    &fields.path(inline_key),
                    format!("missing required key: give one of {inline_key} and {file_key}"),
                );
                None
            }
            (None, None) => Some(None),
        }
    }
}
