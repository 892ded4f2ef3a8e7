//! Templates and expressions as written in YAML: syntax-checked while read,
//! with the variables they use, so a typo is caught at load.

use std::cell::Cell;
use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer};

use super::values::CheckedStr;
use crate::config::check::{self, Scan};

/// Names a message template may read: the request's fields, plus the globals
/// that [`crate::config::compile`] registers. Anything else is a typo caught at load.
pub const CONTEXT_NAMES: &[&str] = &["id", "clientId", "contact", "data", "enrich"];
/// Names an upstream-call template may read, beyond the request's.
pub const CALL_NAMES: &[&str] = &["enrich", "secrets"];

pub const GLOBAL_NAMES: &[&str] = &[
    "DATE_FORMAT",
    "DATETIME_FORMAT",
    "TIME_FORMAT",
    "TIMEZONE",
    "now",
    "range",
    "dict",
    "namespace",
    "cycler",
    "joiner",
];
pub(super) fn check_vars(
    field: &str,
    vars: &[String],
    known: &BTreeSet<&str>,
) -> Result<(), String> {
    let Some(unknown) = vars.iter().find(|v| !known.contains(v.as_str())) else {
        return Ok(());
    };
    let readable: Vec<&str> = known
        .iter()
        .filter(|k| !GLOBAL_NAMES.contains(k))
        .copied()
        .collect();
    // Globals (`now`, `range`…) are worth suggesting, not worth listing.
    let likely = if unknown == "secrets" {
        // It exists, where it is safe: a secret printed in a message would
        // go to the contact.
        "; `secrets` can be read only by the `enrich:` calls (their url, query, headers and body), never by a message".to_owned()
    } else {
        crate::config::error::did_you_mean(unknown, known.iter().copied())
    };
    UNKNOWN_READ.with(|c| c.replace(Some((field.to_owned(), unknown.clone()))));
    Err(format!(
        "{}; a template can read {}{likely}",
        unknown_read_message(field, unknown),
        readable.join(", ")
    ))
}

/// The message [`check_vars`] gives for `field` reading `name`: what the
/// loader matches before it trusts [`take_unknown_read`].
pub fn unknown_read_message(field: &str, name: &str) -> String {
    format!("`{field}` reads `{name}`, which does not exist")
}

thread_local! {
    /// Line and column *inside* the template string of the last syntax error
    /// raised by [`TemplateSrc`]. serde's error type can only carry a message,
    /// and the loader needs both numbers to point into the YAML file.
    static TEMPLATE_ERROR_POS: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
}

/// Takes the position left by the last template syntax error, if any.
pub fn take_template_error_pos() -> Option<(usize, usize)> {
    TEMPLATE_ERROR_POS.with(|c| c.take())
}

thread_local! {
    /// The field and the name of the last unknown variable [`check_vars`]
    /// refused. The check runs on a whole message or call, so serde_yaml
    /// points at its first key; the loader finds the name in the field's
    /// text to point at the typo itself.
    static UNKNOWN_READ: std::cell::RefCell<Option<(String, String)>> = const { std::cell::RefCell::new(None) };
}

/// Takes the field and name left by the last unknown variable, if any.
pub fn take_unknown_read() -> Option<(String, String)> {
    UNKNOWN_READ.with(|c| c.take())
}

/// A minijinja template as written in YAML, syntax-checked on deserialization.
#[derive(Debug, Clone)]
pub struct TemplateSrc {
    pub source: String,
    /// Top-level variables the template reads.
    vars: Vec<String>,
    /// Dotted paths read below the top level (`enrich.customer`).
    nested: Vec<String>,
    /// Filters, tests, functions and `secrets`/`enrich` reads, with their
    /// positions, for [`crate::config::check`].
    pub scan: Box<Scan>,
}

