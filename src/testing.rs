//! Running the operators' `tests:` (see `config::spec::TestSpec`).
//!
//! A test goes through the real request path from the parsed request on:
//! request validation, the compiled templates, output validation and the
//! answer's size limit ([`crate::hook::render_request`], [`crate::hook::encode`]).
//! Only the upstream HTTP calls are replaced, by the test's `enrich:` answers,
//! so a test does no I/O and needs no runtime: it can run on the reload
//! thread, which is how a file whose tests fail stays out (see
//! [`install`]).
//!
//! Dependency direction: `config` is inert and cannot import the render path,
//! so this module lives at the crate root and registers itself with
//! `config::set_test_runner`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use minijinja::Value;

use crate::config::spec::TestSpec;
use crate::config::spec::{
    default_request, merge, Expectation, ExpectedMessage, ExpectedTemplate, QrKind,
};
use crate::config::{Integration, TestEnv, TestFailed};
use crate::error::ApiError;
use crate::explain::without_place;
use crate::output::Message;
use crate::render::request_context;
use crate::request::{PlatformRequest, RequestVars};

/// Makes every load (start-up, reload, `recado check`) run the tests of each
/// changed file and refuse the file if one fails.
pub fn install() {
    crate::config::set_test_runner(check);
}

/// [`crate::config::TestRunner`]: the first failing test, its differences
/// on one line (for `/admin/status` and the log).
fn check(integration: &Integration, env: &TestEnv) -> Result<(), TestFailed> {
    for (index, test) in integration.tests.iter().enumerate() {
        if let Err(failure) = run(integration, test, env) {
            return Err(TestFailed {
                index,
                message: format!(
                    "test \"{}\" failed: {}",
                    test.name,
                    failure.lines.join("; ")
                ),
            });
        }
    }
    Ok(())
}

/// Why a test failed: one readable line per difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub lines: Vec<String>,
}

impl Failure {
    fn one(line: impl Into<String>) -> Failure {
        Failure {
            lines: vec![line.into()],
        }
    }
}

/// Runs one test of `integration`.
pub fn run(integration: &Integration, test: &TestSpec, env: &TestEnv) -> Result<(), Failure> {
    let outcome = answer(integration, test, env)?;
    compare(&test.expect, outcome)
}

/// The answer the request path gives for the test's request, with the
/// canned answers in place of upstream calls. `Err(Failure)` when the test
/// cannot run (an answer is missing).
fn answer(
    integration: &Integration,
    test: &TestSpec,
    env: &TestEnv,
) -> Result<Result<Vec<Message>, ApiError>, Failure> {
    let mut request = default_request(env.client_id);
    merge(
        &mut request,
        &serde_json::Value::Object(test.request.clone()),
    );
    let body = serde_json::to_vec(&request).expect("JSON values serialize");
    let req = match PlatformRequest::parse(&body) {
        Ok(req) => req,
        Err(e) => return Ok(Err(ApiError::InvalidRequest(e))),
    };
    let mut ctx = request_context(&req);
    let calls = &integration.program.borrow_dependent().calls;
    if !calls.is_empty() {
        let mut answers = BTreeMap::new();
        for call in calls {
            let Some(stub) = test.enrich.get(&call.name) else {
                return Err(Failure::one(format!(
                    "the call `{0}` has no answer in this test: add `enrich: {{{0}: …}}` with the JSON the upstream would give (tests never call upstreams)",
                    call.name
                )));
            };
            // Deserialized as the upstream's JSON answer would be.
            let answer = <Value as serde::Deserialize>::deserialize(stub)
                .expect("a JSON value is a template value");
            answers.insert(call.name.as_str(), answer);
        }
        ctx = RequestVars::with(&ctx, [("enrich", Value::from(answers))]);
    }
    let result = crate::hook::render_request(integration, &ctx, env.limits.max_messages).and_then(
        |messages| crate::hook::encode(&messages, integration, &env.limits).map(|_| messages),
    );
    Ok(result)
}

