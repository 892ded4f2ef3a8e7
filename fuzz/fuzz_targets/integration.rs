//! Arbitrary bytes as an integration file: loading must never panic (errors
//! are fine), and whatever loads must render a fixed request without
//! panicking, within its fuel.
//!
//! The same bytes as one template: wherever the interpolation fast path
//! answers, its answer must be exactly minijinja's.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use minijinja::{Environment, Value};
use recado::config::compile::{environment, CompileOptions, DEFAULT_FUEL};
use recado::config::interpolation::Interpolation;
use recado::config::load_integration;
use recado::render::{render, request_context};
use recado::request::PlatformRequest;

static REQUEST: LazyLock<std::sync::Arc<PlatformRequest>> = LazyLock::new(|| {
    PlatformRequest::parse(include_bytes!("../../examples/cobranca.json")).expect("the example parses")
});
static OPTS: LazyLock<CompileOptions> =
    LazyLock::new(|| CompileOptions { timezone: "America/Sao_Paulo".into(), fuel: DEFAULT_FUEL });
static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| environment(&OPTS));
static CTX: LazyLock<Value> = LazyLock::new(|| request_context(&REQUEST));

fuzz_target!(|yaml: &[u8]| {
    if let Ok(integration) = load_integration(yaml, "fuzz/x.yaml", "x", &OPTS, &Default::default(), None) {
        if integration.program.borrow_dependent().calls.is_empty() {
            let _ = render(&integration.program, &CTX, 50);
        }
    }
    let Ok(source) = std::str::from_utf8(yaml) else { return };
    let Some(fast) = Interpolation::parse(source) else { return };
    let Some(out) = fast.render(&CTX) else { return };
    // recado only ever takes the fast path for a template that compiled.
    let template = ENV.template_from_str(source);
    assert!(template.is_ok(), "the fast path accepts what minijinja rejects: {source:?}");
    let slow = template.and_then(|t| t.render(&*CTX));
    assert_eq!(Ok(out), slow.map_err(|e| e.to_string()), "{source:?}");
});
