//! Arbitrary bytes as a platform request body: parsing must never panic, and
//! a request that parses must render through every shipped integration
//! (without upstream calls) without panicking. And `data` as recado keeps
//! it (`recado::request::Payload`) must equal `data` deserialized straight
//! into a minijinja value, as it was built before: the input itself read
//! both ways as a payload (same acceptance, errors, value and lookups), and
//! a request's `data`.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use recado::config::{load_dir, Snapshot};
use recado::render::{render, request_context};
use recado::request::{Payload, PlatformRequest};

static SHIPPED: LazyLock<Snapshot> =
    LazyLock::new(|| load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/integrations").as_ref()));

/// The input as a payload both ways: recado's `Payload` and minijinja's
/// value must accept and refuse the same texts, with the same error, and
/// agree on the value and on each top-level key's.
fn payload_agrees(text: &[u8]) {
    let empty = || minijinja::Value::from(std::collections::BTreeMap::<String, minijinja::Value>::new());
    let ours = serde_json::from_slice::<Payload>(text);
    let theirs = serde_json::from_slice::<Option<minijinja::Value>>(text);
    let (ours, want) = match (ours, theirs) {
        (Err(a), Err(b)) => return assert_eq!(a.to_string(), b.to_string()),
        (Ok(ours), Ok(theirs)) => (ours, theirs.unwrap_or_else(empty)),
        (a, b) => panic!("payload {:?} but minijinja {:?}", a.map(|p| p.value()), b),
    };
    let got = ours.value();
    assert_eq!(got, want);
    assert_eq!(format!("{got:?}"), format!("{want:?}"));
    if want.kind() == minijinja::value::ValueKind::Map {
        for key in want.try_iter().unwrap() {
            let Some(name) = key.as_str() else { continue };
            let found = ours.get(name).unwrap_or_else(|| panic!("{name} is not found")).into_value();
            assert_eq!(found, want.get_item(&key).unwrap());
        }
    }
}

fuzz_target!(|body: &[u8]| {
    payload_agrees(body);
    let Ok(req) = PlatformRequest::parse(body) else { return };
    // `data` as recado reads it: from its own text, so the depth limit
    // counts from `data` (as the two-pass parse of a large body does).
    #[derive(serde::Deserialize)]
    struct Raw<'a> {
        #[serde(default, borrow)]
        data: Option<&'a serde_json::value::RawValue>,
    }
    let raw: Raw = serde_json::from_slice(body).expect("a body recado parses has a `data` to scan");
    let empty = || minijinja::Value::from(std::collections::BTreeMap::<String, minijinja::Value>::new());
    let want = match raw.data {
        None => empty(),
        Some(text) => serde_json::from_str::<Option<minijinja::Value>>(text.get())
            .expect("recado parsed this `data`, so minijinja's value of it parses too")
            .unwrap_or_else(empty),
    };
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
