//! [`ConfigError`] and the translation of TOML parse / deserialize errors into
//! errors that name the file, line, column and key.

use std::collections::HashMap;
use std::fmt;

/// One configuration error: where it is (file, 1-based line and column of the
/// offending value) and which key it concerns.
///
/// Displays as `FILE:LINE:COL: KEY: message`; the parts that are unknown are
/// left out (an unreadable file has no line, a syntax error has no key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    file: String,
    line: Option<usize>,
    column: Option<usize>,
    key: Option<String>,
    message: String,
}

impl ConfigError {
    /// An error that points at a position in the text.
    pub(crate) fn at(
        text: &str,
        file: &str,
        offset: usize,
        key: Option<String>,
        message: String,
    ) -> ConfigError {
        let (line, column) = line_col(text, offset);
        ConfigError {
            file: file.to_string(),
            line: Some(line),
            column: Some(column),
            key,
            message,
        }
    }

    /// An error about the file as a whole (it could not be read).
    pub(crate) fn whole_file(file: &str, message: String) -> ConfigError {
        ConfigError {
            file: file.to_string(),
            line: None,
            column: None,
            key: None,
            message,
        }
    }

    /// The file name given to [`super::parse`] or the path given to [`super::load`].
    pub fn file(&self) -> &str {
        &self.file
    }

    /// 1-based line of the offending value, table or syntax error.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// 1-based column (in characters) of the offending value.
    pub fn column(&self) -> Option<usize> {
        self.column
    }

    /// Dotted key path such as `vip[1].table_size` or `node.addresses[0]`;
    /// for an unknown key, the table that holds it (`vip[0].backend[1]`).
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The message without the location prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// 1-based (line, column) of a byte offset; the column counts characters.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

/// Converts an error from the `toml` deserializer (syntax, unknown key,
/// missing key, wrong type) into a [`ConfigError`] with a key path.
pub(crate) fn from_toml(text: &str, file: &str, err: &toml::de::Error) -> ConfigError {
    let span = err.span().unwrap_or(0..0);
    let raw = err.message().trim();

    if let Some(rest) = raw.strip_prefix("unknown field `") {
        if let Some((name, expected)) = rest.split_once('`') {
            let table = unknown_key_table(text, span.start, name);
            let message = format!("unknown key `{name}`{}", expected_list(expected));
            return ConfigError::at(text, file, span.start, table, message);
        }
    }

    if let Some(rest) = raw.strip_prefix("missing field `") {
        let name = rest.trim_end_matches('`');
        // An empty span is toml's way of pointing at the document root.
        let table = if span.is_empty() {
            String::new()
        } else {
            table_path_including(text, span.start)
        };
        let key = join_key(&table, name);
        let message = if table.is_empty() && (name == "node") {
            "required table is missing (every config needs a [node] table)".to_string()
        } else {
            "required key is missing".to_string()
        };
        return ConfigError::at(text, file, span.start, Some(key), message);
    }

    if let Some(rest) = raw.strip_prefix("invalid type: ") {
        if let Some((found, expected)) = rest.rsplit_once(", expected ") {
            let key = value_key(text, span.start);
            let mut message = format!(
                "expected {}, found {}",
                friendly_type(expected),
                friendly_type(found)
            );
            if found == "map" && expected == "a sequence" && header_at(text, span.start).is_some() {
                let name = key.clone().unwrap_or_default();
                let bare = strip_indices(&name);
                message = format!("`{bare}` is a list of tables: write [[{bare}]], not [{bare}]");
            }
            return ConfigError::at(text, file, span.start, key, message);
        }
    }

    // A syntax error (or anything else): keep toml's own text, one line.
    let message = raw
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    ConfigError::at(text, file, span.start, None, message)
}

/// `expected `a`, `b` or `c`` → `, expected one of a, b, c`.
fn expected_list(expected: &str) -> String {
    let list = expected
        .trim_start_matches(',')
        .trim()
        .trim_start_matches("expected")
        .trim()
        .trim_start_matches("one of")
        .trim()
        .replace(" or ", ", ")
        .replace('`', "");
    if list.is_empty() || list.contains("no fields") {
        String::new()
    } else if list.contains(',') {
        format!(", expected one of {list}")
    } else {
        format!(", expected {list}")
    }
}

fn friendly_type(serde_type: &str) -> String {
    let t = serde_type.trim();
    match t {
        "i64" | "u64" | "i32" | "u32" | "u16" | "u8" => "an integer".to_string(),
        "a sequence" => "an array".to_string(),
        "map" | "a map" => "a table".to_string(),
        "sequence" => "an array".to_string(),
        _ if t.starts_with("struct ") => "a table".to_string(),
        _ => t.to_string(),
    }
}

fn join_key(table: &str, name: &str) -> String {
    if table.is_empty() {
        name.to_string()
    } else {
        format!("{table}.{name}")
    }
}

fn strip_indices(path: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// A table header line: `[a.b]` or `[[a.b]]`.
struct Header {
    segments: Vec<String>,
    array: bool,
}

/// The header on the line that contains `offset`, if that line is one.
fn header_at(text: &str, offset: usize) -> Option<Header> {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    parse_header(&text[start..end])
}

fn parse_header(line: &str) -> Option<Header> {
    let mut l = line.trim();
    if let Some(hash) = l.find('#') {
        // Headers in rampart configs never contain quoted '#'.
        l = l[..hash].trim_end();
    }
    let (inner, array) =
        if let Some(inner) = l.strip_prefix("[[").and_then(|s| s.strip_suffix("]]")) {
            (inner, true)
        } else if let Some(inner) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            (inner, false)
        } else {
            return None;
        };
    let valid = |c: char| c.is_ascii_alphanumeric() || "_-. \"'".contains(c);
    if inner.trim().is_empty() || !inner.chars().all(valid) {
        return None;
    }
    let segments = inner
        .split('.')
        .map(|s| s.trim().trim_matches('"').trim_matches('\'').to_string())
        .collect();
    Some(Header { segments, array })
}

/// Walks the header lines that start before `limit` and keeps the element
/// index of every array of tables, to render paths like `vip[2].backend[0]`.
struct HeaderWalk {
    counts: HashMap<String, usize>,
    current: Vec<String>,
}

impl HeaderWalk {
    fn run(text: &str, limit: usize) -> HeaderWalk {
        let mut walk = HeaderWalk {
            counts: HashMap::new(),
            current: Vec::new(),
        };
        let mut pos = 0;
        for line in text.split_inclusive('\n') {
            if pos >= limit {
                break;
            }
            if let Some(h) = parse_header(line) {
                let full = h.segments.join(".");
                if h.array {
                    *walk.counts.entry(full.clone()).or_insert(0) += 1;
                    let child = format!("{full}.");
                    walk.counts.retain(|k, _| !k.starts_with(&child));
                }
                walk.current = h.segments;
            }
            pos += line.len();
        }
        walk
    }

