//! A tenant's WhatsApp template catalogue, `integrations/<tenant>/templates.json`:
//! the approved templates as the WhatsApp Business Management API lists them
//! (`GET /<WABA_ID>/message_templates`), read as downloaded. With it recado
//! knows each template's variables and buttons, so a message that would
//! reach WhatsApp with the wrong number of values is refused at load, and the
//! text the contact reads can be shown and measured. Inert data.
//!
//! Accepted shapes, all of the API's own making:
//! - one page, `{"data": [template, …], "paging": {…}}`;
//! - several pages, `[{"data": […]}, {"data": […]}]` (each page's answer
//!   pasted into one array);
//! - a bare array of templates, `[template, …]` (what providers export).

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use super::error::{ConfigError, FieldPath};
use super::spec::{TemplateContent, TemplateSrc};

/// The catalogue's file name inside a tenant folder.
pub const FILE: &str = "templates.json";

/// The template languages Meta supports, as codes in the shape its API uses
/// (`pt_BR`, never `pt-BR`). Source: Meta's "Supported languages" reference
/// for message templates
/// (developers.facebook.com/docs/whatsapp/business-management-api/message-templates/supported-languages),
/// the long-standing list plus the regional codes added since. A code the
/// tenant's catalogue lists is accepted too, so a language Meta adds later
/// works as soon as the catalogue is downloaded again.
pub const LANGUAGES: &[&str] = &[
    "af", "sq", "ar", "ar_AE", "ar_EG", "ar_LB", "ar_MA", "ar_QA", "az", "be_BY", "bn", "bn_IN",
    "bg", "ca", "zh_CN", "zh_HK", "zh_TW", "hr", "cs", "da", "prs_AF", "nl", "nl_BE", "en",
    "en_AE", "en_AU", "en_CA", "en_GB", "en_GH", "en_IE", "en_IN", "en_JM", "en_MY", "en_NZ",
    "en_NG", "en_PK", "en_SG", "en_UG", "en_US", "en_ZA", "et", "fil", "fi", "fr", "fr_BE",
    "fr_CA", "fr_CH", "fr_CI", "fr_MA", "ka", "de", "de_AT", "de_CH", "el", "gu", "ha", "he", "hi",
    "hu", "id", "ga", "it", "ja", "kn", "kk", "rw_RW", "ko", "ky_KG", "lo", "lv", "lt", "mk", "ms",
    "ml", "mr", "nb", "ps_AF", "fa", "pl", "pt_BR", "pt_PT", "pa", "ro", "ru", "sr", "si_LK", "sk",
    "sl", "es", "es_AR", "es_CL", "es_CO", "es_CR", "es_DO", "es_EC", "es_ES", "es_HN", "es_MX",
    "es_PA", "es_PE", "es_UY", "sw", "sv", "ta", "te", "th", "tr", "uk", "ur", "uz", "vi", "zu",
];

/// Characters that show nothing: a parameter made only of these (and
/// spaces) reaches the contact as a blank.
pub const INVISIBLE: &[char] = &[
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{2060}', '\u{FEFF}', '\u{00AD}',
    '\u{180E}', '\u{034F}',
];

/// The approved templates of one tenant, by name and language.
#[derive(Debug, Default)]
pub struct Catalogue {
    templates: Vec<Arc<Template>>,
    index: HashMap<(String, String), usize>,
}

/// `{{1}}` or `{{nome}}`: the `parameter_format` of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterFormat {
    Positional,
    Named,
}

/// One template in one language.
#[derive(Debug)]
pub struct Template {
    pub name: String,
    pub language: String,
    /// `APPROVED`, `PAUSED`, `PENDING`, `REJECTED`, `DISABLED`…; `None` when
    /// the export has no status (then it is not checked).
    pub status: Option<String>,
    pub category: Option<String>,
    pub parameter_format: ParameterFormat,
    pub header: Option<Header>,
    pub body: Option<Text>,
    pub footer: Option<String>,
    pub buttons: Vec<TemplateButton>,
    /// A component the platform's contract has no way to fill (a carousel, a
    /// location header…), named for the error message.
    pub unsupported: Option<String>,
}

