//! What goes wrong in a config file, and where: [`ConfigError`] is written
//! for the operator who must fix the YAML; [`FieldPath`] names a place inside
//! a file the same way everywhere (load errors, render errors, positions).

use std::borrow::Cow;
use std::fmt;

/// A problem in a config file, written for the person who must fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// Path relative to the integrations folder (`demo/boleto.yaml`).
    pub file: String,
    /// 1-based; `None` when the problem is the file as a whole.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    /// The file could not be read (e.g. too many open files), rather than
    /// being wrong: the reload is retried until it can be.
    pub io: bool,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.message),
            (Some(l), None) => write!(f, "{}:{l}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl ConfigError {
    pub fn whole_file(file: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_owned(),
            line: None,
            column: None,
            message: message.into(),
            io: false,
        }
    }

    /// A file or folder that could not be read: retried (see [`ConfigError::io`]).
    pub fn unreadable(file: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            io: true,
            ..ConfigError::whole_file(file, message)
        }
    }

    pub fn at(file: &str, (line, column): (usize, usize), message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_owned(),
            line: Some(line),
            column: Some(column),
            message: message.into(),
            io: false,
        }
    }
}

/// A place inside a YAML file: `messages[1].template.body[0]`,
/// `enrich.cliente.headers.Authorization`. Displayed the way operators read
/// it, and the key of [`super::yaml::Positions`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    Key(Cow<'static, str>),
    Index(usize),
}

impl FieldPath {
    /// The file's top level.
    pub fn root() -> FieldPath {
        FieldPath(Vec::new())
    }

    /// A one-key path, `messages`.
    pub fn key(key: impl Into<Cow<'static, str>>) -> FieldPath {
        FieldPath(vec![Segment::Key(key.into())])
    }

    /// This path followed by a mapping key.
    pub fn then(&self, key: impl AsRef<str>) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Segment::Key(Cow::Owned(key.as_ref().to_owned())));
        p
    }

    /// This path followed by a list index.
    pub fn at(&self, index: usize) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Segment::Index(index));
        p
    }

    /// `prefix` followed by every segment of `self`.
    pub fn under(&self, prefix: &FieldPath) -> FieldPath {
        let mut p = prefix.clone();
        p.0.extend(self.0.iter().cloned());
        p
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// serde's "unknown field `whenn`, expected one of `when`, …" (or variant),
/// with the likely intent named, as misspelt filters get it.
pub fn with_suggestion(message: String) -> String {
    let Some((_, rest)) = message
        .split_once("unknown field `")
        .or_else(|| message.split_once("unknown variant `"))
    else {
        return message;
    };
    let Some((name, expected)) = rest.split_once('`') else {
        return message;
    };
    let candidates = expected.split('`').skip(1).step_by(2);
    let likely = did_you_mean(name, candidates);
    format!("{message}{likely}")
}

/// Every `` `…` `` and `"…"` part of `msg` emptied to `…`: for messages
/// that would quote a credential or a request's value.
pub fn redact_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut open: Option<char> = None;
    for c in msg.chars() {
        match open {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '`' || c == '"' {
                    open = Some(c);
                }
            }
        }
    }
    out
}

/// `; did you mean `…`?` for the closest of `candidates`, or nothing.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    suggest(name, candidates).map_or(String::new(), |s| format!("; did you mean `{s}`?"))
}

/// The closest name, if one is close enough to be the likely intent.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|&(d, _)| d <= limit)
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::FieldPath;

    #[test]
    fn displays_as_operators_read_it() {
        let p = FieldPath::key("messages")
            .at(1)
            .then("template")
            .then("body")
            .at(0);
        assert_eq!(p.to_string(), "messages[1].template.body[0]");
        assert_eq!(FieldPath::root().to_string(), "");
        assert_eq!(
            FieldPath::key("headers")
                .under(&FieldPath::key("enrich").then("c"))
                .to_string(),
            "enrich.c.headers"
        );
    }
}
