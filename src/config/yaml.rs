//! YAML in, positions out: serde_yaml reads the typed spec (and stamps the
//! position of any error raised while reading), and [`Positions`] maps a
//! [`FieldPath`] to its line and column for checks made after reading.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::error::{ConfigError, FieldPath};
use super::spec;

/// Parses `bytes` as a `T`, turning serde_yaml's error into file:line:col.
pub fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], rel: &str) -> Result<T, ConfigError> {
    spec::take_template_error_pos();
    spec::take_unknown_read();
    serde_yaml::from_slice(bytes).map_err(|e| error(bytes, rel, &e))
}

/// Every top-level key's first problem, where [`parse`] stops at the
/// document's first (`first`): an operator with three slips in a file sees
/// three errors, not one per attempt. `bytes` is parsed as a `T` once per
/// top-level key with every other key's lines blanked, so lines and columns
/// are the file's and each error is worded as [`parse`] words it. A
/// required key is not blanked but replaced by its `stand_ins` value (an
/// empty list, say), so that neither its absence nor its own mistake is
/// what every other key's parse reports. Only for a block mapping with its
/// keys at column 1, the shape of every config file; any other document
/// (flow style, several documents, a syntax error) gets `first` alone.
/// Errors are in the file's order, one per place.
pub fn each_key_problem<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    rel: &str,
    stand_ins: &[(&str, &str)],
    first: ConfigError,
) -> Vec<ConfigError> {
    let Ok(source) = std::str::from_utf8(bytes) else {
        return vec![first];
    };
    let lines: Vec<&str> = source.split('\n').collect();
    let Some(keys) = top_level_keys(bytes, source, &lines) else {
        return vec![first];
    };
    let mut out = vec![first];
    for (key, range) in &keys {
        let mut doc: Vec<String> = vec![String::new(); lines.len()];
        for i in range.clone() {
            doc[i] = lines[i].to_owned();
        }
        for (name, value) in stand_ins.iter().filter(|(name, _)| name != key) {
            let stand_in = format!("{name}: {value}");
            match keys.iter().find(|(k, _)| k == name) {
                Some((_, r)) => doc[r.start] = stand_in,
                // After the file's last line, where no position moves.
                None => doc.push(stand_in),
            }
        }
        if let Err(e) = parse::<T>(doc.join("\n").as_bytes(), rel) {
            let seen = out.iter().any(|o| match (o.line, e.line) {
                (Some(_), Some(_)) => (o.line, o.column) == (e.line, e.column),
                _ => o.message == e.message,
            });
            if !seen {
                out.push(e);
            }
        }
    }
    out.sort_by_key(|e| (e.line, e.column));
    out
}

/// Top-level keys past which a file gets its first problem alone: the work
/// is keys × lines, and a real config file has a dozen keys.
const MAX_KEYS_SPLIT: usize = 64;

/// The top-level keys of a block mapping written at column 1, with the
/// 0-based lines each spans (to the next key; comments and blank lines
/// before a key belong to the key above). `None` for any other document,
/// and for one that blanking lines would misread: an alias (its anchor may
/// be under another key), or a line break other than `\n` and `\r\n`
/// (YAML counts it as a line, and lines would move).
/// `source` is `bytes` as text, and `lines` its lines.
fn top_level_keys(
    bytes: &[u8],
    source: &str,
    lines: &[&str],
) -> Option<Vec<(String, std::ops::Range<usize>)>> {
    // Valid YAML and a mapping, or not this function's to split.
    let value: serde_yaml::Value = serde_yaml::from_slice(bytes).ok()?;
    let mapping = value.as_mapping()?;
    if mapping.len() > MAX_KEYS_SPLIT
        || source.contains(['\u{85}', '\u{2028}', '\u{2029}'])
        || source
            .match_indices('\r')
            .any(|(i, _)| !source[i + 1..].starts_with('\n'))
        || has_alias(source)
    {
        return None;
    }
    let mut starts = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim_end_matches('\r');
        match line.chars().next() {
            None | Some(' ' | '\t' | '#') => continue,
            // Flow style, several documents, directives, a top-level list.
            Some('{' | '[' | '-' | '.' | '%' | '?' | '&' | '*' | '!' | '|' | '>') => return None,
            Some(_) => {}
        }
        let key = line.split(':').next()?.trim().trim_matches(['"', '\'']);
        starts.push((i, key.to_owned()));
    }
    // Every line taken for a key must be one, in the parser's own reading: a
    // flow list continued at column 1 is not.
    let parsed = mapping.keys().map(serde_yaml::Value::as_str);
    if !starts.iter().map(|(_, k)| Some(k.as_str())).eq(parsed) {
        return None;
    }
    let ends = starts.iter().skip(1).map(|(i, _)| *i).chain([lines.len()]);
    Some(
        starts
            .iter()
            .zip(ends)
            .map(|((start, key), end)| (key.clone(), *start..end))
            .collect(),
    )
}

