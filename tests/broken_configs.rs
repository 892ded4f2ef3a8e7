//! Every broken config in `tests/fixtures/broken/` goes through the real
//! loader (the one `recado check`, reload and `render` use) and must produce
//! exactly the lines of its `.expected` file. See that folder's README for
//! the layout. A missing `.expected` is written here and the test fails, so
//! a new case's output is reviewed by eye before it counts.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const TENANT: &str = "padaria";
const OTHER: &str = "outra";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken")
}

/// The cases: `<case>.yaml` files whose name has no other dot.
fn cases() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".yaml").map(str::to_owned))
        .filter(|stem| !stem.contains('.'))
        .collect();
    out.sort();
    out
}

/// What `recado check` prints for one case's folder, minus the folder.
fn run(case: &str) -> String {
    let src = fixtures();
    let root = tempfile::tempdir().unwrap();
    let tenant = root.path().join(TENANT);
    std::fs::create_dir(&tenant).unwrap();
    let own = src.join(format!("{case}.tenant.yaml"));
    let settings = if own.exists() {
        own
    } else {
        src.join("default.tenant")
    };
    std::fs::copy(&settings, tenant.join("tenant.yaml")).unwrap();
    std::fs::copy(
        src.join(format!("{case}.yaml")),
        tenant.join(format!("{case}.yaml")),
    )
    .unwrap();
    let other = src.join(format!("{case}.other-tenant.yaml"));
    if other.exists() {
        // The padaria's file is the older one, so at a cold start the other
        // tenant is the one refused.
        std::fs::File::options()
            .write(true)
            .open(tenant.join("tenant.yaml"))
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        let dir = root.path().join(OTHER);
        std::fs::create_dir(&dir).unwrap();
        std::fs::copy(&other, dir.join("tenant.yaml")).unwrap();
    }
    let snapshot = recado::config::load_dir(root.path());
    let mut out = String::new();
    for e in snapshot.all_errors() {
        out += &format!("{e}\n");
    }
    out
}

#[test]
fn broken_configs_report_exactly_their_errors() {
    let cases = cases();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let got = run(case);
        assert!(!got.is_empty(), "{case}: loads without any error");
        let path = fixtures().join(format!("{case}.expected"));
        match std::fs::read_to_string(&path) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!("{case}:\n--- expected\n{want}--- got\n{got}")),
            Err(_) => {
                std::fs::write(&path, &got).unwrap();
                failures.push(format!(
                    "{case}: wrote {}; review it (every position must point at the fault) and run again:\n{got}",
                    path.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The fixtures are broken for the reason they name only: the same files
/// with the good demo tenant settings and a fixed integration load cleanly,
/// so a case never passes because of an unrelated mistake in the harness.
#[test]
fn the_default_tenant_is_good() {
    let root = tempfile::tempdir().unwrap();
    let tenant = root.path().join(TENANT);
    std::fs::create_dir(&tenant).unwrap();
    std::fs::copy(
        fixtures().join("default.tenant"),
        tenant.join("tenant.yaml"),
    )
    .unwrap();
    std::fs::write(
        tenant.join("ok.yaml"),
        "enrich:\n  c:\n    url: https://erp.example.com/c/{{ contact.key }}\n    headers:\n      Authorization: \"Bearer {{ secrets.erp_token }}\"\nmessages:\n  - text: \"{{ contact.name | first_name }} {{ enrich.c.total | brl }}\"\n",
    )
    .unwrap();
    let snapshot = recado::config::load_dir(root.path());
    assert_eq!(snapshot.all_errors().count(), 0, "{:?}", snapshot.errors);
    assert_eq!(snapshot.integration_count(), 1);
}
