//! Arbitrary bytes as a platform request body: parsing must never panic, and
//! a request that parses must render through every shipped integration
//! (without upstream calls) without panicking.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use recado::config::{load_dir, Snapshot};
use recado::render::{render, request_context};
use recado::request::PlatformRequest;

static SHIPPED: LazyLock<Snapshot> =
    LazyLock::new(|| load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/integrations").as_ref()));

fuzz_target!(|body: &[u8]| {
    let Ok(req) = PlatformRequest::parse(body) else { return };
    let ctx = request_context(&req);
    for tenant in SHIPPED.tenants.values() {
        for integration in tenant.integrations.values() {
            if integration.program.borrow_dependent().calls.is_empty() {
                let _ = render(&integration.program, &ctx, 50);
            }
        }
    }
});
