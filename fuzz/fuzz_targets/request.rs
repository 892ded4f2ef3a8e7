//! Arbitrary bytes as a platform request body: parsing must never panic, and
//! a request that parses must render through every shipped integration
//! (without upstream calls) without panicking. And `data` as recado keeps
//! it (`recado::request::Payload`) must equal `data` deserialized straight
//! into a minijinja value, as it was built before.
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
    #[derive(serde::Deserialize)]
    struct Plain {
        #[serde(default)]
        data: Option<minijinja::Value>,
    }
    let plain: Plain = serde_json::from_slice(body).expect("a body recado parses parses plainly");
    let want = plain.data.unwrap_or_else(|| minijinja::Value::from(std::collections::BTreeMap::<String, minijinja::Value>::new()));
    let got = req.data.value();
    assert_eq!(got, want);
    assert_eq!(format!("{got:?}"), format!("{want:?}"));
    let ctx = request_context(&req);
    for tenant in SHIPPED.tenants.values() {
        for integration in tenant.integrations.values() {
            if integration.program.borrow_dependent().calls.is_empty() {
                let _ = render(&integration.program, &ctx, 50);
            }
        }
    }
});