    fn render(&self, segments: &[String]) -> String {
        let mut out = String::new();
        for i in 0..segments.len() {
            if i > 0 {
                out.push('.');
            }
            out.push_str(&segments[i]);
            if let Some(n) = self.counts.get(&segments[..=i].join(".")) {
                out.push_str(&format!("[{}]", n.saturating_sub(1)));
            }
        }
        out
    }
}

/// Path of the table whose header line starts at or before `offset`
/// (the span of a table starts at its header).
fn table_path_including(text: &str, offset: usize) -> String {
    let walk = HeaderWalk::run(text, offset + 1);
    walk.render(&walk.current)
}

/// Path of the table that holds the unknown key `name` found at `offset`.
fn unknown_key_table(text: &str, offset: usize, name: &str) -> Option<String> {
    let path = if let Some(h) = header_at(text, offset) {
        // The unknown name is a segment of a header: its parent is the table.
        let line_start = text[..offset.min(text.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let walk = HeaderWalk::run(text, line_start);
        let idx = h
            .segments
            .iter()
            .position(|s| s == name)
            .unwrap_or(h.segments.len().saturating_sub(1));
        walk.render(&h.segments[..idx])
    } else {
        let walk = HeaderWalk::run(text, offset);
        walk.render(&walk.current)
    };
    if path.is_empty() {
        None
    } else {
        Some(path)
    }
}

/// Key path of the value at `offset`: the enclosing table plus the key
/// written before `=` on that line (or the header itself).
fn value_key(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    if header_at(text, offset).is_some() {
        let path = table_path_including(text, offset);
        return (!path.is_empty()).then_some(path);
    }
    let walk = HeaderWalk::run(text, offset);
    let table = walk.render(&walk.current);
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..offset];
    let key = before.rfind('=').map(|eq| {
        let lhs = &before[..eq];
        let lhs = lhs.rsplit([',', '{']).next().unwrap_or(lhs);
        lhs.trim().trim_matches('"').trim_matches('\'').to_string()
    });
    match key {
        Some(k) if !k.is_empty() => Some(join_key(&table, &k)),
        _ if !table.is_empty() => Some(table),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let t = "a = 1\nbb = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 11), (2, 6));
    }

    #[test]
    fn display_format() {
        let e = ConfigError::at("x\ny = 1\n", "c.toml", 6, Some("y".into()), "bad".into());
        assert_eq!(e.to_string(), "c.toml:2:5: y: bad");
        let e = ConfigError::whole_file("c.toml", "cannot read".into());
        assert_eq!(e.to_string(), "c.toml: cannot read");
    }

    #[test]
    fn header_paths() {
        let t =
            "[node]\n[[vip]]\n[[vip.backend]]\n[[vip.backend]]\n[[vip]]\n[[vip.backend]]\nx = 1\n";
        let at = t.find("x = 1").unwrap();
        assert_eq!(table_path_including(t, at), "vip[1].backend[0]");
        let at = t.find("[[vip]]\n[[vip.backend]]\nx").unwrap() - 1;
        assert_eq!(table_path_including(t, at), "vip[0].backend[1]");
    }
}