#[derive(Debug)]
pub enum Header {
    Text(Text),
    /// `IMAGE`, `VIDEO` or `DOCUMENT`: sent with the media's URL as the
    /// header's value.
    Media(String),
}

/// A component's text with its variables found.
#[derive(Debug)]
pub struct Text {
    pub text: String,
    /// The variables in the order their values are given: `1`, `2`… for
    /// positional templates, the names in order of first appearance for
    /// named ones.
    pub vars: Vec<String>,
    pieces: Vec<Piece>,
    /// Characters of the text outside the variables.
    fixed_chars: usize,
}

#[derive(Debug)]
enum Piece {
    Literal(String),
    Var(usize),
}

#[derive(Debug)]
pub struct TemplateButton {
    /// `URL`, `QUICK_REPLY`, `PHONE_NUMBER`, `COPY_CODE`, `OTP`, `FLOW`…
    pub kind: String,
    pub text: String,
    /// A URL button's link, as approved (`https://x.com/{{1}}`).
    pub url: Option<String>,
    pub takes: ButtonValue,
}

/// Whether a button is sent with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonValue {
    /// A link ending in a variable, a coupon code, a one-time password.
    Required,
    /// Quick replies, phone numbers, links without a variable.
    None,
    /// Kinds whose parameters the platform's contract cannot describe
    /// (`FLOW`, `CATALOG`…): either is let through.
    Either,
}

/// The values of one message, as the contract numbers them.
#[derive(Debug, Default, Clone)]
pub struct Params<'a> {
    pub header: Option<&'a str>,
    pub body: Vec<&'a str>,
    pub buttons: Vec<Option<&'a str>>,
}

/// A template as the contact reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filled {
    pub header: Option<String>,
    pub body: String,
    pub footer: Option<String>,
    /// Each button's label, with the link it opens for URL buttons.
    pub buttons: Vec<String>,
}

impl Catalogue {
    /// Parses `templates.json`; `rel` names it in errors
    /// (`demo/templates.json:12:7: …`).
    pub fn parse(bytes: &[u8], rel: &str) -> Result<Catalogue, ConfigError> {
        let at = |e: serde_json::Error| {
            let msg = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let msg = msg.strip_suffix(&suffix).unwrap_or(&msg).to_owned();
            ConfigError::at(
                rel,
                (e.line().max(1), e.column().max(1)),
                format!("{msg}; expected the API's answer `{{\"data\": [...]}}`, an array of those, or an array of templates"),
            )
        };
        // The shape decides the type, then the typed parse reports any fault
        // at its line and column.
        let shape: serde_json::Value = serde_json::from_slice(bytes).map_err(at)?;
        // serde places a missing field at the end of its object: name the
        // template it is missing from.
        let at = |e: serde_json::Error| {
            let mut err = at(e);
            if let Some(field) = err
                .message
                .strip_prefix("missing field `")
                .and_then(|r| r.split_once('`'))
                .map(|(f, _)| f.to_owned())
            {
                if let Some(which) = lacking(&shape, &field) {
                    err.message = format!("{which}: {}", err.message);
                }
            }
            err
        };
        let raw: Vec<RawTemplate> = match &shape {
            serde_json::Value::Object(_) => serde_json::from_slice::<Page>(bytes).map_err(at)?.data,
            serde_json::Value::Array(items)
                if !items.is_empty()
                    && items
                        .iter()
                        .all(|i| i.get("data").is_some() && i.get("name").is_none()) =>
            {
                serde_json::from_slice::<Vec<Page>>(bytes)
                    .map_err(at)?
                    .into_iter()
                    .flat_map(|p| p.data)
                    .collect()
            }
            serde_json::Value::Array(_) => serde_json::from_slice(bytes).map_err(at)?,
            _ => {
                return Err(ConfigError::at(
                    rel,
                    (1, 1),
                    "expected the API's answer `{\"data\": [...]}`, an array of those, or an array of templates",
                ))
            }
        };
        let mut catalogue = Catalogue::default();
        for t in raw {
            let t = Template::from_raw(t);
            let key = (t.name.clone(), t.language.clone());
            if catalogue.index.contains_key(&key) {
                return Err(ConfigError::whole_file(
                    rel,
                    format!(
                        "template `{}` in `{}` is listed twice; download the catalogue again or remove the copy",
                        t.name, t.language
                    ),
                ));
            }
            catalogue.index.insert(key, catalogue.templates.len());
            catalogue.templates.push(Arc::new(t));
        }
        Ok(catalogue)
    }