fn compare(expect: &Expectation, outcome: Result<Vec<Message>, ApiError>) -> Result<(), Failure> {
    match (expect, outcome) {
        (Expectation::Messages(expected), Ok(got)) => {
            let got: Vec<ExpectedMessage> = got.iter().map(as_expected).collect();
            let lines = diff(expected, &got);
            if lines.is_empty() {
                Ok(())
            } else {
                Err(Failure { lines })
            }
        }
        (Expectation::Messages(expected), Err(e)) => Err(Failure::one(format!(
            "expected {} message(s), got the error {}: {}",
            expected.len(),
            e.code(),
            error_text(&e)
        ))),
        (Expectation::Error(want), Err(e)) => {
            // The place a failure names is compared without its line, as
            // replays compare it: an `expect_error` written with the line
            // (or the template's line, as before failures were located)
            // still holds when an edit above moves the template.
            let text = error_text(&e);
            if e.code() == want
                || text.contains(want.as_str())
                || without_place(&text).contains(&*without_place(want))
            {
                Ok(())
            } else {
                Err(Failure::one(format!(
                    "expected the error {want:?}, got the error {}: {}",
                    e.code(),
                    error_text(&e)
                )))
            }
        }
        (Expectation::Error(want), Ok(got)) => Err(Failure::one(format!(
            "expected the error {want:?}, got an answer of {} message(s){}",
            got.len(),
            got.first()
                .map(|m| format!(", the first {}", describe(&as_expected(m))))
                .unwrap_or_default()
        ))),
    }
}

/// The error as the 422 body shows it: where, then what.
fn error_text(e: &ApiError) -> String {
    match e {
        ApiError::Render { source, .. } => source.to_string(),
        e => e.to_string(),
    }
}

/// A rendered message in the YAML's terms.
fn as_expected(m: &Message) -> ExpectedMessage {
    let qr = |kind, value: &String| ExpectedMessage::Qr {
        kind,
        value: value.clone(),
    };
    match m {
        Message::Text { value } => qr(QrKind::Text, value),
        Message::File { value } => qr(QrKind::File, value),
        Message::Image { value } => qr(QrKind::Image, value),
        Message::Audio { value } => qr(QrKind::Audio, value),
        Message::Template(t) => ExpectedMessage::Template(ExpectedTemplate {
            name: t.name.clone(),
            language: t.language.clone(),
            header: t
                .header
                .as_ref()
                .and_then(|h| h.parameters.first())
                .map(|p| p.value.clone()),
            body: t
                .body
                .as_ref()
                .map(|b| b.parameters.iter().map(|p| p.value.clone()).collect())
                .unwrap_or_default(),
            buttons: t
                .buttons
                .iter()
                .map(|b| b.parameters.first().map(|p| p.value.clone()))
                .collect(),
        }),
    }
}

/// `text "Olá"`, `template ticket_activated`: a message in a few words.
fn describe(m: &ExpectedMessage) -> String {
    match m {
        ExpectedMessage::Qr { kind, value } => format!("{} {}", kind.key(), quoted(value)),
        ExpectedMessage::Template(t) => format!("template {}", quoted(&t.name)),
    }
}

/// Message by message, field by field: `messages[0].text: expected "…" got "…"`.
pub fn diff(expected: &[ExpectedMessage], got: &[ExpectedMessage]) -> Vec<String> {
    let mut lines = Vec::new();
    if expected.len() != got.len() {
        lines.push(format!(
            "expected {} message(s), got {}",
            expected.len(),
            got.len()
        ));
    }
    for i in 0..expected.len().max(got.len()) {
        let at = format!("messages[{i}]");
        match (expected.get(i), got.get(i)) {
            (Some(e), None) => {
                lines.push(format!("{at}: expected {}, got no message", describe(e)))
            }
            (None, Some(g)) => lines.push(format!("{at}: got an extra message, {}", describe(g))),
            (
                Some(ExpectedMessage::Qr {
                    kind: ek,
                    value: ev,
                }),
                Some(ExpectedMessage::Qr {
                    kind: gk,
                    value: gv,
                }),
            ) if ek == gk => {
                field(&mut lines, &format!("{at}.{}", ek.key()), ev, gv);
            }
            (Some(ExpectedMessage::Template(e)), Some(ExpectedMessage::Template(g))) => {
                let at = format!("{at}.template");
                field(&mut lines, &format!("{at}.name"), &e.name, &g.name);
                field(
                    &mut lines,
                    &format!("{at}.language"),
                    &e.language,
                    &g.language,
                );
                optional(
                    &mut lines,
                    &format!("{at}.header"),
                    e.header.as_ref(),
                    g.header.as_ref(),
                );
                list(
                    &mut lines,
                    &format!("{at}.body"),
                    &e.body,
                    &g.body,
                    |l, p, e, g| field(l, p, e, g),
                );
                list(
                    &mut lines,
                    &format!("{at}.buttons"),
                    &e.buttons,
                    &g.buttons,
                    |l, p, e, g| optional(l, p, e.as_ref(), g.as_ref()),
                );
            }
            (Some(e), Some(g)) => lines.push(format!(
                "{at}: expected {}, got {}",
                describe(e),
                describe(g)
            )),
            (None, None) => {}
        }
    }
    lines
}

