//! `recado schema` describes the files the loader accepts: every shipped file
//! validates, and a file with an unknown key does not.

mod common;

use std::process::Command;

use serde_json::Value;

fn schema(kind: &str) -> jsonschema::Validator {
    let out = Command::new(env!("CARGO_BIN_EXE_recado"))
        .args(["schema", kind])
        .output()
        .unwrap();
    assert!(out.status.success());
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn yaml(text: &str) -> Value {
    serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(text).unwrap()).unwrap()
}

#[test]
fn every_shipped_file_validates_and_unknown_keys_do_not() {
    let integration = schema("integration");
    let tenant = schema("tenant");
    let mut checked = 0;
    // The shipped demo tenant and the tests' copy of it; not the whole of
    // integrations/, where an operator may be editing.
    let dirs = [
        common::repo().join("integrations/demo"),
        common::fixtures().join("demo"),
    ];
    for dir in dirs {
        for file in std::fs::read_dir(dir).unwrap() {
            let path = file.unwrap().path();
            // templates.json is the WhatsApp API's answer, not a recado file.
            if path.extension().is_some_and(|e| e == "json") {
                continue;
            }
            let doc = yaml(&std::fs::read_to_string(&path).unwrap());
            let validator = if path.ends_with("tenant.yaml") {
                &tenant
            } else {
                &integration
            };
            let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} files checked");

    let typo = yaml("messages:\n  - text: hi\n    txt: typo\n");
    assert!(
        !integration.is_valid(&typo),
        "an unknown key in a message passed"
    );
    let top = yaml("mesages:\n  - text: hi\n");
    assert!(
        !integration.is_valid(&top),
        "an unknown top-level key passed"
    );
    let two = yaml("messages:\n  - text: hi\n    file: https://x.example/a.pdf\n");
    assert!(
        !integration.is_valid(&two),
        "two content keys in one message passed"
    );
    let call = yaml(
        "enrich:\n  c:\n    url: https://x.example\n    tiemout: 2s\nmessages:\n  - text: hi\n",
    );
    assert!(
        !integration.is_valid(&call),
        "an unknown key in a call passed"
    );
    let bad_tenant = yaml("client_ids: [1]\ntokens: [abcdefgh]\ntoken: x\n");
    assert!(
        !tenant.is_valid(&bad_tenant),
        "an unknown tenant key passed"
    );
}