    pub fn get(&self, name: &str, language: &str) -> Option<&Arc<Template>> {
        self.index
            .get(&(name.to_owned(), language.to_owned()))
            .map(|&i| &self.templates[i])
    }

    pub fn templates(&self) -> impl Iterator<Item = &Arc<Template>> {
        self.templates.iter()
    }

    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// Whether any template of the catalogue is in `language`.
    pub fn has_language(&self, language: &str) -> bool {
        self.templates.iter().any(|t| t.language == language)
    }

    /// Checks a `template:` message against the catalogue and returns the
    /// template it sends. `Ok(None)`: the name or language is a template
    /// (`{{ }}`), known only per request, so nothing is checked. An error
    /// names the field (inside `template:`) and says what to write.
    pub fn check(
        &self,
        content: &TemplateContent,
    ) -> Result<Option<Arc<Template>>, (FieldPath, String)> {
        let here = |key: &str| FieldPath::key("template").then(key);
        if !content.name.is_literal() || !content.language.is_literal() {
            return Ok(None);
        }
        let name = content.name.source.trim();
        let language = content.language.source.trim();
        let Some(t) = self.get(name, language) else {
            let versions: Vec<&str> = self
                .templates
                .iter()
                .filter(|t| t.name == name)
                .map(|t| t.language.as_str())
                .collect();
            if versions.is_empty() {
                let mut names: Vec<&str> = self.templates.iter().map(|t| t.name.as_str()).collect();
                names.dedup();
                let hint = names
                    .iter()
                    .map(|n| (strsim::levenshtein(n, name), *n))
                    .filter(|(d, n)| *d <= (n.chars().count() / 3).max(2))
                    .min()
                    .map(|(_, n)| format!("; did you mean `{n}`?"))
                    .unwrap_or_else(|| {
                        format!("; it has {}", list(names.iter().map(|n| format!("`{n}`"))))
                    });
                return Err((
                    here("name"),
                    format!("template `{name}` is not in the catalogue ({FILE}){hint}"),
                ));
            }
            let fixed = language.replace('-', "_");
            let hint = if fixed != language && versions.contains(&fixed.as_str()) {
                format!(" (WhatsApp writes languages with `_`: `{fixed}`)")
            } else {
                String::new()
            };
            return Err((
                here("language"),
                format!(
                    "template `{name}` has no `{language}` version in the catalogue; it has {}{hint}",
                    list(versions.iter().map(|l| format!("`{l}`")))
                ),
            ));
        };
        let what = format!("template `{name}` ({language})");
        if let Some(status) = t.status.as_deref().filter(|s| *s != "APPROVED") {
            let code = match status {
                "PAUSED" => " (error #132015)",
                "DISABLED" => " (error #132016)",
                _ => " (error #132001)",
            };
            return Err((
                here("name"),
                format!("{what} is {status} in the catalogue: WhatsApp sends only APPROVED templates and would refuse it{code}; use an approved template or wait for approval and download the catalogue again"),
            ));
        }
        if let Some(what_cannot) = &t.unsupported {
            return Err((
                here("name"),
                format!("{what} has {what_cannot}, which the platform's answer has no way to fill; choose another template"),
            ));
        }
        t.check_header(content, &what, &here)?;
        t.check_body(content, &what, &here)?;
        t.check_buttons(content, &what, &here)?;
        Ok(Some(t.clone()))
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    const SHOWN: usize = 8;
    if items.len() > SHOWN {
        format!(
            "{} and {} more",
            items[..SHOWN].join(", "),
            items.len() - SHOWN
        )
    } else {
        items.join(", ")
    }
}

type Here<'a> = dyn Fn(&str) -> FieldPath + 'a;

impl Template {
    fn check_header(
        &self,
        content: &TemplateContent,
        what: &str,
        here: &Here<'_>,
    ) -> Result<(), (FieldPath, String)> {
        let wants = match &self.header {
            Some(Header::Text(text)) if !text.vars.is_empty() => {
                Some(format!("a header with a variable ({:?})", text.text))
            }
            Some(Header::Media(kind)) => Some(format!(
                "a {kind} header, sent with the file's URL as its value"
            )),
            _ => None,
        };
        match (wants, &content.header) {
            (Some(wants), None) => Err((
                here("name"),
                format!("{what} has {wants}: add `header:` with its value"),
            )),
            (None, Some(_)) => {
                let has = match &self.header {
                    Some(Header::Text(text)) => {
                        format!("its header ({:?}) has no variable", text.text)
                    }
                    _ => "it has no header".to_owned(),
                };
                Err((
                    here("header"),
                    format!("{what} takes no header value: {has}; remove `header`"),
                ))
            }
            _ => Ok(()),
        }
    }