impl TemplateSrc {
    /// The calls this template reads: `enrich.<name>`.
    pub fn enrich_reads(&self) -> impl Iterator<Item = String> + '_ {
        self.nested
            .iter()
            .filter_map(|p| p.strip_prefix("enrich."))
            .map(|rest| rest.split('.').next().unwrap_or(rest).to_owned())
    }

    /// Top-level variables the template reads.
    pub fn vars(&self) -> &[String] {
        &self.vars
    }

    /// Text without any `{{`, `{%` or `{#` needs no rendering at all.
    pub fn is_literal(&self) -> bool {
        !(self.source.contains("{{") || self.source.contains("{%") || self.source.contains("{#"))
    }
}

impl TemplateSrc {
    pub fn parse(source: &str) -> Result<Self, String> {
        let env = minijinja::Environment::empty();
        match env.template_from_str(source) {
            Ok(t) => Ok(TemplateSrc {
                vars: t.undeclared_variables(false).into_iter().collect(),
                nested: t.undeclared_variables(true).into_iter().collect(),
                scan: Box::new(check::scan_template(source)),
                source: source.to_owned(),
            }),
            Err(e) => Err(syntax_error(source, &e)),
        }
    }
}

impl<'de> Deserialize<'de> for TemplateSrc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CheckedStr(
            "a string (text or a minijinja template)",
            TemplateSrc::parse,
        ))
    }
}

/// A minijinja expression (`when`, `for_each`), syntax-checked on deserialization.
#[derive(Debug, Clone)]
pub struct ExprSrc {
    pub source: String,
    vars: Vec<String>,
    pub scan: Box<Scan>,
}

impl ExprSrc {
    /// Top-level variables the expression reads.
    pub fn vars(&self) -> &[String] {
        &self.vars
    }

    pub fn parse(source: &str) -> Result<Self, String> {
        let env = minijinja::Environment::empty();
        match env.compile_expression(source) {
            Ok(e) => Ok(ExprSrc {
                vars: e.undeclared_variables(false).into_iter().collect(),
                scan: Box::new(check::scan_expr(source)),
                source: source.to_owned(),
            }),
            Err(e) => Err(syntax_error(source, &e)),
        }
    }
}

impl<'de> Deserialize<'de> for ExprSrc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CheckedStr(
            "an expression, e.g. `data.boletos | length > 0`",
            ExprSrc::parse,
        ))
    }
}

fn syntax_error(source: &str, e: &minijinja::Error) -> String {
    let detail = e.detail().unwrap_or("invalid syntax");
    // `Pedido {#123}`: minijinja reports the end of the text; the mistake
    // is the `{#` that started the comment.
    if detail.contains("end of comment") {
        if let Some(start) = source.rfind("{#") {
            let before = &source[..start];
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            TEMPLATE_ERROR_POS.with(|c| c.set(Some((line, col))));
            return "`{#` starts a comment that never ends (`#}`), so everything after it is hidden; to print `{#`, write `{{ \"{#\" }}` or put the text inside `{% raw %}…{% endraw %}`".into();
        }
    }
    let line = e.line().unwrap_or(1);
    // Something is missing at the end (`{{ x`): minijinja points at the last
    // token; the fault is where the text stops.
    let end_of_input = detail.starts_with("unexpected end of input");
    let (line, range) = match e.range() {
        _ if end_of_input => {
            let end = source.trim_end().len();
            (source[..end].matches('\n').count() + 1, Some(end..end))
        }
        r => (line, r),
    };
    let col = range
        .map(|r| {
            let start = r.start.min(source.len());
            let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
            source[line_start..start].chars().count() + 1
        })
        .unwrap_or(1);
    TEMPLATE_ERROR_POS.with(|c| c.set(Some((line, col))));
    let hint = match detail {
        d if end_of_input && d.ends_with("expected end of variable block") => {
            "; a `{{` needs its closing `}}`"
        }
        d if end_of_input && d.ends_with("expected end of block") => {
            "; a `{% if %}` needs its `{% endif %}`, a `{% for %}` its `{% endfor %}`"
        }
        _ => "",
    };
    format!("template syntax error: {detail}{hint}")
}
