//! Filters a Brazilian operator needs that minijinja and minijinja-contrib do
//! not have. Dates use contrib's `dateformat`/`datetimeformat`, whose default
//! formats recado sets to `dd/mm/yyyy` (see [`crate::config::compile`]).

use minijinja::value::Kwargs;
use minijinja::{Environment, Error, ErrorKind, State, Value};

/// Registered after minijinja-contrib's filters, so `dateformat` here wraps
/// contrib's.
pub fn register(env: &mut Environment<'_>) {
    env.add_filter("dateformat", dateformat);
    env.add_filter("brl", brl);
    env.add_filter("number_br", number_br);
    env.add_filter("first_name", first_name);
    env.add_filter("phone_br", phone_br);
}

/// `1234.5 | brl` → `R$ 1.234,50`. Accepts numbers and numeric strings
/// (`"1234.50"`, as many systems send money).
pub fn brl(value: Value) -> Result<String, Error> {
    let n = to_number(&value, "brl")?;
    let sign = if n < 0.0 { "-" } else { "" };
    Ok(format!("{sign}R$ {}", group_br(n.abs(), 2)))
}

/// `1234.5 | number_br` → `1.234,50`; `number_br(0)` → `1.235`.
pub fn number_br(value: Value, decimals: Option<u8>) -> Result<String, Error> {
    let n = to_number(&value, "number_br")?;
    let sign = if n < 0.0 { "-" } else { "" };
    Ok(format!(
        "{sign}{}",
        group_br(n.abs(), decimals.unwrap_or(2).min(10) as usize)
    ))
}

/// `"joão da silva" | first_name` → `João`. Fails on a blank name, so a
/// greeting can never go out as "Olá, !".
pub fn first_name(value: &str) -> Result<String, Error> {
    let word = value
        .split_whitespace()
        .next()
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "first_name: the name is empty"))?;
    let mut chars = word.chars();
    let first = chars
        .next()
        .expect("split_whitespace yields non-empty words");
    Ok(first
        .to_uppercase()
        .chain(chars.flat_map(char::to_lowercase))
        .collect())
}

/// `"5513999999999" | phone_br` → `+55 (13) 99999-9999`. Other shapes are
/// returned unchanged: a number is better shown raw than wrongly formatted.
pub fn phone_br(value: &str) -> String {
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    let (cc, rest) = match digits.len() {
        12 | 13 if digits.starts_with("55") => ("+55 ", &digits[2..]),
        10 | 11 => ("", &digits[..]),
        _ => return value.to_owned(),
    };
    let (ddd, local) = rest.split_at(2);
    let (a, b) = local.split_at(local.len() - 4);
    format!("{cc}({ddd}) {a}-{b}")
}

/// What `DATE_FORMAT` is unless an operator changes it.
pub const DEFAULT_DATE_FORMAT: &str = "%d/%m/%Y";

/// contrib's `dateformat`, with its most common call done directly: an ISO
/// date (`"2026-12-10"`, a boleto's due date) in the default format. That
/// call went through a general date parser, a time zone conversion and a
/// strftime interpreter, about a tenth of a whole webhook's CPU. Anything
/// else, errors included, is contrib's.
pub fn dateformat(state: &State, value: Value, kwargs: Kwargs) -> Result<String, Error> {
    if let Some(iso) = value.as_str().filter(|_| kwargs.args().next().is_none()) {
        if let Some(out) = iso_date_default(state, iso) {
            return Ok(out);
        }
    }
    minijinja_contrib::filters::dateformat(state, value, kwargs)
}

/// `2026-12-10` → `10/12/2026` when `DATE_FORMAT` is the default and the
/// date exists; `None` sends the call to contrib.
fn iso_date_default(state: &State, iso: &str) -> Option<String> {
    let out = iso_date_in_default_format(iso)?;
    let format = state.lookup("DATE_FORMAT")?;
    (format.as_str()? == DEFAULT_DATE_FORMAT).then_some(out)
}

/// `2026-12-10` → `10/12/2026`, as contrib's `dateformat` prints it in
/// [`DEFAULT_DATE_FORMAT`]; `None` unless `iso` is exactly an existing
/// `YYYY-MM-DD` date from year 1000 on.
pub fn iso_date_in_default_format(iso: &str) -> Option<String> {
    let b = iso.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(0..4) || !digits(5..7) {
        return None;
    }
    if !digits(8..10) || b[0] == b'0' {
        return None;
    }
    let (year, month, day) = (&iso[0..4], &iso[5..7], &iso[8..10]);
    jiff::civil::Date::new(year.parse().ok()?, month.parse().ok()?, day.parse().ok()?).ok()?;
    Some(format!("{day}/{month}/{year}"))
}