    fn check_body(
        &self,
        content: &TemplateContent,
        what: &str,
        here: &Here<'_>,
    ) -> Result<(), (FieldPath, String)> {
        let vars: &[String] = self.body.as_ref().map_or(&[], |b| &b.vars);
        let text = self.body.as_ref().map_or("", |b| b.text.as_str());
        // A block mapping's own position is its first key's colon: point at
        // the first value instead.
        let at = match &content.body {
            BodyValues::List(v) if v.is_empty() => here("name"),
            BodyValues::Named(v) if !v.is_empty() => here("body").then(&v[0].0),
            _ => here("body"),
        };
        match &content.body {
            BodyValues::List(values) if values.len() != vars.len() => {
                let fix = match vars.len() {
                    0 => "remove `body`".to_owned(),
                    1 => "list one value under `body:`".to_owned(),
                    n => format!("list {n} values under `body:`, in order"),
                };
                Err((
                    at,
                    format!(
                        "{what} has {} in its body, found {} value{}; its body reads {text:?}; {fix}",
                        plural(vars.len(), "variable"),
                        values.len(),
                        if values.len() == 1 { "" } else { "s" },
                    ),
                ))
            }
            BodyValues::List(_) => Ok(()),
            BodyValues::Named(_) if self.parameter_format != ParameterFormat::Named => Err((
                at,
                format!("{what} has positional variables ({{{{1}}}}, {{{{2}}}}…), not names; list the body's values in order"),
            )),
            BodyValues::Named(values) => {
                if let Some((extra, _)) = values.iter().find(|(k, _)| !vars.contains(k)) {
                    return Err((
                        here("body").then(extra),
                        format!(
                            "{what} has no body variable `{extra}`; its variables are {}",
                            list(vars.iter().map(|v| format!("`{v}`")))
                        ),
                    ));
                }
                let missing: Vec<&String> = vars
                    .iter()
                    .filter(|v| !values.iter().any(|(k, _)| k == *v))
                    .collect();
                if !missing.is_empty() {
                    return Err((
                        at,
                        format!(
                            "{what} needs a value for {} in `body:`; its body reads {text:?}",
                            list(missing.iter().map(|v| format!("`{v}`")))
                        ),
                    ));
                }
                Ok(())
            }
        }
    }

