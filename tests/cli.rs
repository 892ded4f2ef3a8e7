//! The `recado` binary as operators run it.

mod common;

use std::process::Command;

fn recado(args: &[&str], cwd: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_recado"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn check_passes_on_the_demo_tenant() {
    // The tests' fixed copy of the demo tenant, and the shipped demo tenant
    // alone: what an operator adds elsewhere under integrations/ is not
    // this test's business.
    let shipped = common::shipped_demo();
    for dir in ["tests/data/integrations", shipped.path().to_str().unwrap()] {
        let (code, out, err) = recado(&["check", dir], &common::repo());
        assert_eq!(code, 0, "{dir}: {out}{err}");
        assert!(err.contains("0 error(s)"), "{dir}: {err}");
    }
}

#[test]
fn check_prints_every_error_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    common::write_files(
        dir.path(),
        &[
            (
                "acme/tenant.yaml",
                "client_ids: [1]\ntokens: [acme-token-1]\n",
            ),
            // YAML syntax: the quoted string is never closed.
            (
                "acme/a_syntax.yaml",
                "messages:\n  - text: hi\n  - text: \"oops\n",
            ),
            // Unknown key: `txt` on line 3, column 5.
            (
                "acme/b_unknown.yaml",
                "messages:\n  - text: hi\n    txt: typo\n",
            ),
            // Template syntax: the filter name is missing, inside a block scalar.
            (
                "acme/c_template.yaml",
                "messages:\n  - text: |\n      Olá\n      {{ contact.name | }}\n",
            ),
            ("acme/d_good.yaml", "messages:\n  - text: ok\n"),
        ],
    );
    let (code, out, _) = recado(&["check", dir.path().to_str().unwrap()], &common::repo());
    assert_ne!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let root = dir.path().display().to_string();
    assert!(
        // At the quote that is never closed, not where the file ends.
        lines[0].starts_with(&format!("{root}/acme/a_syntax.yaml:3:11: ")),
        "{out}"
    );
    assert!(
        lines[0].contains("while scanning a quoted scalar at line 3 column 11"),
        "{out}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{root}/acme/b_unknown.yaml:3:5: messages[0]: unknown field `txt`"
        )),
        "{out}"
    );
    // Line 4 of the file, column 25: the `}}` right after the dangling `|`.
    assert!(
        lines[2].starts_with(&format!(
            "{root}/acme/c_template.yaml:4:25: messages[0].text: template syntax error"
        )),
        "{out}"
    );
}

#[test]
fn render_is_a_dry_run_of_an_integration() {
    let repo = common::repo();
    let (code, out, err) = recado(
        &[
            "render",
            "--dir",
            "tests/data/integrations",
            "demo/boleto",
            "tests/data/workload/request.json",
        ],
        &repo,
    );
    assert_eq!(code, 0, "{err}");
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got, common::json(common::workload("expected.json")));

    let (code, _, err) = recado(
        &[
            "render",
            "--dir",
            "tests/data/integrations",
            "demo/boleto",
            "tests/data/workload/bad-request-noname.json",
        ],
        &repo,
    );
    assert_ne!(code, 0);
    assert!(err.contains("contact.name"), "{err}");

    let (code, _, err) = recado(
        &[
            "render",
            "--dir",
            "tests/data/integrations",
            "demo/cobranca",
            "examples/boleto.json",
        ],
        &repo,
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("integrations/demo/cobranca.yaml: messages[0].when"),
        "{err}"
    );
}

/// `serve` refuses a studio session key that is short or the shipped
/// manifest's placeholder, before it listens.
#[test]
fn serve_refuses_a_weak_studio_session_key() {
    for (key, says) in [
        ("short", "at least 32 characters"),
        (
            "change-me-studio-session-key-32-characters-or-more",
            "placeholder",
        ),
    ] {
        let (code, _, err) = recado(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--dir",
                "tests/data/integrations",
                "--studio-session-key",
                key,
            ],
            &common::repo(),
        );
        assert_ne!(code, 0, "{key}");
        assert!(err.contains(says), "{key}: {err}");
    }
}
