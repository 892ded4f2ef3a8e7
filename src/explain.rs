//! How a template that failed on one request is told to the operator, for
//! the messages ([`crate::render`]) and the upstream calls
//! ([`crate::enrich`]) alike: what is missing or wrong, in the template's
//! own words and never with the request's values (they are personal data,
//! and the text reaches the log, the answer and `/admin/status`); then
//! where, at the file's line and column once [`Place::locate`] has found it.

use std::fmt;

use crate::config::yaml::Positions;

/// The template's own text at a failure (`data.valor | brl`), and how many
/// times the same text comes before it in the template (0 for the first):
/// `{{ data.v_total }} {{ data.v }}` failing at `data.v` is its second.
pub type Excerpt = (String, usize);

/// What failed, and the template's own text at the failure, if minijinja
/// gave a range within `source` (the template's text).
///
/// `data.pedido is missing from the request`; `` `data.valor | brl`: brl:
/// expected a number, got text … ``.
pub fn describe(e: &minijinja::Error, source: Option<&str>) -> (String, Option<Excerpt>) {
    let span = source
        .zip(e.range())
        .and_then(|(s, r)| enclosing(s, r))
        .map(str::trim)
        .filter(|s| !s.is_empty() && !s.contains('\n'));
    // `span` is a slice of `source`: what comes before it is counted.
    let excerpt = source.zip(span).map(|(source, span)| {
        let at = span.as_ptr() as usize - source.as_ptr() as usize;
        (span.to_owned(), source[..at].matches(span).count())
    });
    let mut detail = match (e.kind(), e.detail()) {
        (minijinja::ErrorKind::UndefinedError, detail) => missing(detail),
        (_, Some(detail)) if detail.starts_with("the value is null") => match span {
            Some(span) if is_path(span) => {
                format!("{span} is null{}: {detail}", whence(span, "in"))
            }
            Some(span) => format!("`{span}` is null: {detail}"),
            None => detail.to_owned(),
        },
        // Where in the template (its own text, never the request's): a
        // message with three filters says which one failed.
        (_, Some(detail)) => match span {
            Some(span) if !detail.contains(span) => format!("`{span}`: {detail}"),
            _ => detail.to_owned(),
        },
        (kind, None) => kind.to_string(),
    };
    // A cause (jiff's, for a date) quotes the input it could not read, which
    // is the request's: its quoted parts are emptied, and it is cut short.
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        detail.push_str(": ");
        detail.push_str(&crate::request::shorten_values(
            &crate::config::error::redact_quoted(&c.to_string()),
        ));
        cause = c.source();
    }
    (detail, excerpt)
}

/// Where a failing template is in its integration file. Until
/// [`Place::locate`] finds it there, only the line within the template, as
/// minijinja counts it, is known.
#[derive(Debug, Clone, Default)]
pub struct Place {
    /// The template's key in the file (`messages[1].template.body[0]`,
    /// `enrich.cliente.url`).
    key: String,
    /// The length of the enclosing key (`messages[1]`, `enrich.cliente`)
    /// within `key`: where the file has no value at `key` itself (a message
    /// in a short form, a header name written in another case).
    enclosing: usize,
    /// The length of the key the place was made with: where [`Place::nest`]
    /// puts the parts of a call's body around it.
    made: usize,
    /// The failing expression, as the template writes it.
    excerpt: Option<Excerpt>,
    template_line: Option<usize>,
    /// "template", or "expression" for `when` and `for_each`.
    what: &'static str,
    /// Line and column in the file.
    at: Option<(usize, usize)>,
}

impl Place {
    pub fn new(
        enclosing: &str,
        rest: &str,
        excerpt: Option<Excerpt>,
        template_line: Option<usize>,
        what: &'static str,
    ) -> Place {
        let key = format!("{enclosing}.{rest}");
        Place {
            made: key.len(),
            key,
            enclosing: enclosing.len(),
            excerpt,
            template_line,
            what,
            at: None,
        }
    }

    /// The template's key in the file.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Line and column in the file, once located.
    pub fn at(&self) -> Option<(usize, usize)> {
        self.at
    }

    /// Moves the place into a part of a call's body (`enrich.c.body` →
    /// `enrich.c.body.cliente`), as the error comes up from that part: each
    /// level's `segment` goes right after the key the place was made with,
    /// before the deeper levels' (which came up first).
    pub fn nest(&mut self, segment: &str) {
        self.key.insert_str(self.made, segment);
    }

    /// Finds the place in the integration file's `positions`, made from
    /// the file as loaded (`Integration::positions`, on its first failure).
    /// Done only when a request fails, never on the way to an answer.
    pub fn locate(&mut self, positions: &Positions) {
        let excerpt = self.excerpt.as_ref().map(|(e, nth)| (e.as_str(), *nth));
        let enclosing = &self.key[..self.enclosing];
        self.at = positions
            .find(&self.key, excerpt)
            .or_else(|| positions.find_under(enclosing, excerpt?))
            .or_else(|| positions.find(enclosing, None));
    }
}