    fn check_buttons(
        &self,
        content: &TemplateContent,
        what: &str,
        here: &Here<'_>,
    ) -> Result<(), (FieldPath, String)> {
        if content.buttons.len() != self.buttons.len() {
            let at = if content.buttons.is_empty() {
                here("name")
            } else {
                here("buttons")
            };
            let described = list(self.buttons.iter().map(TemplateButton::describe));
            let has = match self.buttons.len() {
                0 => "no buttons; remove `buttons`".to_owned(),
                n => format!(
                    "{} ({described}), found {}; list one entry per button, in order, `~` for a button that takes no value",
                    plural(n, "button"),
                    content.buttons.len()
                ),
            };
            return Err((at, format!("{what} has {has}")));
        }
        for (i, (button, value)) in self.buttons.iter().zip(&content.buttons).enumerate() {
            let at = here("buttons").at(i);
            match (button.takes, value) {
                (ButtonValue::Required, None) => {
                    return Err((
                        at,
                        format!(
                            "button {} of {what} is {}: it needs a value, not `~`",
                            i + 1,
                            button.describe()
                        ),
                    ))
                }
                (ButtonValue::Required, Some(v)) if v.source.trim().is_empty() => {
                    return Err((
                        at,
                        format!(
                            "button {} of {what} is {}: its value is empty, which WhatsApp refuses; give the value (e.g. `{{{{ data.codigo }}}}`)",
                            i + 1,
                            button.describe()
                        ),
                    ))
                }
                (ButtonValue::Required, Some(v))
                    if button
                        .url_parts()
                        .is_some_and(|(start, _)| repeats_start(&v.source, start)) =>
                {
                    let start = button.url_parts().map_or("", |(s, _)| s);
                    return Err((
                        at,
                        format!(
                            "button {} of {what} is {}: its value replaces only the variable, and the link already starts with `{start}`; give only the part that goes in its place (e.g. `{{{{ data.rastreio }}}}`), not the whole link",
                            i + 1,
                            button.describe()
                        ),
                    ))
                }
                (ButtonValue::None, Some(_)) => {
                    return Err((
                        at,
                        format!(
                            "button {} of {what} is {}: it takes no value; write `~`",
                            i + 1,
                            button.describe()
                        ),
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The template as the contact reads it, with `params` in; a missing
    /// value leaves its variable (`{{2}}`) in sight.
    pub fn fill(&self, params: &Params<'_>) -> Filled {
        let header = self.header.as_ref().map(|h| match h {
            Header::Text(t) => t.fill(params.header.into_iter().collect::<Vec<_>>().as_slice()),
            Header::Media(kind) => format!("[{kind}] {}", params.header.unwrap_or("(no URL)")),
        });
        let body = self
            .body
            .as_ref()
            .map_or_else(String::new, |b| b.fill(&params.body));
        let buttons = self
            .buttons
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let value = params.buttons.get(i).copied().flatten();
                match (&b.url, b.kind.as_str()) {
                    (Some(url), _) => format!("[{}] → {}", b.label(), fill_url(url, value)),
                    (None, "COPY_CODE" | "OTP") => {
                        format!("[{}] {}", b.label(), value.unwrap_or("{{1}}"))
                    }
                    _ => format!("[{}]", b.label()),
                }
            })
            .collect();
        Filled {
            header,
            body,
            footer: self.footer.clone(),
            buttons,
        }
    }

    fn from_raw(raw: RawTemplate) -> Template {
        let parameter_format = match raw.parameter_format.as_deref() {
            Some(f) if f.eq_ignore_ascii_case("NAMED") => ParameterFormat::Named,
            _ => ParameterFormat::Positional,
        };
        let mut t = Template {
            name: raw.name,
            language: raw.language,
            status: raw.status,
            category: raw.category,
            parameter_format,
            header: None,
            body: None,
            footer: None,
            buttons: Vec::new(),
            unsupported: None,
        };
        for c in raw.components {
            match c.kind.to_ascii_uppercase().as_str() {
                "HEADER" => {
                    let format = c
                        .format
                        .unwrap_or_else(|| "TEXT".into())
                        .to_ascii_uppercase();
                    match format.as_str() {
                        "TEXT" => {
                            t.header = Some(Header::Text(Text::parse(
                                c.text.as_deref().unwrap_or(""),
                                parameter_format,
                            )))
                        }
                        "IMAGE" | "VIDEO" | "DOCUMENT" => t.header = Some(Header::Media(format)),
                        other => t.unsupported = Some(format!("a {other} header")),
                    }
                }
                "BODY" => {
                    t.body = Some(Text::parse(
                        c.text.as_deref().unwrap_or(""),
                        parameter_format,
                    ))
                }
                "FOOTER" => t.footer = c.text,
                "BUTTONS" => {
                    t.buttons = c
                        .buttons
                        .into_iter()
                        .map(TemplateButton::from_raw)
                        .collect()
                }
                other => t.unsupported = Some(format!("a {other} component")),
            }
        }
        t
    }
}

fn fill_url(url: &str, value: Option<&str>) -> String {
    match value {
        Some(v) => url.replacen("{{1}}", v, 1),
        None => url.to_owned(),
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

impl TemplateButton {
    fn from_raw(raw: RawButton) -> TemplateButton {
        let kind = raw.kind.to_ascii_uppercase();
        let takes = match kind.as_str() {
            "URL" if raw.url.as_deref().is_some_and(|u| u.contains("{{")) => ButtonValue::Required,
            "COPY_CODE" | "OTP" => ButtonValue::Required,
            "URL" | "QUICK_REPLY" | "PHONE_NUMBER" | "VOICE_CALL" => ButtonValue::None,
            _ => ButtonValue::Either,
        };
        TemplateButton {
            text: raw.text.unwrap_or_default(),
            url: raw.url,
            kind,
            takes,
        }
    }

    /// `URL "Ver chamado" (https://x.com/{{1}})`, for error messages.
    pub fn describe(&self) -> String {
        let mut out = format!("a {} button", self.kind);
        if !self.text.is_empty() {
            out.push_str(&format!(" {:?}", self.text));
        }
        if let Some(url) = &self.url {
            out.push_str(&format!(" ({url})"));
        }
        out
    }

    /// The button's label, or its kind when the template gives none
    /// (a COPY_CODE button's label is WhatsApp's own).
    fn label(&self) -> &str {
        if self.text.is_empty() {
            &self.kind
        } else {
            &self.text
        }
    }

    /// A URL button's link split around its variable, to check what a value
    /// makes of it.
    pub fn url_parts(&self) -> Option<(&str, &str)> {
        let url = self.url.as_deref()?;
        let start = url.find("{{")?;
        let end = start + url[start..].find("}}")? + 2;
        Some((&url[..start], &url[end..]))
    }
}

/// Whether a URL button's value repeats the start its approved link
/// already fixes (`https://x.com/r/` + `https://x.com/r/7`): the contact
/// would get the start twice. A link passed as a parameter of another
/// (`https://l.example.com/r?u={{1}}`) is not that, and is let through.
pub fn repeats_start(value: &str, start: &str) -> bool {
    let v = value.trim_start();
    !start.is_empty()
        && v.len() >= start.len()
        && v.is_char_boundary(start.len())
        && v[..start.len()].eq_ignore_ascii_case(start)
}

/// The first template of `shape` (any of the catalogue's three shapes)
/// without `field`: by its name if it has one, else by its place.
fn lacking(shape: &serde_json::Value, field: &str) -> Option<String> {
    let items: Vec<&serde_json::Value> = match shape {
        serde_json::Value::Object(page) => page.get("data")?.as_array()?.iter().collect(),
        serde_json::Value::Array(items) => items
            .iter()
            .flat_map(|i| match i.get("data").and_then(|d| d.as_array()) {
                Some(data) => data.iter().collect::<Vec<_>>(),
                None => vec![i],
            })
            .collect(),
        _ => return None,
    };
    // Only a template's own fields: a component's or a button's missing
    // field would name whichever template lacks a key of that name.
    if !matches!(field, "name" | "language") {
        return None;
    }
    let (n, t) = items
        .iter()
        .enumerate()
        .find(|(_, t)| t.get(field).is_none())?;
    Some(match t.get("name").and_then(|n| n.as_str()) {
        Some(name) => format!("template `{name}`"),
        None => format!("template {} of the catalogue", n + 1),
    })
}

impl Text {
    fn parse(text: &str, format: ParameterFormat) -> Text {
        let mut vars: Vec<String> = Vec::new();
        let mut pieces = Vec::new();
        let mut fixed_chars = 0;
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            let Some(close) = rest[open..].find("}}").map(|c| open + c) else {
                break;
            };
            let inner = rest[open + 2..close].trim();
            let is_var = match format {
                ParameterFormat::Positional => {
                    !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit())
                }
                ParameterFormat::Named => {
                    inner
                        .bytes()
                        .next()
                        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
                        && inner
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                }
            };
            let literal = if is_var {
                &rest[..open]
            } else {
                &rest[..close + 2]
            };
            fixed_chars += literal.chars().count();
            pieces.push(Piece::Literal(literal.to_owned()));
            if is_var {
                let name = inner.trim_start_matches('0').to_owned();
                let name = if name.is_empty() {
                    inner.to_owned()
                } else {
                    name
                };
                if !vars.contains(&name) {
                    vars.push(name.clone());
                }
                pieces.push(Piece::Var(
                    vars.iter().position(|v| *v == name).unwrap_or(0),
                ));
            }
            rest = &rest[close + 2..];
        }
        fixed_chars += rest.chars().count();
        pieces.push(Piece::Literal(rest.to_owned()));
        // Positional values go to {{1}}, {{2}}… by number, whatever the
        // order the text mentions them in.
        if format == ParameterFormat::Positional {
            let order: Vec<String> = {
                let mut v = vars.clone();
                v.sort_by_key(|n| n.parse::<u64>().unwrap_or(u64::MAX));
                v
            };
            for p in &mut pieces {
                if let Piece::Var(i) = p {
                    *i = order.iter().position(|v| *v == vars[*i]).unwrap_or(*i);
                }
            }
            vars = order;
        }
        Text {
            text: text.to_owned(),
            vars,
            pieces,
            fixed_chars,
        }
    }

    /// The text with `values` in, by the variables' order.
    pub fn fill(&self, values: &[&str]) -> String {
        let mut out = String::with_capacity(self.text.len());
        for p in &self.pieces {
            match p {
                Piece::Literal(s) => out.push_str(s),
                Piece::Var(i) => match values.get(*i) {
                    Some(v) => out.push_str(v),
                    None => {
                        out.push_str("{{");
                        out.push_str(&self.vars[*i]);
                        out.push_str("}}");
                    }
                },
            }
        }
        out
    }

    /// How many characters [`fill`](Self::fill) would give, without building it.
    pub fn filled_chars<S: AsRef<str>>(&self, values: &[S]) -> usize {
        self.fixed_chars
            + self
                .pieces
                .iter()
                .map(|p| match p {
                    Piece::Var(i) => values.get(*i).map_or(0, |v| v.as_ref().chars().count()),
                    Piece::Literal(_) => 0,
                })
                .sum::<usize>()
    }
}

/// The body values of a `template:` message: in order, or by the template's
/// variable names (`parameter_format: NAMED` templates, with a catalogue).
#[derive(Debug, Clone)]
pub enum BodyValues {
    List(Vec<TemplateSrc>),
    Named(Vec<(String, TemplateSrc)>),
}

impl Default for BodyValues {
    fn default() -> Self {
        BodyValues::List(Vec::new())
    }
}

impl BodyValues {
    pub fn is_empty(&self) -> bool {
        match self {
            BodyValues::List(v) => v.is_empty(),
            BodyValues::Named(v) => v.is_empty(),
        }
    }

    /// Each value with its path under `template.body`.
    pub fn entries(&self) -> Vec<(FieldPath, &TemplateSrc)> {
        let at = FieldPath::key("template").then("body");
        match self {
            BodyValues::List(v) => v.iter().enumerate().map(|(i, s)| (at.at(i), s)).collect(),
            BodyValues::Named(v) => v.iter().map(|(k, s)| (at.then(k), s)).collect(),
        }
    }

    /// The values in the order the contract numbers them: as listed, or by
    /// `template`'s variables for named values.
    pub fn ordered(&self, template: Option<&Template>) -> Vec<(FieldPath, &TemplateSrc)> {
        let entries = self.entries();
        match (self, template.and_then(|t| t.body.as_ref())) {
            (BodyValues::Named(named), Some(body)) => body
                .vars
                .iter()
                .filter_map(|v| named.iter().position(|(k, _)| k == v))
                .map(|i| entries[i].clone())
                .collect(),
            _ => entries,
        }
    }
}

impl<'de> Deserialize<'de> for BodyValues {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = BodyValues;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of values, one per body variable, or a mapping from the template's variable names to values")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<TemplateSrc>()? {
                    out.push(v);
                }
                Ok(BodyValues::List(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(String, TemplateSrc)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, TemplateSrc>()? {
                    if out.iter().any(|(o, _)| *o == k) {
                        return Err(serde::de::Error::custom(format!("`{k}` is given twice")));
                    }
                    out.push((k, v));
                }
                Ok(BodyValues::Named(out))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(BodyValues::default())
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct Page {
    data: Vec<RawTemplate>,
}

#[derive(Deserialize)]
struct RawTemplate {
    name: String,
    language: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    parameter_format: Option<String>,
    #[serde(default)]
    components: Vec<RawComponent>,
}

#[derive(Deserialize)]
struct RawComponent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    buttons: Vec<RawButton>,
}

#[derive(Deserialize)]
struct RawButton {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a value that repeats the link's fixed start is refused; a link
    /// passed as a parameter of a redirect is fine.
    #[test]
    fn a_url_value_repeating_the_fixed_start() {
        let start = "https://x.example.com/r/";
        for (value, start, repeats) in [
            ("https://x.example.com/r/7", start, true),
            ("HTTPS://X.example.com/r/7", start, true),
            ("  https://x.example.com/r/{{ data.id }}", start, true),
            ("7", start, false),
            (
                "https://loja.example.com/p/1",
                "https://l.example.com/r?u=",
                false,
            ),
            ("https://x.example.com/r/7", "", false),
            ("é", "ab", false),
        ] {
            assert_eq!(repeats_start(value, start), repeats, "{value} / {start}");
        }
    }

    #[test]
    fn positional_and_named_variables() {
        let t = Text::parse("Olá {{2}}, e {{1}} e {{2}}", ParameterFormat::Positional);
        assert_eq!(t.vars, ["1", "2"]);
        assert_eq!(t.fill(&["a", "b"]), "Olá b, e a e b");
        assert_eq!(
            t.filled_chars(&["a", "b"]),
            "Olá b, e a e b".chars().count()
        );
        let n = Text::parse("{{nome}} deve {{valor}}", ParameterFormat::Named);
        assert_eq!(n.vars, ["nome", "valor"]);
        assert_eq!(n.fill(&["Ana"]), "Ana deve {{valor}}");
        let none = Text::parse("sem {{ variáveis", ParameterFormat::Positional);
        assert!(none.vars.is_empty());
    }

    #[test]
    fn the_three_shapes() {
        let t = r#"{"name": "a", "language": "pt_BR", "components": []}"#;
        for text in [
            format!(r#"{{"data": [{t}], "paging": {{}}}}"#),
            format!("[{t}]"),
            format!(r#"[{{"data": [{t}]}}, {{"data": []}}]"#),
        ] {
            let c = Catalogue::parse(text.as_bytes(), "x/templates.json").unwrap();
            assert!(c.get("a", "pt_BR").is_some(), "{text}");
        }
        let e = Catalogue::parse(b"{\"data\": [{\"name\": 1}]}", "x/templates.json").unwrap_err();
        assert_eq!((e.line, e.column), (Some(1), Some(20)), "{e}");
    }
}
