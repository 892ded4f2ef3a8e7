//! Stage 5, validate the output: the messages recado answers, typed so the
//! contract's shape holds by construction (indexes are numbered here, never
//! written by hand), plus the value rules the platform and WhatsApp enforce.

use serde::Serialize;

use crate::config::catalogue::{ButtonValue, Header, Params, Template, INVISIBLE, LANGUAGES};

/// WhatsApp's limit for a text message, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;

/// One item of the response array.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "UPPERCASE")]
pub enum Message {
    Text { value: String },
    File { value: String },
    Image { value: String },
    Audio { value: String },
    Template(TemplateMessage),
}

/// `messages` as the JSON array the platform reads, appended to `out`:
/// exactly the bytes `serde_json::to_writer(out, messages)` writes
/// (`tests::json_is_serdes`), with the fixed part of the four one-value
/// kinds written whole instead of through serde's tagged-enum machinery,
/// which costs more than the rest of encoding on the webhook's path.
pub fn write_json(messages: &[Message], out: &mut Vec<u8>) -> serde_json::Result<()> {
    out.push(b'[');
    for (i, message) in messages.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let (head, value): (&[u8], &str) = match message {
            Message::Text { value } => (br#"{"type":"TEXT","value":"#, value),
            Message::File { value } => (br#"{"type":"FILE","value":"#, value),
            Message::Image { value } => (br#"{"type":"IMAGE","value":"#, value),
            Message::Audio { value } => (br#"{"type":"AUDIO","value":"#, value),
            Message::Template(_) => {
                serde_json::to_writer(&mut *out, message)?;
                continue;
            }
        };
        out.extend_from_slice(head);
        write_str(out, value)?;
        out.push(b'}');
    }
    out.push(b']');
    Ok(())
}

/// `value` as serde_json writes a string. A message's text nearly never
/// holds a byte JSON escapes: such a text is copied whole after one check
/// the compiler vectorizes, where serde_json looks up every byte in a table.
fn write_str(out: &mut Vec<u8>, value: &str) -> serde_json::Result<()> {
    if needs_json_escape(value) {
        return serde_json::to_writer(&mut *out, value);
    }
    out.reserve(value.len() + 2);
    out.push(b'"');
    out.extend_from_slice(value.as_bytes());
    out.push(b'"');
    Ok(())
}

/// Whether `s` holds a byte that JSON (and serde_json) escapes inside a
/// string: a control character below 0x20, `"` or `\\`. No early exit: a
/// branch per byte would keep the compiler from checking 32 bytes at a time.
pub fn needs_json_escape(s: &str) -> bool {
    s.bytes().fold(0u8, |dirty, b| {
        dirty | u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\')
    }) != 0
}

/// An official-API template message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateMessage {
    pub name: String,
    pub language: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<Parameters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Parameters>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Button>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parameters {
    pub parameters: Vec<Parameter>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parameter {
    pub index: usize,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Button {
    pub index: usize,
    pub parameters: Vec<Parameter>,
}

impl Parameters {
    /// Numbers the values 1, 2, 3… in the order the operator listed them.
    pub fn numbered(values: Vec<String>) -> Parameters {
        Parameters {
            parameters: values
                .into_iter()
                .enumerate()
                .map(|(i, value)| Parameter {
                    index: i + 1,
                    value,
                })
                .collect(),
        }
    }
}

/// A rendered value that the platform or WhatsApp would refuse.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{field}` {reason}")]
pub struct Violation {
    /// The field of the message, as in the response (`value`, `body.parameters[1].value`).
    pub field: String,
    pub reason: String,
}

impl Message {
    /// Checks the values against the contract and WhatsApp's limits.
    pub fn validate(&self) -> Result<(), Violation> {
        self.validate_with(None)
    }

    /// Like [`validate`](Self::validate); a template message is also checked
    /// against its catalogue entry, when the integration resolved one.
    pub fn validate_with(&self, template: Option<&Template>) -> Result<(), Violation> {
        match self {
            Message::Text { value } => check_text(value),
            Message::File { value } | Message::Image { value } | Message::Audio { value } => {
                check_url(value)
            }
            Message::Template(t) => t.validate(template),
        }
    }
}

/// WhatsApp's limits for template parameters, in characters (Meta's
/// "parameter object": 60 for a header's text, 1024 for a body's when the
/// template has other components), for a template's body as read, and for a
/// URL button's link and a coupon code.
pub const MAX_HEADER_PARAM_CHARS: usize = 60;
pub const MAX_BODY_PARAM_CHARS: usize = 1024;
pub const MAX_BODY_CHARS: usize = 1024;
pub const MAX_BUTTON_URL_CHARS: usize = 2000;
pub const MAX_CODE_CHARS: usize = 15;
/// Meta's limit for a template's name.
pub const MAX_NAME_CHARS: usize = 512;

impl TemplateMessage {
    /// Whether the message has the values `t` takes: what the load-time
    /// check makes sure of for a fixed name, for a name (or language) that
    /// came from the request. Named body values are counted, not ordered.
    pub fn fits(&self, t: &Template) -> Result<(), Violation> {
        let refuse = |field: &str, reason: String| {
            Err(Violation {
                field: field.to_owned(),
                reason,
            })
        };
        let which = format!("`{}` ({})", t.name, t.language);
        if let Some(status) = t
            .status
            .as_deref()
            .filter(|s| !s.eq_ignore_ascii_case("APPROVED"))
        {
            return refuse(
                "name",
                format!("names {which}, which is {status}, not APPROVED: WhatsApp would refuse it"),
            );
        }
        let wants_header = match &t.header {
            None => false,
            Some(Header::Media(_)) => true,
            Some(Header::Text(text)) => !text.vars.is_empty(),
        };
        if wants_header != self.header.is_some() {
            let says = if wants_header {
                "takes a header value and the message has none"
            } else {
                "takes no header value and the message has one"
            };
            return refuse("header", format!("does not fit {which}, which {says}"));
        }
        let vars = t.body.as_ref().map_or(0, |b| b.vars.len());
        let given = self.body.as_ref().map_or(0, |b| b.parameters.len());
        if vars != given {
            return refuse(
                "body",
                format!("has {given} value(s); {which} takes {vars}"),
            );
        }
        if self.buttons.len() != t.buttons.len() {
            return refuse(
                "buttons",
                format!(
                    "has {} button(s); {which} has {}",
                    self.buttons.len(),
                    t.buttons.len()
                ),
            );
        }
        for (i, (b, tb)) in self.buttons.iter().zip(&t.buttons).enumerate() {
            let fits = match tb.takes {
                ButtonValue::Required => !b.parameters.is_empty(),
                ButtonValue::None => b.parameters.is_empty(),
                ButtonValue::Either => true,
            };
            if !fits {
                let says = if b.parameters.is_empty() {
                    "needs a value"
                } else {
                    "takes no value"
                };
                return refuse(
                    &format!("buttons[{i}]"),
                    format!("{says} in {which} (a {} button)", tb.kind),
                );
            }
        }
        Ok(())
    }

    /// The values as [`catalogue::Template::fill`](crate::config::catalogue::Template::fill) takes them.
    pub fn params(&self) -> Params<'_> {
        fn values(p: &Option<Parameters>) -> Vec<&str> {
            p.iter()
                .flat_map(|p| &p.parameters)
                .map(|p| p.value.as_str())
                .collect()
        }
        Params {
            header: values(&self.header).first().copied(),
            body: values(&self.body),
            buttons: self
                .buttons
                .iter()
                .map(|b| b.parameters.first().map(|p| p.value.as_str()))
                .collect(),
        }
    }

    fn validate(&self, template: Option<&Template>) -> Result<(), Violation> {
        if self.name.is_empty()
            || self.name.len() > MAX_NAME_CHARS
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(violation(
                "name",
                format!(
                    "must be a WhatsApp template name (lowercase letters, digits, `_`, at most {MAX_NAME_CHARS})"
                ),
            ));
        }
        // A catalogue entry was found by this very language: Meta's own answer.
        if template.is_none() && !LANGUAGES.contains(&self.language.as_str()) {
            let hint = self.language.replace('-', "_");
            let hint = if LANGUAGES.contains(&hint.as_str()) {
                format!(" (WhatsApp writes it `{hint}`)")
            } else {
                String::new()
            };
            return Err(violation(
                "language",
                format!(
                    "must be one of the language codes WhatsApp supports for templates, such as `pt_BR`, `en_US` or `es`{hint}"
                ),
            ));
        }
        if let Some(header) = &self.header {
            if header.parameters.len() > 1 || header.parameters.iter().any(|p| p.index != 1) {
                return Err(violation(
                    "header.parameters",
                    "must have at most one element, with index 1".into(),
                ));
            }
            match template.and_then(|t| t.header.as_ref()) {
                Some(Header::Media(kind)) => {
                    for (i, p) in header.parameters.iter().enumerate() {
                        if !is_url(&p.value) {
                            return Err(violation(
                                &format!("header.parameters[{i}].value"),
                                format!("must be the absolute http(s) URL of the {kind} the template's header shows"),
                            ));
                        }
                    }
                }
                _ => check_params(
                    "header",
                    &header.parameters,
                    MAX_HEADER_PARAM_CHARS,
                    "a header",
                )?,
            }
        }
        if let Some(body) = &self.body {
            check_params("body", &body.parameters, MAX_BODY_PARAM_CHARS, "a body")?;
            if let Some(text) = template.and_then(|t| t.body.as_ref()) {
                let chars = text.filled_chars(&body.parameters);
                if chars > MAX_BODY_CHARS {
                    return Err(violation(
                        "body",
                        format!("would have {chars} characters as the contact reads it (the template's text with the values in); WhatsApp allows at most {MAX_BODY_CHARS} (error #132005); shorten the values"),
                    ));
                }
            }
        }
        for (i, button) in self.buttons.iter().enumerate() {
            if button.parameters.len() > 1 || button.parameters.iter().any(|p| p.index != 1) {
                return Err(violation(
                    &format!("buttons[{i}].parameters"),
                    "must have at most one element, with index 1".into(),
                ));
            }
            check_params(
                &format!("buttons[{i}]"),
                &button.parameters,
                usize::MAX,
                "a button",
            )?;
            let (Some(b), Some(p)) = (
                template.and_then(|t| t.buttons.get(i)),
                button.parameters.first(),
            ) else {
                continue;
            };
            let field = || format!("buttons[{i}].parameters[0].value");
            if let Some((before, after)) = b.url_parts() {
                if crate::config::catalogue::repeats_start(&p.value, before) {
                    return Err(violation(
                        &field(),
                        format!("is a whole link, but the button's URL ({}) already starts with `{before}`: the value replaces only the variable, so the contact would get the start twice; give only the part that goes in its place", b.url.as_deref().unwrap_or_default()),
                    ));
                }
                let url = [before, p.value.as_str(), after].concat();
                if url.chars().count() > MAX_BUTTON_URL_CHARS
                    || !is_url(&url)
                    || url::Url::parse(&url).is_err()
                {
                    return Err(violation(
                        &field(),
                        format!("does not make a valid link once put in the button's URL ({}): WhatsApp would refuse it; the value must be URL text (no spaces; at most {MAX_BUTTON_URL_CHARS} characters in all)", b.url.as_deref().unwrap_or_default()),
                    ));
                }
            } else if matches!(b.kind.as_str(), "COPY_CODE" | "OTP") {
                let chars = p.value.chars().count();
                if chars > MAX_CODE_CHARS {
                    return Err(violation(
                        &field(),
                        format!("has {chars} characters; WhatsApp allows at most {MAX_CODE_CHARS} in a {} button's code", b.kind),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl AsRef<str> for Parameter {
    fn as_ref(&self) -> &str {
        &self.value
    }
}

fn violation(field: &str, reason: String) -> Violation {
    Violation {
        field: field.to_owned(),
        reason,
    }
}

fn check_text(value: &str) -> Result<(), Violation> {
    if value.trim().is_empty() {
        return Err(violation(
            "value",
            "is empty: WhatsApp does not send an empty text".into(),
        ));
    }
    // A character is at least a byte: short texts need no counting.
    let chars = if value.len() > MAX_TEXT_CHARS {
        value.chars().count()
    } else {
        0
    };
    if chars > MAX_TEXT_CHARS {
        return Err(violation(
            "value",
            format!("has {chars} characters; WhatsApp allows at most {MAX_TEXT_CHARS}"),
        ));
    }
    Ok(())
}

/// An absolute `http://` or `https://` URL with a valid host (a DNS name
/// whose labels do not start or end with `-`, an IPv4 or a bracketed IPv6
/// address), an optional port up to 65535, no user info, no backslash and
/// no whitespace or control characters. Not a full URL parse: it runs for
/// every media message and a full parse cost more than the rest of the
/// message's rendering; only the host goes through `url::Host`.
///
/// The error says what is wrong, never the value: a URL is often built
/// from the contact's phone number or the payload.
fn check_url(value: &str) -> Result<(), Violation> {
    if is_url(value) {
        Ok(())
    } else {
        Err(violation(
            "value",
            // The value may be built from personal data: described, not quoted.
            "must be an absolute http(s) URL with a valid host (and no user info or backslash)"
                .into(),
        ))
    }
}

fn is_url(value: &str) -> bool {
    let Some(rest) = strip_prefix_ignore_case(value, "https://")
        .or_else(|| strip_prefix_ignore_case(value, "http://"))
    else {
        return false;
    };
    // No whitespace, control character or backslash anywhere. For ASCII
    // (nearly every URL) one pass the compiler vectorizes; other characters
    // are read as chars only when there are some.
    let (mut bad, mut wide) = (false, false);
    for &b in value.as_bytes() {
        bad |= (b <= b' ') | (b == 0x7f) | (b == b'\\');
        wide |= b >= 0x80;
    }
    if bad || wide && value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    // The authority ends at the path, query or fragment; one pass finds
    // its end, its first `]` and `:`, and any `@` (user info).
    let (mut end, mut bracket, mut colon, mut at) = (rest.len(), None, None, false);
    for (i, &b) in rest.as_bytes().iter().enumerate() {
        match b {
            b'/' | b'?' | b'#' => {
                end = i;
                break;
            }
            b']' if bracket.is_none() => bracket = Some(i),
            b':' if colon.is_none() => colon = Some(i),
            b'@' => at = true,
            _ => {}
        }
    }
    let authority = &rest[..end];
    // `[v6]:port` or `host:port`; the port may be absent or empty.
    let (host, port) = match bracket {
        Some(close) if authority.starts_with('[') => {
            let tail = &authority[close + 1..];
            (&authority[..=close], tail.strip_prefix(':').unwrap_or(tail))
        }
        _ => match colon {
            Some(colon) => (&authority[..colon], &authority[colon + 1..]),
            None => (authority, ""),
        },
    };
    let port_ok = port.is_empty()
        || port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|n| n <= 65535);
    port_ok && !at && valid_host(host)
}

fn valid_host(host: &str) -> bool {
    if host.is_empty() {
        return false;
    }
    plain_domain(host).unwrap_or_else(|| parsed_host_ok(host))
}

/// The answer of [`parsed_host_ok`] without the URL parser, for the hosts
/// nearly every URL has: lowercase ASCII letters, digits, `-` and `.`, no
/// punycode (`xn--`), and a last label that starts with a letter, so that
/// it is neither an IPv4 address nor a number (WHATWG's "ends in a
/// number"). For those the parser gives the host back unchanged as a
/// domain. `None`: not such a host, ask the parser (`tests::plain_domains_agree_with_url`).
/// One pass over the host (`tests::is_url_agrees_with_its_first_form`).
fn plain_domain(host: &str) -> Option<bool> {
    let bytes = host.as_bytes();
    // A fully qualified name's trailing dot is not a label.
    let name = bytes.strip_suffix(b".").unwrap_or(bytes);
    let (mut labels_ok, mut len, mut first, mut prev) = (true, 0usize, 0u8, 0u8);
    for (i, &b) in name.iter().enumerate() {
        if b == b'.' {
            labels_ok &= len > 0 && prev != b'-';
            len = 0;
        } else {
            if !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
                return None;
            }
            // `xn--` anywhere: its last byte closes it.
            if b == b'-' && prev == b'-' && i >= 3 && &name[i - 3..i - 1] == b"xn" {
                return None;
            }
            if len == 0 {
                first = b;
                labels_ok &= b != b'-';
            }
            len += 1;
        }
        prev = b;
    }
    labels_ok &= len > 0 && prev != b'-';
    // The last label: a letter first, or it may be a number.
    if len == 0 || !first.is_ascii_lowercase() {
        return None;
    }
    Some(labels_ok)
}

/// The host as the WHATWG URL parser reads it (percent-decoding, IDNA,
/// IPv4 and IPv6 forms), with every label of a domain a valid one.
fn parsed_host_ok(host: &str) -> bool {
    match url::Host::parse(host) {
        Ok(url::Host::Domain(name)) => {
            // A trailing dot (`example.com.`) is a valid, fully qualified name.
            let name = name.strip_suffix('.').unwrap_or(&name);
            !name.is_empty()
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label
                            .chars()
                            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
                })
        }
        Ok(_) => true,
        Err(_) => false,
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// WhatsApp refuses a template parameter that is empty, holds a new line or
/// a tab, or more than four spaces in a row (Meta's error #100 "invalid
/// parameter", or #131009 "parameter value is not valid"). Read broadly: every line and paragraph separator and control
/// character counts as a new line, every kind of space (non-breaking too)
/// as a space, and text of only invisible characters as empty. Messages
/// never quote the value: it is the contact's data.
fn check_params(
    group: &str,
    params: &[Parameter],
    max_chars: usize,
    kind: &str,
) -> Result<(), Violation> {
    for (i, p) in params.iter().enumerate() {
        let field = || format!("{group}.parameters[{i}].value");
        let value = p.value.as_str();
        if value
            .chars()
            .all(|c| c.is_whitespace() || INVISIBLE.contains(&c))
        {
            return Err(violation(
                &field(),
                "is empty (or only spaces and invisible characters); WhatsApp refuses empty template parameters".into(),
            ));
        }
        if let Some(c) = value
            .chars()
            .find(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
        {
            return Err(violation(
                &field(),
                format!(
                    "contains {}, which WhatsApp refuses in template parameters (no new lines, tabs or control characters)",
                    char_name(c)
                ),
            ));
        }
        let mut run = 0;
        for c in value.chars() {
            run = if c.is_whitespace() { run + 1 } else { 0 };
            if run > 4 {
                return Err(violation(
                    &field(),
                    "contains more than four consecutive spaces (non-breaking and other spaces count), which WhatsApp refuses".into(),
                ));
            }
        }
        if max_chars != usize::MAX {
            let chars = value.chars().count();
            if chars > max_chars {
                return Err(violation(
                    &field(),
                    format!("has {chars} characters; WhatsApp allows at most {max_chars} in {kind} parameter"),
                ));
            }
        }
    }
    Ok(())
}

fn char_name(c: char) -> String {
    match c {
        '\n' => "a new line".into(),
        '\r' => "a carriage return".into(),
        '\t' => "a tab".into(),
        '\u{0B}' => "a vertical tab".into(),
        '\u{0C}' => "a form feed".into(),
        '\0' => "a NUL character".into(),
        '\u{85}' => "a next-line character (U+0085)".into(),
        '\u{2028}' => "a line separator (U+2028)".into(),
        '\u{2029}' => "a paragraph separator (U+2029)".into(),
        c => format!("a control character (U+{:04X})", c as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::{check_url, is_url, parsed_host_ok, plain_domain, strip_prefix_ignore_case};
    use super::{write_json, Message, Parameter, Parameters, TemplateMessage};

    /// A text is copied whole exactly when serde_json would write it
    /// unescaped: every ASCII byte, at the start, after a few bytes and
    /// past the first 64 (where a vectorized check works in blocks).
    #[test]
    fn a_text_needs_escaping_exactly_when_serde_json_escapes_it() {
        for c in (0..=0x7f).map(char::from).chain(['é', '😀', '\u{2028}']) {
            for text in [
                c.to_string(),
                format!("abc{c}"),
                format!("{}{c}xyz", "0123456789".repeat(7)),
            ] {
                let serde = serde_json::to_string(&text).unwrap();
                assert_eq!(
                    super::needs_json_escape(&text),
                    serde != format!("\"{text}\""),
                    "{text:?}"
                );
            }
        }
    }

    /// The hand-written fixed parts against serde's own output, over texts
    /// with every kind of character JSON escapes.
    #[test]
    fn json_is_serdes() {
        let pieces = [
            "",
            "a",
            "Olá, João!",
            "\"",
            "\\",
            "\n",
            "\u{1}",
            "\u{7f}",
            "😀",
            "</script>",
            "\u{2028}",
            "R$ 1.234,50",
        ];
        let mut next = crate::xorshift(0x2545_f491_4f6c_dd1d);
        for _ in 0..2_000 {
            let mut messages = Vec::new();
            for _ in 0..next() % 5 {
                let kind = next() % 5;
                let mut text = || -> String {
                    (0..next() % 6)
                        .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                        .collect()
                };
                messages.push(match kind {
                    0 => Message::Text { value: text() },
                    1 => Message::File { value: text() },
                    2 => Message::Image { value: text() },
                    3 => Message::Audio { value: text() },
                    _ => Message::Template(TemplateMessage {
                        name: text(),
                        language: "pt_BR".into(),
                        header: None,
                        body: Some(Parameters {
                            parameters: vec![Parameter {
                                index: 1,
                                value: text(),
                            }],
                        }),
                        buttons: vec![],
                    }),
                });
            }
            let mut ours = Vec::new();
            write_json(&messages, &mut ours).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&messages).unwrap()
            );
        }
    }

    // The first form of `is_url` (before its one-pass rewrite), kept as
    // the oracle the rewrite is tested against.
    fn is_url_first_form(value: &str) -> bool {
        let Some(rest) = strip_prefix_ignore_case(value, "https://")
            .or_else(|| strip_prefix_ignore_case(value, "http://"))
        else {
            return false;
        };
        // No whitespace, control character or backslash anywhere; for ASCII
        // (nearly every URL) that is one byte comparison each.
        let clean = value.bytes().all(|b| b > b' ' && b < 0x7f && b != b'\\')
            || !value.contains('\\') && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        let end = rest
            .bytes()
            .position(|b| matches!(b, b'/' | b'?' | b'#'))
            .unwrap_or(rest.len());
        let authority = &rest[..end];
        // `[v6]:port` or `host:port`; the port may be absent or empty.
        let (host, port) = match authority.bytes().position(|b| b == b']') {
            Some(end) if authority.starts_with('[') => {
                let tail = &authority[end + 1..];
                (&authority[..=end], tail.strip_prefix(':').unwrap_or(tail))
            }
            _ => match authority.bytes().position(|b| b == b':') {
                Some(colon) => (&authority[..colon], &authority[colon + 1..]),
                None => (authority, ""),
            },
        };
        let port_ok = port.is_empty()
            || port.len() <= 5
                && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u32>().is_ok_and(|n| n <= 65535);
        clean && port_ok && !authority.bytes().any(|b| b == b'@') && valid_host_first_form(host)
    }

    fn valid_host_first_form(host: &str) -> bool {
        if host.is_empty() {
            return false;
        }
        plain_domain_first_form(host).unwrap_or_else(|| parsed_host_ok(host))
    }

    fn plain_domain_first_form(host: &str) -> Option<bool> {
        let bytes = host.as_bytes();
        let plain = bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        let name = bytes.strip_suffix(b".").unwrap_or(bytes);
        let last = name.rsplit(|&b| b == b'.').next().unwrap_or(b"");
        let punycode = bytes.windows(4).any(|w| w == b"xn--");
        if !plain || !last.first().is_some_and(u8::is_ascii_lowercase) || punycode {
            return None;
        }
        Some(name.split(|&b| b == b'.').all(|label| {
            !label.is_empty() && label.first() != Some(&b'-') && label.last() != Some(&b'-')
        }))
    }

    /// The one-pass `is_url` answers as its first form did, on random URLs
    /// drawn from an alphabet that reaches both sides of every rule.
    #[test]
    fn is_url_agrees_with_its_first_form() {
        let alphabet: Vec<&str> = vec![
            "a", "z", "0", "9", "-", ".", "..", "xn--", "x", "n", ":", "80", "65536", "[", "]",
            "::1", "@", "/", "?", "#", "\\", " ", "\t", "\u{7f}", "é", "\u{a0}", "\u{2028}", "%41",
            "_", "A", "Z", "1.2.3.4", "0x1f", "com", "-a", "a-",
        ];
        let mut next = crate::xorshift(0x9e37_79b9_7f4a_7c15);
        let mut yes = 0;
        for i in 0..300_000 {
            let scheme =
                ["https://", "http://", "HTTPS://", "ftp://", "https:/"][(next() % 5) as usize];
            let len = (next() % 10) as usize;
            let mut url: String = scheme.into();
            for _ in 0..len {
                url.push_str(alphabet[(next() % alphabet.len() as u64) as usize]);
            }
            if i % 4 == 0 {
                url.push_str(
                    ["/b.pdf", "?q=1", "#f", ":8443/x", ".com", ".com./a"][(next() % 6) as usize],
                );
            }
            let answer = is_url(&url);
            yes += usize::from(answer);
            assert_eq!(answer, is_url_first_form(&url), "{url:?}");
            let host = url.split_once("://").map_or("", |(_, h)| h);
            if !host.is_empty() {
                assert_eq!(
                    plain_domain(host),
                    plain_domain_first_form(host),
                    "{host:?}"
                );
            }
        }
        assert!(yes > 20_000, "only {yes} URLs were valid");
    }

    /// The fast path against the URL parser, on random hosts drawn from an
    /// alphabet that reaches both sides of every rule it shortcuts.
    #[test]
    fn plain_domains_agree_with_url() {
        let alphabet: Vec<char> = "abcxyz019-.._AZ%xn".chars().collect();
        let mut next = crate::xorshift(0x2545_f491_4f6c_dd1d);
        let mut fast = 0;
        for i in 0..200_000 {
            let len = 1 + (next() % 14) as usize;
            let mut host: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            if i % 3 == 0 {
                host.push_str(
                    [".com", ".br", ".1", ".0x1f", ".xn--p1ai", "."][(next() % 6) as usize],
                );
            }
            if let Some(answer) = plain_domain(&host) {
                fast += 1;
                assert_eq!(answer, parsed_host_ok(&host), "{host:?}");
            }
        }
        assert!(fast > 10_000, "the fast path was taken only {fast} times");
        for host in [
            "example.com",
            "a.b",
            "1.2.3.4",
            "1.2.3.a",
            "0x7f.1",
            "x.0x1",
            "a..b",
            "a.",
            "-a.b",
            "a-.b",
            "xn--nxasmq6b.com",
            "a.b1",
        ] {
            if let Some(answer) = plain_domain(host) {
                assert_eq!(answer, parsed_host_ok(host), "{host:?}");
            }
        }
    }

    #[test]
    fn urls() {
        for ok in [
            "https://example.com/boletos/abc.pdf",
            "HTTP://example.com",
            "https://example.com:8443/a?b=c#d",
            "https://example.com:65535/a@b",
            "https://[::1]:8080/x",
            "https://exemplo.com.br/joão.pdf",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/relative/file.pdf",
            "example.com/file.pdf",
            "ftp://example.com/file",
            "https://",
            "https:///path",
            "https://exa mple.com/",
            "https://example.com/a b.pdf",
            "https://example.com:port/",
            "javascript:alert(1)",
            "https://ex<ample.com/",
            "https://-/",
            "https://a-.example.com/",
            "https://[zz]/",
            "https://example.com:99999/",
            "https://x.com\\@y.com/",
            "https://x.com\\y/",
            "https://user@example.com/",
            "https://a..b/",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
