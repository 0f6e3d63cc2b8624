//! PromQL names and matchers as the config writes them: label names,
//! metric names and the comma-separated matchers of a selector.

/// Prometheus label names: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(super) fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Prometheus metric names: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(super) fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c == ':' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c == ':' || c.is_ascii_alphanumeric())
}

/// Checks comma-separated PromQL label matchers (`a="x", b=~"y.*"`), the
/// inside of a selector's braces.
pub(super) fn check_matchers(text: &str) -> Result<(), String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let skip_space = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    let mut index = 0;
    loop {
        skip_space(&mut i);
        if i == chars.len() {
            return Ok(());
        }
        index += 1;
        let start = i;
        while i < chars.len() && (chars[i] == '_' || chars[i].is_ascii_alphanumeric()) {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        if !is_label_name(&name) {
            return Err(format!("matcher {index}: expected a label name"));
        }
        skip_space(&mut i);
        let rest: String = chars[i..].iter().take(2).collect();
        let op_len = if rest.starts_with("=~") || rest.starts_with("!=") || rest.starts_with("!~") {
            2
        } else if rest.starts_with('=') {
            1
        } else {
            return Err(format!(
                "matcher {index}: expected =, !=, =~ or !~ after {name}"
            ));
        };
        i += op_len;
        skip_space(&mut i);
        let Some(&quote) = chars.get(i).filter(|c| matches!(c, '"' | '\'' | '`')) else {
            return Err(format!(
                "matcher {index}: expected a quoted value after {name}"
            ));
        };
        i += 1;
        loop {
            match chars.get(i) {
                None => return Err(format!("matcher {index}: unterminated quoted value")),
                Some('\\') if quote != '`' => i += 2,
                Some(&c) if c == quote => {
                    i += 1;
                    break;
                }
                Some(_) => i += 1,
            }
        }
        skip_space(&mut i);
        match chars.get(i) {
            None => return Ok(()),
            Some(',') => i += 1,
            Some(_) => return Err(format!("matcher {index}: expected , between matchers")),
        }
    }
}