fn list<T>(
    lines: &mut Vec<String>,
    at: &str,
    expected: &[T],
    got: &[T],
    each: impl Fn(&mut Vec<String>, &str, &T, &T),
) {
    if expected.len() != got.len() {
        lines.push(format!(
            "{at}: expected {} value(s), got {}",
            expected.len(),
            got.len()
        ));
    }
    for (j, (e, g)) in expected.iter().zip(got).enumerate() {
        each(lines, &format!("{at}[{j}]"), e, g);
    }
}

fn optional(lines: &mut Vec<String>, at: &str, expected: Option<&String>, got: Option<&String>) {
    match (expected, got) {
        (Some(e), Some(g)) => field(lines, at, e, g),
        (None, None) => {}
        (Some(e), None) => lines.push(format!("{at}: expected {}, got none", quoted(e))),
        (None, Some(g)) => lines.push(format!("{at}: expected none, got {}", quoted(g))),
    }
}

/// Texts longer than this get a hint at the first difference.
const LONG_TEXT: usize = 40;

fn field(lines: &mut Vec<String>, at: &str, expected: &str, got: &str) {
    if expected == got {
        return;
    }
    let mut line = format!("{at}: expected {} got {}", quoted(expected), quoted(got));
    if expected.chars().count().max(got.chars().count()) > LONG_TEXT {
        line.push_str(&hint(expected, got));
    }
    lines.push(line);
}

