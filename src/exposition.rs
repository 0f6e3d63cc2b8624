//! The Prometheus text exposition format (version 0.0.4): the project's one
//! writer of it, shared by `/metrics` (`sinks::exporter::render`) and the
//! binary's simulated model server.
//!
//! Every function appends to a caller's `String` without allocating, so a
//! render of half a million samples costs its buffer and nothing per line.
//! The sidecar's own metrics are not written here: the `prometheus` crate's
//! encoder writes those (`telemetry`).

use std::fmt::Write;

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes a family's `# HELP` and `# TYPE` lines; `kind` is `gauge`,
/// `counter`, `histogram`, ...
pub fn write_header(out: &mut String, name: &str, help: &str, kind: &str) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    out.push_str(help);
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

/// Writes a label value escaped as the format requires (backslash, double
/// quote and line feed).
pub fn write_label_value(out: &mut String, value: &str) {
    if !value.contains(['\\', '"', '\n']) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes a sample value: Go's spelling of NaN and the infinities, integral
/// values without a fraction, and otherwise the shortest representation that
/// reads back to the same `f64` (serde_json's float formatter, which switches
/// to exponent notation for very small or large magnitudes as Go's `%g`
/// does; Rust's `Display` would spell a p-value of 1e-30 with 30 zeros and
/// is several times slower, which matters at half a million samples per
/// render).
pub fn write_value(out: &mut String, value: f64) {
    use serde_json::ser::Formatter;
    if value.is_nan() {
        out.push_str("NaN");
    } else if value == f64::INFINITY {
        out.push_str("+Inf");
    } else if value == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        // 24 bytes hold any shortest f64 (e.g. -2.2250738585072014e-308)
        // and any i64; a stack buffer keeps the hot loop allocation-free.
        let mut buffer = [0u8; 32];
        let mut cursor = std::io::Cursor::new(&mut buffer[..]);
        let mut formatter = serde_json::ser::CompactFormatter;
        // Integral values below 2^53 are exact as integers.
        let written = if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
            formatter.write_i64(&mut cursor, value as i64)
        } else {
            formatter.write_f64(&mut cursor, value)
        };
        let length = cursor.position() as usize;
        match (written, std::str::from_utf8(&buffer[..length])) {
            (Ok(()), Ok(text)) => out.push_str(text),
            _ => {
                let _ = write!(out, "{value}");
            }
        }
    }
}

/// Writes a count in decimal.
pub fn write_u64(out: &mut String, value: u64) {
    let mut digits = Digits::new();
    out.push_str(digits.format(value));
}

/// A stack buffer for the decimal digits of one integer, for callers that
/// write the same number on many lines (format once, push many times).
#[derive(Debug, Clone, Copy)]
pub struct Digits {
    buffer: [u8; 20],
    start: usize,
}

impl Digits {
    pub fn new() -> Digits {
        Digits {
            buffer: [0; 20],
            start: 20,
        }
    }

    /// Formats `value` and returns its digits.
    pub fn format(&mut self, mut value: u64) -> &str {
        let mut start = self.buffer.len();
        loop {
            start -= 1;
            self.buffer[start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        self.start = start;
        self.as_str()
    }

    /// The digits last formatted (empty before the first).
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever written, so the slice is valid UTF-8.
        std::str::from_utf8(&self.buffer[self.start..]).unwrap_or("0")
    }
}

impl Default for Digits {
    fn default() -> Digits {
        Digits::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_label_values() {
        let mut out = String::new();
        write_label_value(&mut out, "a\"b\\c\nd");
        assert_eq!(out, "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn writes_special_values_as_go_does() {
        for (value, text) in [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (0.25, "0.25"),
            (3.0, "3"),
            (-0.0, "0"),
            (-2.0, "-2"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e-30, "1e-30"),
            (123456.789, "123456.789"),
        ] {
            let mut out = String::new();
            write_value(&mut out, value);
            assert_eq!(out, text);
        }
    }

    #[test]
    fn integers_print_like_display() {
        for value in [0, 1, 9, 10, 99, 100, 12_345, u64::MAX] {
            let mut out = String::new();
            write_u64(&mut out, value);
            assert_eq!(out, value.to_string());
        }
    }

    #[test]
    fn sums_print_integral_values_bare_and_others_exactly() {
        let check = |value: f64, expected: &str| {
            let mut out = String::new();
            write_value(&mut out, value);
            assert_eq!(out, expected);
            assert_eq!(out.parse::<f64>().unwrap().to_bits(), value.to_bits());
        };
        check(0.0, "0");
        check(42.0, "42");
        check(0.1 + 0.2, "0.30000000000000004");
        check(1234.5678, "1234.5678");
    }

    #[test]
    fn headers_name_the_family_twice() {
        let mut out = String::new();
        write_header(&mut out, "m_total", "Things done.", "counter");
        assert_eq!(out, "# HELP m_total Things done.\n# TYPE m_total counter\n");
    }
}
