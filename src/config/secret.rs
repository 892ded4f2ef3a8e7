//! Secrets in config files: `${env:NAME}` and `${file:PATH}` are resolved at
//! load time; the value never reaches a log line or a `Debug` print.

use std::fmt;

/// A resolved secret. `Debug` prints a placeholder so a secret cannot leak
/// through an error message or a log line by accident.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Resolves `${env:NAME}` or `${file:PATH}`; any other text is a literal.
    pub fn resolve(raw: &str) -> Result<Secret, String> {
        let Some(reference) = raw.strip_prefix("${").and_then(|r| r.strip_suffix('}')) else {
            return Ok(Secret(raw.to_owned()));
        };
        match reference.split_once(':') {
            Some(("env", name)) => std::env::var(name)
                .map(Secret)
                .map_err(|_| format!("environment variable `{name}` is not set (or not UTF-8)")),
            Some(("file", path)) => std::fs::read_to_string(path)
                .map(|s| Secret(s.trim_end_matches(['\n', '\r']).to_owned()))
                .map_err(|e| format!("cannot read secret file `{path}`: {e}")),
            _ => Err(format!(
                "`{raw}` is not a secret reference: use `${{env:NAME}}` or `${{file:PATH}}`"
            )),
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}
