//! Filters a Brazilian operator needs that minijinja and minijinja-contrib do
//! not have. Dates use contrib's `dateformat`/`datetimeformat`, whose default
//! formats recado sets to `dd/mm/yyyy` (see [`crate::config::compile`]).

use minijinja::value::Kwargs;
use minijinja::{Environment, Error, ErrorKind, State, Value};

/// Registered after minijinja-contrib's filters, so `dateformat` here wraps
/// contrib's.
pub fn register(env: &mut Environment<'_>) {
    env.add_filter("dateformat", dateformat);
    env.add_filter("datetimeformat", datetimeformat);
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

/// contrib's `dateformat`, in Portuguese (see [`in_portuguese`]), with its
/// most common call done directly: an ISO date (`"2026-12-10"`, a boleto's
/// due date) in the default format. That call went through a general date
/// parser, a time zone conversion and a strftime interpreter, about a tenth
/// of a whole webhook's CPU. Anything else, errors included, is contrib's.
pub fn dateformat(state: &State, value: Value, kwargs: Kwargs) -> Result<String, Error> {
    if let Some(iso) = value.as_str().filter(|_| kwargs.args().next().is_none()) {
        if let Some(out) = iso_date_default(state, iso) {
            return Ok(out);
        }
    }
    let named = |name: &str| match name {
        "short" => Some("%d/%m/%Y"),
        "medium" => Some("%-d de %b de %Y"),
        "long" => Some("%-d de %B de %Y"),
        "full" => Some("%A, %-d de %B de %Y"),
        _ => None,
    };
    in_portuguese(
        minijinja_contrib::filters::dateformat,
        "DATE_FORMAT",
        named,
        state,
        value,
        kwargs,
    )
}

/// contrib's `datetimeformat`, in Portuguese (see [`in_portuguese`]).
pub fn datetimeformat(state: &State, value: Value, kwargs: Kwargs) -> Result<String, Error> {
    let named = |name: &str| match name {
        "short" => Some("%d/%m/%Y %H:%M"),
        "medium" => Some("%-d de %b de %Y %H:%M"),
        "long" => Some("%-d de %B de %Y %H:%M:%S"),
        "full" => Some("%A, %-d de %B de %Y %H:%M:%S"),
        _ => None,
    };
    in_portuguese(
        minijinja_contrib::filters::datetimeformat,
        "DATETIME_FORMAT",
        named,
        state,
        value,
        kwargs,
    )
}

type DateFilter = fn(&State, Value, Kwargs) -> Result<String, Error>;

const MONTHS: [&str; 12] = [
    "janeiro",
    "fevereiro",
    "março",
    "abril",
    "maio",
    "junho",
    "julho",
    "agosto",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
];
const WEEKDAYS: [&str; 7] = [
    "domingo",
    "segunda-feira",
    "terça-feira",
    "quarta-feira",
    "quinta-feira",
    "sexta-feira",
    "sábado",
];
/// Wraps a name's number in the pattern given to contrib: `\u{1}` is never
/// in a real pattern or in what contrib prints.
const MARK: char = '\u{1}';

/// Runs contrib's date `filter` so that month and weekday names come out in
/// Portuguese (`%B` → `dezembro`, `%b` → `dez`, `%A` → `quinta-feira`, `%a`
/// → `qui`) and the named formats (`short`, `medium`, `long`, `full`) in
/// Brazilian order. contrib (jiff) only prints English names, so each name
/// is asked for as its number between marks and replaced afterwards.
fn in_portuguese(
    filter: DateFilter,
    global: &str,
    named: impl Fn(&str) -> Option<&'static str>,
    state: &State,
    value: Value,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let configured = state.lookup(global);
    let format = kwargs
        .get::<Option<&str>>("format")?
        .or_else(|| configured.as_ref().and_then(|v| v.as_str()))
        .unwrap_or("medium");
    let format = named(format).unwrap_or(format);
    let tz = kwargs.get::<Option<Value>>("tz")?;
    kwargs.assert_all_used()?;
    let mut pattern = String::with_capacity(format.len() + 8);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            pattern.push(c);
            continue;
        }
        match chars.next() {
            Some(kind @ ('B' | 'b' | 'h')) => {
                let kind = if kind == 'B' { 'B' } else { 'b' };
                pattern.extend([MARK, kind, '%', 'm', MARK]);
            }
            Some(kind @ ('A' | 'a')) => pattern.extend([MARK, kind, '%', 'w', MARK]),
            Some(other) => pattern.extend(['%', other]),
            None => pattern.push('%'),
        }
    }
    let mut args = vec![("format", Value::from(pattern))];
    args.extend(tz.map(|tz| ("tz", tz)));
    let printed = filter(state, value, Kwargs::from_iter(args))?;
    if !printed.contains(MARK) {
        return Ok(printed);
    }
    let mut out = String::with_capacity(printed.len());
    let mut parts = printed.split(MARK);
    out.push_str(parts.next().unwrap_or_default());
    while let (Some(name), Some(text)) = (parts.next(), parts.next()) {
        let (kind, number) = name.split_at(1);
        let n: usize = number.parse().unwrap_or_default();
        let word = match kind {
            "B" | "b" => MONTHS.get(n.wrapping_sub(1)),
            _ => WEEKDAYS.get(n),
        }
        .copied()
        .unwrap_or_default();
        if kind == "B" || kind == "A" {
            out.push_str(word);
        } else {
            out.extend(word.chars().take(3));
        }
        out.push_str(text);
    }
    Ok(out)
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
                // The value itself is personal data: named by type only.
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("{filter}: expected a number, got text that is not a number (numbers may come as text like \"1234.50\", nothing else)"),
                )
            });
    }
    f64::try_from(value.clone()).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "{filter}: expected a number, got {}",
                match value.kind() {
                    minijinja::value::ValueKind::Map => "a mapping",
                    minijinja::value::ValueKind::Seq | minijinja::value::ValueKind::Iterable =>
                        "a list",
                    minijinja::value::ValueKind::Bool => "true/false",
                    minijinja::value::ValueKind::None => "null",
                    _ => "something else",
                }
            ),
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
    fn dates_in_portuguese() {
        let env = crate::config::compile::environment(&crate::config::compile::CompileOptions {
            timezone: "America/Sao_Paulo".into(),
            fuel: 10_000,
        });
        let r = |tpl: &str| {
            env.render_str(
                tpl,
                minijinja::context! { d => "2026-12-10", t => "2026-03-01T13:05:00Z" },
            )
            .unwrap()
        };
        assert_eq!(r("{{ d | dateformat }}"), "10/12/2026");
        assert_eq!(
            r("{{ d | dateformat(format='long') }}"),
            "10 de dezembro de 2026"
        );
        assert_eq!(
            r("{{ d | dateformat(format='full') }}"),
            "quinta-feira, 10 de dezembro de 2026"
        );
        assert_eq!(
            r("{{ d | dateformat(format='%a %d %b %h') }}"),
            "qui 10 dez dez"
        );
        assert_eq!(
            r("{{ d | dateformat(format='100%% %B') }}"),
            "100% dezembro"
        );
        assert_eq!(r("{{ t | datetimeformat }}"), "01/03/2026 10:05");
        assert_eq!(
            r("{{ t | datetimeformat(format='full') }}"),
            "domingo, 1 de março de 2026 10:05:00"
        );
        assert_eq!(
            r("{{ t | datetimeformat(format='%A %H:%M', tz='UTC') }}"),
            "domingo 13:05"
        );
        assert_eq!(
            r("{{ t | dateformat(format='%a', tz='Asia/Tokyo') }}"),
            "dom"
        );
        let err = env.render_str(
            "{{ d | dateformat(colour='red') }}",
            minijinja::context! { d => "2026-12-10" },
        );
        assert!(err.is_err());
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
