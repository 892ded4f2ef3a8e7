//! Arbitrary bytes as an integration file: loading must never panic (errors
//! are fine), and whatever loads must render a fixed request without
//! panicking, within its fuel.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use recado::config::compile::{CompileOptions, DEFAULT_FUEL};
use recado::config::load_integration;
use recado::render::{render, request_context};
use recado::request::PlatformRequest;

static REQUEST: LazyLock<PlatformRequest> = LazyLock::new(|| {
    PlatformRequest::parse(include_bytes!("../../examples/cobranca.json")).expect("the example parses")
});

fuzz_target!(|yaml: &[u8]| {
    let opts = CompileOptions { timezone: "America/Sao_Paulo".into(), fuel: DEFAULT_FUEL };
    if let Ok(integration) = load_integration(yaml, "fuzz/x.yaml", "x", &opts) {
        if integration.program.borrow_dependent().calls.is_empty() {
            let _ = render(&integration.program, &request_context(&REQUEST), 50);
        }
    }
});