/// `message` without the place a [`Place`] wrote at its end (`, line 8,
/// column 31` or `, line 1 of the template`): two failures of the same
/// template are compared by this, so that a line moved by an edit above
/// it, or an entry journaled before failures were located, is not a change.
pub fn without_place(message: &str) -> std::borrow::Cow<'_, str> {
    let place = message.strip_suffix(')').and_then(|inner| {
        let at = inner.rfind(", line ")?;
        let rest = &inner[at + ", line ".len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let tail = &rest[digits..];
        let column = tail
            .strip_prefix(", column ")
            .is_some_and(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()));
        let within = matches!(tail, " of the template" | " of the expression");
        (digits > 0 && (column || within)).then_some(at)
    });
    match place {
        Some(at) => format!("{})", &message[..at]).into(),
        None => message.into(),
    }
}

/// `, line 8, column 31` once located, else `, line 1 of the template`.
impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.at, self.template_line) {
            (Some((line, column)), _) => write!(f, ", line {line}, column {column}"),
            (None, Some(line)) => write!(f, ", line {line} of the {}", self.what),
            (None, None) => Ok(()),
        }
    }
}

/// The whole `{{ … }}` around `range` (a filter's error covers only the
/// filter's name: `data.vencimento | dateformat` says which value), or the
/// range itself outside one.
fn enclosing(source: &str, range: std::ops::Range<usize>) -> Option<&str> {
    let own = source.get(range.clone())?;
    let before = source.get(..range.start)?;
    let after = source.get(range.end..)?;
    let (Some(open), Some(close)) = (before.rfind("{{"), after.find("}}")) else {
        return Some(own);
    };
    // Not inside one if a `}}` closes it before the range.
    if before[open..].contains("}}") {
        return Some(own);
    }
    source.get(open + 2..range.end + close)
}

/// minijinja names what it could not find (`` `data.pedido` is undefined ``);
/// the operator is told where that should have come from.
fn missing(detail: Option<&str>) -> String {
    let name = detail
        .and_then(|d| d.strip_prefix('`'))
        .and_then(|d| d.split_once('`'))
        .map(|(name, _)| name);
    let Some(name) = name else {
        return "a value the template reads is missing".into();
    };
    format!("{name} is missing{}", whence(name, "from"))
}

/// ` from the request`, ` from the answer of the call `cliente``, or
/// nothing (a `for_each` item, a `{% set %}` name), by the path's root.
fn whence(name: &str, prep: &str) -> String {
    let root = name.split(['.', '[']).next().unwrap_or(name);
    match root {
        "data" | "contact" | "id" | "clientId" => format!(" {prep} the request"),
        "enrich" => {
            let call = name["enrich".len()..]
                .trim_start_matches('.')
                .split(['.', '['])
                .next()
                .unwrap_or("");
            format!(" {prep} the answer of the call `{call}`")
        }
        _ => String::new(),
    }
}

/// A plain `data.x[0].y` path, as opposed to an expression.
fn is_path(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '\'' | '"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_is_taken_off_the_end_only() {
        for (message, want) in [
            (
                "x is missing (messages[1].text, line 8, column 31)",
                "x is missing (messages[1].text)",
            ),
            (
                "x is missing (messages[1].text, line 1 of the template)",
                "x is missing (messages[1].text)",
            ),
            (
                "`a` (messages[0].when, line 2 of the expression)",
                "`a` (messages[0].when)",
            ),
            ("x (messages[1].text)", "x (messages[1].text)"),
            ("x (a, line 8, column )", "x (a, line 8, column )"),
            ("x (a, line , column 3)", "x (a, line , column 3)"),
            ("the value is 3, line 4", "the value is 3, line 4"),
            ("", ""),
        ] {
            assert_eq!(without_place(message), want, "{message}");
        }
    }

    #[test]
    fn the_excerpt_counts_the_same_text_before_it() {
        let mut env = minijinja::Environment::new();
        env.add_filter(
            "boom",
            |_: minijinja::Value| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    "boom",
                ))
            },
        );
        let source =
            "{{ data.v_total }}{% if false %}{{ data.v | boom }}{% endif %} {{ data.v | boom }}";
        let e = env
            .render_str(
                source,
                minijinja::context! { data => minijinja::context! { v => 1, v_total => 2 } },
            )
            .unwrap_err();
        let (detail, excerpt) = describe(&e, Some(source));
        assert_eq!(detail, "`data.v | boom`: boom");
        let (text, nth) = excerpt.expect("a range");
        assert_eq!((text.as_str(), nth), ("data.v | boom", 1));
        assert_eq!(
            source.match_indices(&text).nth(nth).map(|(i, _)| i),
            source.rfind("data.v | boom")
        );
    }
}