/// Where two long texts part: ` (from character 31: expected "…Joã…" got "…Joa…")`.
fn hint(expected: &str, got: &str) -> String {
    let (e, g): (Vec<char>, Vec<char>) = (expected.chars().collect(), got.chars().collect());
    let prefix = e.iter().zip(&g).take_while(|(a, b)| a == b).count();
    let suffix = e[prefix..]
        .iter()
        .rev()
        .zip(g[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    const CONTEXT: usize = 10;
    let window = |s: &[char]| {
        let from = prefix.saturating_sub(CONTEXT);
        let to = (s.len() - suffix + CONTEXT).min(s.len());
        let mut out = String::new();
        if from > 0 {
            out.push('…');
        }
        out.extend(&s[from..to]);
        if to < s.len() {
            out.push('…');
        }
        out
    };
    let mut out = String::new();
    let _ = write!(
        out,
        " (from character {}: expected {} got {})",
        prefix + 1,
        quoted(&window(&e)),
        quoted(&window(&g))
    );
    out
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// A `tests:` entry (as a one-item YAML list) for `recado render
/// --save-test`: the request's `contact` and `data` (the rest is the
/// default request), the calls' answers, and the answer as `expect` (or its
/// error code as `expect_error`).
pub fn entry_yaml(
    name: &str,
    request: &serde_json::Value,
    answers: Option<&serde_json::Value>,
    outcome: &Result<Vec<Message>, ApiError>,
) -> String {
    use serde_yaml::{Mapping, Value as Y};
    let y = |v: &serde_json::Value| serde_yaml::to_value(v).expect("JSON is YAML");
    let mut entry = Mapping::new();
    entry.insert("name".into(), name.into());
    let mut req = Mapping::new();
    if let Some(mut contact) = request.get("contact").cloned() {
        // The only channel: the default's.
        if let Some(c) = contact.as_object_mut() {
            c.remove("type");
        }
        req.insert("contact".into(), y(&contact));
    }
    if let Some(data) = request.get("data") {
        req.insert("data".into(), y(data));
    }
    entry.insert("request".into(), Y::Mapping(req));
    if let Some(answers) = answers {
        entry.insert("enrich".into(), y(answers));
    }
    match outcome {
        Ok(messages) => {
            let list = messages
                .iter()
                .map(|m| {
                    let mut one = Mapping::new();
                    match as_expected(m) {
                        ExpectedMessage::Qr { kind, value } => {
                            one.insert(kind.key().into(), value.into());
                        }
                        ExpectedMessage::Template(t) => {
                            let mut tm = Mapping::new();
                            tm.insert("name".into(), t.name.into());
                            tm.insert("language".into(), t.language.into());
                            if let Some(h) = t.header {
                                tm.insert("header".into(), h.into());
                            }
                            if !t.body.is_empty() {
                                tm.insert("body".into(), t.body.into());
                            }
                            if !t.buttons.is_empty() {
                                let buttons: Vec<Y> = t
                                    .buttons
                                    .into_iter()
                                    .map(|b| b.map_or(Y::Null, Y::from))
                                    .collect();
                                tm.insert("buttons".into(), Y::Sequence(buttons));
                            }
                            one.insert("template".into(), Y::Mapping(tm));
                        }
                    }
                    Y::Mapping(one)
                })
                .collect();
            entry.insert("expect".into(), Y::Sequence(list));
        }
        Err(e) => {
            entry.insert("expect_error".into(), e.code().into());
        }
    }
    serde_yaml::to_string(&vec![Y::Mapping(entry)]).expect("a YAML value serializes")
}

/// Appends `entry` (from [`entry_yaml`]) to the `tests:` of the integration
/// file at `path`, keeping every other byte (comments included): only when
/// `tests:` is absent (it is added at the end) or is the file's last
/// top-level key. The result must parse with the new test last, else
/// nothing is written. Returns the new entry's line; `Err` says why it was
/// not appended.
pub fn append_test(path: &std::path::Path, entry: &str, name: &str) -> Result<usize, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let lines: Vec<&str> = text.lines().collect();
    let top_level =
        |l: &&str| !l.is_empty() && !l.starts_with([' ', '\t', '#', '-']) && !l.starts_with("...");
    let tests_line = lines.iter().position(|l| {
        l.strip_prefix("tests:")
            .is_some_and(|rest| rest.trim().is_empty() || rest.trim_start().starts_with('#'))
    });
    let mut out = text.trim_end_matches('\n').to_owned();
    let indent = match tests_line {
        None => {
            if lines.iter().any(|l| l.starts_with("tests:")) {
                return Err("its `tests:` is not a plain list".into());
            }
            out.push_str("\ntests:");
            2
        }
        Some(k) => {
            if lines[k + 1..].iter().any(top_level) {
                return Err("`tests:` is not the last key of the file".into());
            }
            lines[k + 1..]
                .iter()
                .find(|l| l.trim_start().starts_with('-'))
                .map_or(2, |l| l.len() - l.trim_start().len())
        }
    };
    out.push('\n');
    let line = out.lines().count() + 1;
    for l in entry.lines() {
        if !l.is_empty() {
            out.extend(std::iter::repeat_n(' ', indent));
        }
        out.push_str(l);
        out.push('\n');
    }
    let parsed: crate::config::spec::IntegrationSpec =
        crate::config::yaml::parse(out.as_bytes(), &path.display().to_string())
            .map_err(|e| format!("the file would not parse with the test appended ({e})"))?;
    if parsed.tests.last().is_none_or(|t| t.name != name) {
        return Err("the appended test would not be the file's last".into());
    }
    // Written whole, then renamed over: the watcher never sees a half file.
    let tmp = path.with_file_name(format!(
        ".{}.recado-tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    std::fs::write(&tmp, &out)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot write: {e}")
        })?;
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> ExpectedMessage {
        ExpectedMessage::Qr {
            kind: QrKind::Text,
            value: s.into(),
        }
    }

    #[test]
    fn diff_names_the_field_and_both_values() {
        assert_eq!(
            diff(&[text("Olá, João!")], &[text("Olá, Joao!")]),
            [r#"messages[0].text: expected "Olá, João!" got "Olá, Joao!""#]
        );
        assert!(diff(&[text("a")], &[text("a")]).is_empty());
        let lines = diff(&[text("a"), text("b")], &[text("a")]);
        assert_eq!(lines[0], "expected 2 message(s), got 1");
        assert_eq!(
            lines[1],
            r#"messages[1]: expected text "b", got no message"#
        );
    }

    #[test]
    fn long_texts_get_a_hint_at_the_first_difference() {
        let e = "Seu boleto do pedido A-1001 no valor de R$ 1.234,50 vence amanhã.";
        let g = "Seu boleto do pedido A-1001 no valor de R$ 1.234,05 vence amanhã.";
        let line = &diff(&[text(e)], &[text(g)])[0];
        assert!(
            line.ends_with(r#"(from character 50: expected "… R$ 1.234,50 vence ama…" got "… R$ 1.234,05 vence ama…")"#),
            "{line}"
        );
    }
}