/// For a template syntax error serde_yaml points at the start of the string;
/// the template's own line and column are added so the position lands on the
/// faulty character.
fn error(bytes: &[u8], rel: &str, e: &serde_yaml::Error) -> ConfigError {
    let text = e.to_string();
    let Some(loc) = e.location() else {
        return ConfigError::whole_file(rel, text);
    };
    // The position goes in front, as file:line:col; drop serde_yaml's copy.
    let suffix = format!(" at line {} column {}", loc.line(), loc.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
    let mut at = (loc.line(), loc.column());
    let source = String::from_utf8_lossy(bytes);
    if let Some(inner) = spec::take_template_error_pos() {
        // `text: "… default("x") …"`: the inner `"` ended the text, and the
        // template, cut short there, fails before YAML sees the rest.
        if let Some(quote) = closed_early(&source, at) {
            let message = format!("{QUOTE_ENDS_TEXT} (the template, cut short there: {message})");
            return ConfigError::at(rel, quote, message);
        }
        at = inside(&source, at, inner);
    } else if let Some((field, name)) = spec::take_unknown_read() {
        // Only if this error is that check's: a refusal inside an attempt
        // serde gave up on could have left it behind.
        if message.contains(&spec::unknown_read_message(&field, &name)) {
            at = Positions::of(bytes)
                .read_of(at, &field, &name)
                .unwrap_or(at);
        }
    }
    let message = super::error::with_suggestion(message);
    let message = match plain_words(&source, at, &message) {
        Some((plain, moved)) => {
            at = moved.unwrap_or(at);
            format!("{plain} (YAML: {message})")
        }
        None => message,
    };
    ConfigError::at(rel, at, message)
}

/// libyaml's messages name parser states (`did not find expected key`);
/// operators need the mistake that leads there, with the original kept
/// after it for whoever knows YAML.
/// Returns the explanation and, when the fault is elsewhere than where
/// libyaml stopped, its position.
fn plain_words(
    source: &str,
    at: (usize, usize),
    message: &str,
) -> Option<(String, Option<(usize, usize)>)> {
    plain_words_at(source, at, message).map(|(m, moved)| (m.to_owned(), moved))
}

const QUOTE_ENDS_TEXT: &str = "a `\"` inside a text that starts with `\"` ends the text early; write the text between single quotes ('…'), or write each inner quote as `\\\"`, or put the text in a block (`|` or `>-`) on the lines below";

/// For a double-quoted scalar starting at `start`, the position of the `"`
/// that closed it, if more than a comment follows on its line: a quote
/// meant to be inside the text.
fn closed_early(source: &str, (line, column): (usize, usize)) -> Option<(usize, usize)> {
    let text = source.lines().nth(line.checked_sub(1)?)?;
    let mut chars = text.chars().skip(column.checked_sub(1)?);
    if chars.next()? != '"' {
        return None;
    }
    let mut at = column;
    while let Some(c) = chars.next() {
        at += 1;
        match c {
            '\\' => {
                chars.next();
                at += 1;
            }
            '"' => {
                let rest: String = chars.collect();
                let rest = rest.trim_start();
                return (!rest.is_empty() && !rest.starts_with('#')).then_some((line, at));
            }
            _ => {}
        }
    }
    None
}

fn plain_words_at(
    source: &str,
    (line, column): (usize, usize),
    message: &str,
) -> Option<(&'static str, Option<(usize, usize)>)> {
    let text = source.lines().nth(line.saturating_sub(1)).unwrap_or("");
    let here = text.chars().nth(column.saturating_sub(1));
    let before: String = text.chars().take(column.saturating_sub(1)).collect();
    if message.starts_with("found character that cannot start any token") && here == Some('\t') {
        return Some(("a tab is used to indent this line; YAML indents with spaces only: replace the tab with spaces", None));
    }
    if message.contains("while scanning a quoted scalar") && message.contains("end of stream") {
        // libyaml stops at the end of the file; the fault is the opening quote.
        let opening = message
            .rsplit_once("while scanning a quoted scalar at line ")
            .and_then(|(_, rest)| {
                let (l, rest) = rest.split_once(" column ")?;
                let c: String = rest.chars().take_while(char::is_ascii_digit).collect();
                Some((l.parse().ok()?, c.parse().ok()?))
            });
        return Some((
            "a quoted text is never closed: this opening `\"` or `'` has no closing quote",
            opening,
        ));
    }
    if message.starts_with("did not find expected key")
        || message.starts_with("did not find expected '-' indicator")
        || message.starts_with("expected <block end>")
        || message.starts_with("found character that cannot start any token")
    {
        // `text: "Olá "fulano""`: the second `"` closed the text.
        let value = before.split_once(": ").map_or("", |(_, v)| v).trim_start();
        if value.starts_with('"') && value.matches('"').count() >= 2 {
            // Point at the quote that ended the text.
            let quote = before
                .rfind('"')
                .map(|i| (line, before[..i].chars().count() + 1));
            return Some((QUOTE_ENDS_TEXT, quote));
        }
        if value.starts_with('\'') && value.matches('\'').count() >= 2 {
            return Some(("a `'` inside a text that starts with `'` ends the text early; write it twice (`''`) inside the text, or put the text between double quotes", None));
        }
        if message.starts_with("found character") {
            return None;
        }
        if message.starts_with("did not find expected '-' indicator") {
            return Some(("this line is not indented like the list above it: every item of a list starts with `- ` in the same column, and the keys of one item line up under its first key, past the `- `", None));
        }
        return Some(("this line's indentation does not match the lines above: the keys of one mapping start in the same column, a key's value is indented further than the key, and a list's items (`- `) line up", None));
    }
    if message.starts_with("mapping values are not allowed in this context") {
        return Some(("`: ` inside a plain text starts a key; put the whole text in quotes ('…') or in a block (`|`)", None));
    }
    if message.starts_with("block sequence entries are not allowed in this context") {
        return Some((
            "a list item (`- `) cannot start here: put it on its own line, indented under its key",
            None,
        ));
    }
    if message.contains("invalid type: ")
        && (message.contains("expected a sequence") || message.contains("expected a list"))
    {
        return Some(("this key takes a list: put each item on its own line below the key, starting with `- `, or write the items between brackets on the key's line (`[a, b]`)", None));
    }
    if message.contains("invalid type: map") && here == Some('{') {
        return Some(("a value that starts with `{` is read by YAML as a mapping; put the template in quotes (\"{{ … }}\") or in a block (`|`)", None));
    }
    None
}

/// The file position of `inner` (line and column inside a string's value,
/// 1-based) for the string whose YAML scalar starts at `start`.
pub fn inside(source: &str, start: (usize, usize), inner: (usize, usize)) -> (usize, usize) {
    let (line, column) = start;
    let (tl, tc) = inner;
    let first = source
        .lines()
        .nth(line.saturating_sub(1))
        .and_then(|l| l.chars().nth(column.saturating_sub(1)));
    match first {
        // Block scalar (`|` or `>`): the text starts on the next line, at
        // the block's indentation.
        Some('|' | '>') => {
            let line = line + tl;
            let indent = source
                .lines()
                .nth(line - 1)
                .map_or(0, |l| l.len() - l.trim_start().len());
            (line, indent + tc)
        }
        // Quoted scalar: skip the opening quote on the first line.
        Some('"' | '\'') if tl == 1 => (line, column + tc),
        _ if tl == 1 => (line, column + tc - 1),
        _ => (line + tl - 1, tc),
    }
}

/// Where each value of a YAML document starts, by [`FieldPath`]. Built only
/// when an error needs a position, so loading a good file never pays for it.
#[derive(Debug, Default)]
pub struct Positions {
    values: HashMap<String, Place>,
    source: String,
    /// Where each line starts, and where each value starts (sorted), as
    /// byte offsets: a value's text is cut out without scanning the file
    /// again, so finding a place costs the same in a file of any size.
    lines: Vec<usize>,
    starts: Vec<usize>,
}

/// Where a value starts. A block scalar (`|`, `>`) is placed at its text's
/// first character, on the line after the indicator.
#[derive(Debug, Clone, Copy)]
struct Place {
    at: (usize, usize),
    block: bool,
}

impl Positions {
    pub fn of(bytes: &[u8]) -> Positions {
        let source = String::from_utf8_lossy(bytes).into_owned();
        let mut walker = Walker::default();
        // A document serde_yaml accepted parses here too; if it ever did
        // not, errors fall back to the file as a whole.
        let _ = Parser::new_from_str(&source).load(&mut walker, false);
        let lines: Vec<usize> = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let mut starts: Vec<usize> = walker
            .values
            .values()
            .filter_map(|p| offset(&source, &lines, p.at))
            .collect();
        starts.sort_unstable();
        starts.dedup();
        Positions {
            values: walker.values,
            source,
            lines,
            starts,
        }
    }

    /// Line and column where the value at `path` starts.
    pub fn get(&self, path: &FieldPath) -> Option<(usize, usize)> {
        self.values.get(&path.to_string()).map(|p| p.at)
    }

    /// Like [`get`](Self::get), moved to `inner` (line, column inside the
    /// value's text) when given: a block scalar's third line, say.
    pub fn locate(
        &self,
        path: &FieldPath,
        inner: Option<(usize, usize)>,
    ) -> Option<(usize, usize)> {
        let place = self.values.get(&path.to_string())?;
        let (line, column) = place.at;
        Some(match inner {
            // Every line of a block scalar starts at the block's indentation.
            Some((tl, tc)) if place.block => (line + tl - 1, column + tc - 1),
            Some(inner) => inside(&self.source, place.at, inner),
            None => place.at,
        })
    }

    /// Where the template of `field` in the mapping that starts at `mapping`
    /// reads the variable `name`: the first `name` in that value's text that
    /// is not an attribute (`x.name`) and, outside `when` and `for_each`
    /// (bare expressions), sits between `{{ }}` or `{% %}`.
    fn read_of(&self, mapping: (usize, usize), field: &str, name: &str) -> Option<(usize, usize)> {
        // serde_yaml places a block mapping at its first key, yaml-rust2 at
        // that key's `:`: the mapping is the first one on that line from
        // there that has `field`.
        let (path, _) = self
            .values
            .iter()
            .filter(|(_, p)| p.at.0 == mapping.0 && p.at.1 >= mapping.1)
            .map(|(path, p)| {
                let path = match path.as_str() {
                    "" => field.to_owned(),
                    path => format!("{path}.{field}"),
                };
                (path, p.at.1)
            })
            .filter(|(path, _)| self.values.contains_key(path))
            .min_by_key(|&(_, column)| column)?;
        let (start, text) = self.text_of(self.values[&path].at)?;
        let bare = matches!(field, "when" | "for_each");
        let found = template_reads(text, name, bare)?;
        Some(super::check::position(&self.source, start + found))
    }

    /// The file's text of the value that starts at `at`, and its offset: it
    /// ends where the next value starts (or with the file).
    fn text_of(&self, at: (usize, usize)) -> Option<(usize, &str)> {
        let start = offset(&self.source, &self.lines, at)?;
        let next = self.starts.partition_point(|&o| o <= start);
        let end = self.starts.get(next).copied().unwrap_or(self.source.len());
        Some((start, &self.source[start..end]))
    }

    /// Where the `nth` (0-based) `excerpt` (a template's own text,
    /// `data.valor | brl`) is in the value at `path`, or where that value
    /// starts if the file's text does not hold it as written (split over
    /// lines, or escaped). `None` if the file has no value at `path`.
    pub fn find(&self, path: &str, excerpt: Option<(&str, usize)>) -> Option<(usize, usize)> {
        let place = self.values.get(path)?;
        Some(self.within(place.at, excerpt).unwrap_or(place.at))
    }

    /// Where the `nth` `excerpt` is in the first value under `prefix` (a
    /// message, a call) whose text holds it: for a key the file writes
    /// otherwise than the error names it (`template.body.nome` for the
    /// first named value, `headers.Authorization` for `authorization`).
    pub fn find_under(&self, prefix: &str, excerpt: (&str, usize)) -> Option<(usize, usize)> {
        let mut under: Vec<_> = self
            .values
            .iter()
            .filter(|(path, _)| {
                path.strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
            })
            .map(|(_, p)| p.at)
            .collect();
        under.sort_unstable();
        under
            .into_iter()
            .find_map(|at| self.within(at, Some(excerpt)))
    }

    fn within(&self, at: (usize, usize), excerpt: Option<(&str, usize)>) -> Option<(usize, usize)> {
        let (excerpt, nth) = excerpt.filter(|(e, _)| !e.is_empty())?;
        let (start, text) = self.text_of(at)?;
        let (found, _) = text.match_indices(excerpt).nth(nth)?;
        Some(super::check::position(&self.source, start + found))
    }

    /// An error at `path`, or on the file as a whole if the path is unknown.
    pub fn error(
        &self,
        file: &str,
        path: &FieldPath,
        inner: Option<(usize, usize)>,
        message: impl Into<String>,
    ) -> ConfigError {
        match self.locate(path, inner) {
            Some(at) => ConfigError::at(file, at, message),
            None => ConfigError::whole_file(file, message),
        }
    }
}

/// The byte offset of a (line, column) position, both 1-based, columns in
/// characters.
fn offset(source: &str, lines: &[usize], (line, column): (usize, usize)) -> Option<usize> {
    let line_start = *lines.get(line.saturating_sub(1))?;
    let rest = &source[line_start..];
    let within = rest
        .char_indices()
        .nth(column.checked_sub(1)?)
        .map_or(rest.len(), |(i, _)| i);
    Some(line_start + within)
}

/// The offset in `text` of the first read of the variable `name`: a whole
/// word not after `.`, inside a tag unless `bare`.
fn template_reads(text: &str, name: &str, bare: bool) -> Option<usize> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = text.as_bytes();
    let mut in_tag = bare;
    // Inside a tag, a string literal (`'contato'`) is text, not a read.
    let mut quote: Option<u8> = None;
    // A bare expression may itself be a quoted YAML scalar: its quote is
    // YAML's, not a string literal's.
    let mut i = usize::from(bare && matches!(bytes.first(), Some(b'"' | b'\'')));
    while i < bytes.len() {
        if in_tag {
            match quote {
                Some(q) if bytes[i] == q => quote = None,
                Some(_) => {}
                None if bytes[i] == b'\'' || bytes[i] == b'"' => quote = Some(bytes[i]),
                None => {}
            }
            if quote.is_some() || bytes[i] == b'\'' || bytes[i] == b'"' {
                i += 1;
                continue;
            }
        }
        let pair = &bytes[i..bytes.len().min(i + 2)];
        if !bare && matches!(pair, b"{{" | b"{%") {
            in_tag = true;
            i += 2;
            continue;
        }
        if !bare && matches!(pair, b"}}" | b"%}") {
            in_tag = false;
            i += 2;
            continue;
        }
        if in_tag
            && bytes[i..].starts_with(name.as_bytes())
            && (i == 0 || !(word(bytes[i - 1]) || bytes[i - 1] == b'.'))
            && bytes.get(i + name.len()).is_none_or(|&b| !word(b))
        {
            return Some(i);
        }
        i += 1;
    }
    None
}

