//! Stage 5, validate the output: the messages recado answers, typed so the
//! contract's shape holds by construction (indexes are numbered here, never
//! written by hand), plus the value rules the platform and WhatsApp enforce.

use serde::Serialize;

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
        match self {
            Message::Text { value } => check_text(value),
            Message::File { value } | Message::Image { value } | Message::Audio { value } => {
                check_url(value)
            }
            Message::Template(t) => t.validate(),
        }
    }
}

impl TemplateMessage {
    fn validate(&self) -> Result<(), Violation> {
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(violation(
                "name",
                format!(
                    "must be a WhatsApp template name (lowercase letters, digits, `_`), got {:?}",
                    self.name
                ),
            ));
        }
        let lang_ok = !self.language.is_empty()
            && self.language.len() <= 8
            && self
                .language
                .bytes()
                .all(|b| b.is_ascii_alphabetic() || b == b'_');
        if !lang_ok {
            return Err(violation(
                "language",
                format!(
                    "must be a language code such as `pt_BR`, got {:?}",
                    self.language
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
            check_params("header", &header.parameters)?;
        }
        if let Some(body) = &self.body {
            check_params("body", &body.parameters)?;
        }
        for (i, button) in self.buttons.iter().enumerate() {
            if button.parameters.len() > 1 || button.parameters.iter().any(|p| p.index != 1) {
                return Err(violation(
                    &format!("buttons[{i}].parameters"),
                    "must have at most one element, with index 1".into(),
                ));
            }
            check_params(&format!("buttons[{i}]"), &button.parameters)?;
        }
        Ok(())
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
    let chars = value.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(violation(
            "value",
            format!("has {chars} characters; WhatsApp allows at most {MAX_TEXT_CHARS}"),
        ));
    }
    Ok(())
}

/// An absolute `http://` or `https://` URL with a host and no whitespace or
/// control characters. Deliberately a shape check, not a full parse: it runs
/// for every media message and a full URL parse cost more than the rest of
/// the message's rendering; anything it accepts is fetchable by a client.
fn check_url(value: &str) -> Result<(), Violation> {
    let rest = strip_prefix_ignore_case(value, "https://")
        .or_else(|| strip_prefix_ignore_case(value, "http://"));
    let ok = rest.is_some_and(|rest| {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host_port = authority.rsplit('@').next().unwrap_or("");
        let (host, port) = match host_port.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((addr, port)) => (addr, port.strip_prefix(':').unwrap_or(port)),
                None => ("", ""),
            },
            None => host_port.split_once(':').unwrap_or((host_port, "")),
        };
        !host.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && host
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'))
            && !value.chars().any(|c| c.is_whitespace() || c.is_control())
    });
    if ok {
        Ok(())
    } else {
        Err(violation(
            "value",
            format!("must be an absolute http(s) URL, got {value:?}"),
        ))
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// WhatsApp refuses template parameters that are empty, contain a new line or
/// a tab, or have more than four consecutive spaces.
fn check_params(group: &str, params: &[Parameter]) -> Result<(), Violation> {
    for (i, p) in params.iter().enumerate() {
        let field = || format!("{group}.parameters[{i}].value");
        if p.value.trim().is_empty() {
            return Err(violation(
                &field(),
                "is empty; WhatsApp refuses empty template parameters".into(),
            ));
        }
        if p.value.contains(['\n', '\r', '\t']) {
            return Err(violation(
                &field(),
                "contains a new line or a tab, which WhatsApp refuses in template parameters"
                    .into(),
            ));
        }
        if p.value.contains("     ") {
            return Err(violation(
                &field(),
                "contains more than four consecutive spaces, which WhatsApp refuses".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn urls() {
        for ok in [
            "https://example.com/boletos/abc.pdf",
            "HTTP://example.com",
            "https://user@example.com:8443/a?b=c#d",
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
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
