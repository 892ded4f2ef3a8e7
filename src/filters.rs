//! Filters a Brazilian operator needs that minijinja and minijinja-contrib do
//! not have. Dates use contrib's `dateformat`/`datetimeformat`, whose default
//! formats recado sets to `dd/mm/yyyy` (see [`crate::config::compile`]).

use minijinja::{Environment, Error, ErrorKind, Value};

pub fn register(env: &mut Environment<'_>) {
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
    fn names_and_phones() {
        assert_eq!(first_name("João da Silva").unwrap(), "João");
        assert_eq!(first_name("  MARIA  ").unwrap(), "Maria");
        assert!(first_name("   ").is_err());
        assert_eq!(phone_br("5513999999999"), "+55 (13) 99999-9999");
        assert_eq!(phone_br("1133334444"), "(11) 3333-4444");
        assert_eq!(phone_br("123"), "123");
    }
}
