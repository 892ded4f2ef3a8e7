//! The documentation's status tables say exactly what recado answers: every
//! (status, `error.code`) pair recado can produce is in a table, and every
//! pair in a table is one recado produces.

mod common;

use std::collections::BTreeSet;

use recado::error::ApiError;

/// The files whose tables are checked.
const DOCS: &[&str] = &["README.md", "docs/integrations.md"];

/// Cells of a markdown table row (`| a | b |`), trimmed; `None` if the line
/// is not a row.
fn cells(line: &str) -> Option<Vec<&str>> {
    let line = line.trim();
    let inner = line.strip_prefix('|')?.strip_suffix('|')?;
    Some(inner.split('|').map(str::trim).collect())
}

/// The text between the first pair of backticks, if the cell starts with one.
fn leading_code(cell: &str) -> Option<&str> {
    let rest = cell.strip_prefix('`')?;
    Some(&rest[..rest.find('`')?])
}

/// Every (status, code) pair in the tables of `text` that have a `status`
/// column and an `` `error.code` `` column. A row counts when its code cell
/// starts with a backticked code (`` `unauthorized` ``, possibly followed by
/// remarks) and its status cell with a backticked status (`` `401` ``); other
/// rows (the `200` answers, summaries that point to another table) do not.
fn documented_pairs(name: &str, text: &str) -> BTreeSet<(u16, String)> {
    let mut pairs = BTreeSet::new();
    let mut columns: Option<(usize, usize)> = None;
    for (n, line) in text.lines().enumerate() {
        let Some(row) = cells(line) else {
            columns = None;
            continue;
        };
        if row
            .iter()
            .all(|c| c.chars().all(|ch| matches!(ch, '-' | ':')))
        {
            continue; // the separator under the header
        }
        match columns {
            None => {
                let status = row.iter().position(|c| *c == "status");
                let code = row.iter().position(|c| *c == "`error.code`");
                // A table without both columns is skipped to its end.
                columns = Some(match (status, code) {
                    (Some(s), Some(c)) => (s, c),
                    _ => (usize::MAX, usize::MAX),
                });
            }
            Some((usize::MAX, _)) => {}
            Some((s, c)) => {
                let (Some(status), Some(code)) = (row.get(s), row.get(c)) else {
                    panic!("{name}:{}: a row with too few cells: {line}", n + 1);
                };
                let Some(code) = leading_code(code) else {
                    continue;
                };
                if code.is_empty() || !code.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_') {
                    continue;
                }
                let status: u16 = leading_code(status)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| {
                        panic!(
                            "{name}:{}: code `{code}` without a status like `404`: {line}",
                            n + 1
                        )
                    });
                pairs.insert((status, code.to_owned()));
            }
        }
    }
    pairs
}

#[test]
fn the_status_tables_match_the_errors_recado_produces() {
    let mut documented = BTreeSet::new();
    for doc in DOCS {
        let text = String::from_utf8(common::read(common::repo().join(doc))).unwrap();
        documented.extend(documented_pairs(doc, &text));
    }
    let produced: BTreeSet<(u16, String)> = ApiError::examples()
        .iter()
        .map(|e| (e.status().as_u16(), e.code().to_owned()))
        .collect();

    let missing: Vec<_> = produced.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&produced).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "status tables in {DOCS:?} are out of date\n  \
         produced by recado but not documented: {missing:?}\n  \
         documented but never produced: {stale:?}"
    );
}

#[test]
fn the_table_parser_reads_rows_and_skips_the_rest() {
    let text = "\
| situation | status | `error.code` |
|---|---|---|
| ok | `200` | a JSON array |
| bad | `400` | `invalid_request`, with `path` (`contact.name`) |
| busy | `429` + `Retry-After: 1` | `tenant_busy` |
| upstream | `502`/`504` | see the table above (`upstream_*`) |

| key | sends |
|---|---|
| `text` | `a` |
";
    let got = documented_pairs("test", text);
    let want: BTreeSet<(u16, String)> = [
        (400, "invalid_request".to_owned()),
        (429, "tenant_busy".to_owned()),
    ]
    .into();
    assert_eq!(got, want);
}