#[derive(Default)]
struct Walker {
    values: HashMap<String, Place>,
    stack: Vec<Frame>,
}

enum Frame {
    /// In a mapping: the path of the mapping, and the key just read (whose
    /// value comes next) if any.
    Map(FieldPath, Option<String>),
    Seq(FieldPath, usize),
}

impl Walker {
    /// The path of the node that starts now, advancing the parent's state.
    /// `None` for a mapping key.
    fn next_path(&mut self) -> Option<FieldPath> {
        match self.stack.last_mut() {
            None => Some(FieldPath::root()),
            Some(Frame::Seq(path, n)) => {
                let p = path.at(*n);
                *n += 1;
                Some(p)
            }
            Some(Frame::Map(path, key)) => key.take().map(|k| path.then(k)),
        }
    }
}

/// Whether the document uses an alias (`*name`, a `<<: *name` merge too).
fn has_alias(source: &str) -> bool {
    struct Aliases(bool);
    impl MarkedEventReceiver for Aliases {
        fn on_event(&mut self, ev: Event, _: Marker) {
            self.0 |= matches!(ev, Event::Alias(_));
        }
    }
    let mut seen = Aliases(false);
    // Only called on a document serde_yaml read; a failure here is no alias.
    let _ = Parser::new_from_str(source).load(&mut seen, false);
    seen.0
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        // yaml-rust2's columns are 0-based.
        let at = Place {
            at: (mark.line(), mark.col() + 1),
            block: false,
        };
        match ev {
            Event::Scalar(value, style, ..) => match self.next_path() {
                Some(path) => {
                    let block = matches!(style, TScalarStyle::Literal | TScalarStyle::Folded);
                    self.values.insert(path.to_string(), Place { block, ..at });
                }
                None => {
                    if let Some(Frame::Map(_, key)) = self.stack.last_mut() {
                        *key = Some(value);
                    }
                }
            },
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                // A complex key (a mapping as a key) is not valid in recado's
                // files; it gets a placeholder path.
                let path = self.next_path().unwrap_or_else(|| FieldPath::key("?"));
                self.values.insert(path.to_string(), at);
                self.stack.push(match ev {
                    Event::MappingStart(..) => Frame::Map(path, None),
                    _ => Frame::Seq(path, 0),
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Alias(_) => {
                if let Some(path) = self.next_path() {
                    self.values.insert(path.to_string(), at);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_values_by_path() {
        let src = "a: 1\nmessages:\n  - text: hi\n  - text: |\n      one\n      two {{ x }}\n";
        let p = Positions::of(src.as_bytes());
        let m1 = FieldPath::key("messages").at(1).then("text");
        assert_eq!(p.get(&FieldPath::key("a")), Some((1, 4)));
        assert_eq!(
            p.get(&FieldPath::key("messages").at(0).then("text")),
            Some((3, 11))
        );
        assert_eq!(p.get(&m1), Some((5, 7)));
        assert_eq!(p.locate(&m1, Some((2, 5))), Some((6, 11)));
    }

    /// A failing expression is found in its value's text, whatever the
    /// scalar's style; where it is not written as given, the value's start.
    #[test]
    fn finds_an_expression_in_its_value() {
        let src = "messages:\n  - text: \"Oi {{ a | f }}\"\n  - text: >-\n      x {{ a | f }}\n      {{ b\n      | g }}\n  - file: '{{ a | f }}'\n";
        let p = Positions::of(src.as_bytes());
        assert_eq!(
            p.find("messages[0].text", Some(("a | f", 0))),
            Some((2, 18))
        );
        assert_eq!(
            p.find("messages[1].text", Some(("a | f", 0))),
            Some((4, 12))
        );
        // Split over two lines: the value's start.
        assert_eq!(p.find("messages[1].text", Some(("b | g", 0))), Some((4, 7)));
        assert_eq!(
            p.find("messages[2].file", Some(("a | f", 0))),
            Some((7, 15))
        );
        // Only the value's own text is searched, not the next message's.
        assert_eq!(p.find("messages[0].text", Some(("b", 0))), Some((2, 11)));
        assert_eq!(p.find("messages[0].text", None), Some((2, 11)));
        assert_eq!(p.find("messages[3].text", Some(("a", 0))), None);
        // The second of two: `data.v` after `data.v_total`.
        let src = "messages:\n  - text: \"{{ data.v_total }} {{ data.v }}\"\n  - template:\n      body:\n        nome: \"{{ x | f }}\"\n";
        let p = Positions::of(src.as_bytes());
        assert_eq!(
            p.find("messages[0].text", Some(("data.v", 1))),
            Some((2, 34))
        );
        // A key the file writes otherwise: found under the message.
        assert_eq!(
            p.find("messages[1].template.body[0]", Some(("x | f", 0))),
            None
        );
        assert_eq!(p.find_under("messages[1]", ("x | f", 0)), Some((5, 19)));
        assert_eq!(p.find_under("messages[0]", ("x | f", 0)), None);
    }

    /// An unknown variable is found in its own field's text, inside a tag
    /// (or bare in `when`), never as an attribute or in literal text.
    #[test]
    fn finds_where_a_template_reads_a_name() {
        let src = "messages:\n  - text: Olá\n  - when: ok and contato\n    text: >-\n      contato: {{ x.contato }}\n      e {{ contato.name }}\n";
        let p = Positions::of(src.as_bytes());
        assert_eq!(p.read_of((3, 5), "text", "contato"), Some((6, 12)));
        assert_eq!(p.read_of((3, 5), "when", "contato"), Some((3, 18)));
        assert_eq!(p.read_of((3, 5), "text", "nada"), None);
        assert_eq!(p.read_of((9, 9), "text", "contato"), None);
        // A string literal is text, not a read; a quoted `when` is YAML's quote.
        let src = "messages:\n  - when: \"data.t == 'contato' or contato\"\n    text: \"{{ 'contato' }} {{ contato }}\"\n";
        let p = Positions::of(src.as_bytes());
        assert_eq!(p.read_of((2, 5), "when", "contato"), Some((2, 35)));
        assert_eq!(p.read_of((2, 5), "text", "contato"), Some((3, 31)));
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Spec {
        ids: Vec<u32>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        size: Option<u8>,
    }

    fn problems(src: &str) -> Vec<String> {
        let first = parse::<Spec>(src.as_bytes(), "f.yaml").unwrap_err();
        each_key_problem::<Spec>(src.as_bytes(), "f.yaml", &[("ids", "[]")], first)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn reports_each_keys_first_problem_at_its_place() {
        // `ids` broken too: its stand-in keeps it from masking the others.
        let got = problems("# c\nids: [x]\nname: [1]\n\nsize: 300\nnope: 1\n");
        let want = [
            "f.yaml:2:7: ids[0]: invalid type",
            "f.yaml:3:7: name: invalid type",
            "f.yaml:5:7: size: invalid value",
            "f.yaml:6:1: unknown field `nope`",
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for (got_one, want_one) in got.iter().zip(want) {
            assert!(got_one.starts_with(want_one), "{got:#?}");
        }
        // A required key that is missing is reported once, not per key.
        let got = problems("name: [1]\nsize: 300\n");
        assert_eq!(got.len(), 2, "{got:#?}");
    }

    #[test]
    fn other_shapes_get_the_first_problem_alone() {
        for src in [
            "{ids: [x], size: 300}\n",
            "---\nids: [x]\nsize: 300\n",
            "ids: [x]\nsize: 300\n  bad: indentation\n",
            "ids: [x,\n1]\nsize: 300\n",
            // An alias whose anchor is under another key.
            "ids: &i [1]\nname: *i\nsize: 300\n",
            // A lone `\r` is a line break to YAML.
            "ids: [1] # a\r# b\nname: [1]\nsize: 300\n",
        ] {
            assert_eq!(problems(src).len(), 1, "{src:?}: {:#?}", problems(src));
        }
    }
}
