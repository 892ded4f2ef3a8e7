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
                "must be a WhatsApp template name (lowercase letters, digits, `_`)".into(),
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
                "must be a language code such as `pt_BR`".into(),
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
    let rest = strip_prefix_ignore_case(value, "https://")
        .or_else(|| strip_prefix_ignore_case(value, "http://"));
    let ok = rest.is_some_and(|rest| {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        // `[v6]:port` or `host:port`; the port may be absent or empty.
        let (host, port) = match authority.find(']') {
            Some(end) if authority.starts_with('[') => {
                let tail = &authority[end + 1..];
                (&authority[..=end], tail.strip_prefix(':').unwrap_or(tail))
            }
            _ => authority.split_once(':').unwrap_or((authority, "")),
        };
        let port_ok = port.is_empty()
            || port.len() <= 5
                && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u32>().is_ok_and(|n| n <= 65535);
        port_ok
            && valid_host(host)
            && !authority.contains('@')
            && !value.contains('\\')
            && !value.chars().any(|c| c.is_whitespace() || c.is_control())
    });
    if ok {
        Ok(())
    } else {
        Err(violation(
            "value",
            "must be an absolute http(s) URL with a valid host (and no user info or backslash)"
                .into(),
        ))
    }
}

fn valid_host(host: &str) -> bool {
    if host.is_empty() {
        return false;
    }
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