fn to_number(value: &Value, filter: &str) -> Result<f64, Error> {
    if let Some(s) = value.as_str() {
        return s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("{filter}: `{s}` is not a number"),
                )
            });
    }
    f64::try_from(value.clone()).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("{filter}: expected a number, got {}", value.kind()),
        )
    })
}

/// Formats a non-negative number with `.` between thousands and `,` before
/// the decimals, rounding half away from zero as people do with money.
/// Integer arithmetic: float formatting with a precision is slow and this
/// runs for most messages.
fn group_br(n: f64, decimals: usize) -> String {
    let scale = 10u128.pow(decimals as u32);
    // The epsilon makes 0.125 round to 0.13 like the decimal it was meant as.
    let scaled = (n * scale as f64 + 1e-7).round() as u128;
    let (int_part, frac) = (scaled / scale, scaled % scale);
    let mut digits = itoa::Buffer::new();
    let int_digits = digits.format(int_part);
    let mut out = String::with_capacity(int_digits.len() + int_digits.len() / 3 + decimals + 1);
    for (i, c) in int_digits.chars().enumerate() {
        if i > 0 && (int_digits.len() - i) % 3 == 0 {
            out.push('.');
        }
        out.push(c);
    }
    if decimals > 0 {
        let mut frac_digits = itoa::Buffer::new();
        let frac_digits = frac_digits.format(frac);
        out.push(',');
        out.extend(std::iter::repeat_n('0', decimals - frac_digits.len()));
        out.push_str(frac_digits);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money() {
        assert_eq!(brl(Value::from(1234.5)).unwrap(), "R$ 1.234,50");
        assert_eq!(brl(Value::from(0)).unwrap(), "R$ 0,00");
        assert_eq!(brl(Value::from(1_000_000)).unwrap(), "R$ 1.000.000,00");
        assert_eq!(brl(Value::from("99.999")).unwrap(), "R$ 100,00");
        assert_eq!(brl(Value::from(0.125)).unwrap(), "R$ 0,13");
        assert_eq!(brl(Value::from(-12.3)).unwrap(), "-R$ 12,30");
        assert!(brl(Value::from("abc")).is_err());
        assert_eq!(number_br(Value::from(1234.5), Some(0)).unwrap(), "1.235");
    }

    #[test]
    fn dateformat_fast_path_agrees_with_contrib() {
        let env = crate::config::compile::environment(&crate::config::compile::CompileOptions {
            timezone: "America/Sao_Paulo".into(),
            fuel: 10_000,
        });
        let mut contrib = Environment::new();
        minijinja_contrib::add_to_environment(&mut contrib);
        contrib.add_global("DATE_FORMAT", DEFAULT_DATE_FORMAT);
        contrib.add_global("TIMEZONE", "America/Sao_Paulo");
        let render = |env: &Environment, tpl: &str, v: &str| {
            env.render_str(tpl, minijinja::context! { v => v })
                .map_err(|e| e.to_string())
        };
        for v in [
            "2026-12-10",
            "2024-02-29",
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "0999-01-01",
            "2026-1-10",
            "2026-12-10T10:00:00-03:00",
            "2026-12-10 10:00",
            "10/12/2026",
            "",
        ] {
            for tpl in ["{{ v | dateformat }}", "{{ v | dateformat(format='%Y') }}"] {
                assert_eq!(
                    render(&env, tpl, v),
                    render(&contrib, tpl, v),
                    "{tpl} on {v:?}"
                );
            }
        }
        assert_eq!(
            render(&env, "{{ v | dateformat }}", "2026-12-10").unwrap(),
            "10/12/2026"
        );
        let other = "{% set DATE_FORMAT = '%Y' %}{{ v | dateformat }}";
        assert_eq!(render(&env, other, "2026-12-10").unwrap(), "2026");
    }

    #[test]
    fn names_and_phones() {
        assert_eq!(first_name("João da Silva").unwrap(), "João");
        assert_eq!(first_name("  MARIA  ").unwrap(), "Maria");
        assert!(first_name("   ").is_err());
        assert_eq!(phone_br("5513999999999"), "+55 (13) 99999-9999");
        assert_eq!(phone_br("1133334444"), "(11) 3333-4444");
        assert_eq!(phone_br("123"), "123");
    }
}
