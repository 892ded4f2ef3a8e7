//! `brl` and `number_br`: amounts printed the Brazilian way, exactly.
//!
//! Every input (integer, float or decimal string) becomes an exact decimal
//! without going through `f64` arithmetic: a float is first written as the
//! shortest decimal that reads back as it (`ryu`; the amount its sender
//! wrote, `2.675`, not 2.67499999999999982236…). The amount is then rounded
//! half away from zero (what Brazilian banks print: `0,005` → `0,01`,
//! `-1,005` → `-1,01`), and only then gets its sign: an amount that rounds
//! to zero never prints as `-R$ 0,00`.
//!
//! Amounts of 10^13 (R$ 10 trilhões) or more, in absolute value, are
//! refused with a filter error whatever their type, and so are NaN and
//! infinities: beyond that a JSON number (an `f64`) no longer carries every
//! cent of the amount its sender wrote, and no real message needs more.
//!
//! The arithmetic is plain integers (an amount is at most 24 digits, well
//! within a `u128`), checked against `rust_decimal` by this module's tests.

use minijinja::{Error, ErrorKind, Value};

/// Amounts must be below this in absolute value (10^13).
const LIMIT: f64 = 1e13;
/// Digits before the point of the largest accepted amount.
const LIMIT_DIGITS: i64 = 13;
/// The most decimals `number_br` prints.
const MAX_DECIMALS: u8 = 10;
/// Fractional digits kept from an input. Rounding half away from zero to
/// `d` decimals depends only on the digit `d + 1` (≥ 5 rounds up), so
/// cutting the rest off is exact for every `d` up to [`MAX_DECIMALS`].
const KEPT_FRACTION: u32 = MAX_DECIMALS as u32 + 1;

/// An amount cut (toward zero) to [`KEPT_FRACTION`] decimals:
/// `±units × 10^-KEPT_FRACTION`, with `units < 10^24`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Amount {
    negative: bool,
    units: u128,
}

/// `1234.5 | brl` → `R$ 1.234,50`. Accepts integers, floats and decimal
/// strings (`"1234.50"`, as many systems send money).
pub fn brl(value: Value) -> Result<String, Error> {
    let mut out = String::with_capacity(24);
    brl_into(&mut out, &value)?;
    Ok(out)
}

/// [`brl`], appended to `out` (the template's text); nothing is appended
/// on an error.
pub fn brl_into(out: &mut String, value: &Value) -> Result<(), Error> {
    let (negative, count) = rounded_count(value, "brl", 2)?;
    if negative {
        out.push('-');
    }
    out.push_str("R$ ");
    group_br_into(out, count, 2);
    Ok(())
}

/// `1234.5 | number_br` → `1.234,50`; `number_br(0)` → `1.235`. At most 10
/// decimals.
pub fn number_br(value: Value, decimals: Option<u8>) -> Result<String, Error> {
    let decimals = decimals.unwrap_or(2).min(MAX_DECIMALS);
    let (negative, digits) = rounded(&value, "number_br", decimals)?;
    Ok(if negative {
        format!("-{digits}")
    } else {
        digits
    })
}

fn error(filter: &str, message: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidOperation, format!("{filter}: {message}"))
}

/// Without the value: it comes from the request (a 309-digit `1e308`
/// would be printed whole), and the error reaches the log and the answer.
fn too_large(filter: &str, what: &str) -> Error {
    error(
        filter,
        format_args!(
            "{what} is too large to print as an amount: amounts must be below 10^13 \
             (R$ 10 trilhões) in absolute value"
        ),
    )
}

/// Whether the rounded amount is negative (never for zero), and its
/// absolute value with `.` between thousands and `,` before `decimals`
/// decimals.
fn rounded(value: &Value, filter: &str, decimals: u8) -> Result<(bool, String), Error> {
    let (negative, count) = rounded_count(value, filter, decimals)?;
    Ok((negative, group_br(count, decimals)))
}

/// [`rounded`], as the count of `10^-decimals` to print.
fn rounded_count(value: &Value, filter: &str, decimals: u8) -> Result<(bool, u128), Error> {
    let amount = to_amount(value, filter)?;
    let count = round_half_away(amount.units, decimals);
    Ok((amount.negative && count != 0, count))
}

/// `units × 10^-KEPT_FRACTION` rounded half away from zero to `decimals`
/// decimals, as a count of `10^-decimals`.
fn round_half_away(units: u128, decimals: u8) -> u128 {
    let divisor = 10u64.pow(KEPT_FRACTION - u32::from(decimals));
    // Amounts below about R$ 184 million fit a `u64`, whose division is a
    // machine instruction (a `u128`'s is a library call).
    if let Ok(units) = u64::try_from(units) {
        let (quotient, rest) = (units / divisor, units % divisor);
        return u128::from(quotient + u64::from(rest * 2 >= divisor));
    }
    let divisor = u128::from(divisor);
    let (quotient, rest) = (units / divisor, units % divisor);
    quotient + u128::from(rest * 2 >= divisor)
}

/// The exact amount `value` stands for (see the module's documentation).
fn to_amount(value: &Value, filter: &str) -> Result<Amount, Error> {
    if let Some(s) = value.as_str() {
        return parse(s.trim()).map_err(|why| match why {
            // The text itself is request data (personal, maybe): errors
            // describe it, never quote it.
            Unparsed::TooLarge => too_large(filter, "the text"),
            Unparsed::NotANumber if s.contains(',') => error(
                filter,
                "expected a number, got text with a comma, which is not a number: write \
                 decimals after a dot and no thousands separator (`1234.56`)",
            ),
            Unparsed::NotANumber => error(
                filter,
                "expected a number, got text that is not a number (numbers may come as \
                 text like \"1234.50\", nothing else)",
            ),
        });
    }
    if value.is_integer() {
        return i128::try_from(value.clone())
            .ok()
            .filter(|n| n.unsigned_abs() < 10u128.pow(LIMIT_DIGITS as u32))
            .map(|n| Amount {
                negative: n < 0,
                units: n.unsigned_abs() * 10u128.pow(KEPT_FRACTION),
            })
            .ok_or_else(|| too_large(filter, "the number"));
    }
    if value.is_number() {
        let n = f64::try_from(value.clone())?;
        if !n.is_finite() {
            return Err(error(filter, format_args!("{n} is not a finite number")));
        }
        if n.abs() >= LIMIT {
            return Err(too_large(filter, "the number"));
        }
        if let Some(amount) = cents(n) {
            return Ok(amount);
        }
        let mut shortest = ryu::Buffer::new();
        return parse(shortest.format_finite(n))
            .map_err(|_| error(filter, format_args!("{n} is not a number")));
    }
    Err(error(
        filter,
        format_args!("expected a number, got {}", value.kind()),
    ))
}

/// A float that is exactly the nearest double to a whole number of cents
/// (how amounts nearly always come): that decimal is the one its sender
/// wrote, found without writing the float out. Below 10^13 two amounts a
/// cent apart never share a double, so no other decimal of at most two
/// places reads back as `n` (`tests::floats_agree_with_rust_decimal`).
fn cents(n: f64) -> Option<Amount> {
    let count = (n * 100.0).round();
    (count / 100.0 == n && count.abs() < 1e15).then(|| Amount {
        negative: count < 0.0,
        units: count.abs() as u128 * 10u128.pow(KEPT_FRACTION - 2),
    })
}

#[derive(Debug, PartialEq)]
enum Unparsed {
    NotANumber,
    TooLarge,
}

/// Parses `[+-]digits[.digits][(e|E)[+-]digits]` (at least one digit
/// before the exponent; no thousands separators, no `_`, no `inf`/`nan`)
/// exactly, keeping [`KEPT_FRACTION`] fractional digits.
fn parse(s: &str) -> Result<Amount, Unparsed> {
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int.len() + frac.len() == 0 || !all_digits(int) || !all_digits(frac) {
        return Err(Unparsed::NotANumber);
    }
    let exponent: i64 = match exponent {
        None => 0,
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !all_digits(digits) {
                return Err(Unparsed::NotANumber);
            }
            // Past a million the amount is out of range or rounds to zero
            // either way; this keeps the arithmetic below from overflowing.
            let size = digits.parse::<i64>().unwrap_or(i64::MAX).min(1_000_000);
            if e.starts_with('-') {
                -size
            } else {
                size
            }
        }
    };
    // The amount is 0.DIGITS × 10^point, DIGITS the significant digits
    // (from the first non-zero one).
    let all = int.bytes().chain(frac.bytes());
    let zeros = all.clone().take_while(|&b| b == b'0').count();
    let significant = all.skip(zeros);
    let count = (int.len() + frac.len() - zeros) as i64;
    let point = int.len() as i64 + exponent - zeros as i64;
    let kept = KEPT_FRACTION as i64;
    if count == 0 || point < -kept {
        return Ok(Amount { negative, units: 0 });
    }
    if point > LIMIT_DIGITS {
        return Err(Unparsed::TooLarge);
    }
    // Digit i (from 1) weighs 10^(point - i); in units, 10^(point - i +
    // KEPT_FRACTION): digits past `point + KEPT_FRACTION` are cut off.
    let used = count.min(point + kept);
    let units = significant
        .take(used as usize)
        .fold(0u128, |n, b| n * 10 + u128::from(b - b'0'))
        * 10u128.pow((point + kept - used) as u32);
    Ok(Amount { negative, units })
}

/// `count × 10^-decimals` with `.` between thousands and `,` before
/// exactly `decimals` decimals.
fn group_br(count: u128, decimals: u8) -> String {
    let mut out = String::with_capacity(24);
    group_br_into(&mut out, count, decimals);
    out
}

/// [`group_br`], appended to `out`.
fn group_br_into(out: &mut String, count: u128, decimals: u8) {
    // `decimals` is at most MAX_DECIMALS: the unit fits a `u64`, and so
    // does nearly every count (see `round_half_away`).
    let unit = 10u64.pow(u32::from(decimals));
    let mut buffer = itoa::Buffer::new();
    let (int_digits, frac) = match u64::try_from(count) {
        Ok(count) => (buffer.format(count / unit).as_bytes(), count % unit),
        Err(_) => (
            buffer.format(count / u128::from(unit)).as_bytes(),
            (count % u128::from(unit)) as u64,
        ),
    };
    let decimals = usize::from(decimals);
    out.reserve(int_digits.len() + int_digits.len() / 3 + decimals + 1);
    for (i, &c) in int_digits.iter().enumerate() {
        if i > 0 && (int_digits.len() - i) % 3 == 0 {
            out.push('.');
        }
        out.push(char::from(c));
    }
    if decimals > 0 {
        out.push(',');
        let mut buffer = itoa::Buffer::new();
        let frac_digits = buffer.format(frac);
        out.extend(std::iter::repeat_n('0', decimals - frac_digits.len()));
        out.push_str(frac_digits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::{Decimal, RoundingStrategy};
    use std::str::FromStr;

    type Case = (Value, Option<u8>, Result<&'static str, &'static str>);

    fn check(filter: &str, cases: Vec<Case>) {
        for (input, decimals, expected) in cases {
            let got = match filter {
                "brl" => {
                    assert!(decimals.is_none());
                    brl(input.clone())
                }
                _ => number_br(input.clone(), decimals),
            };
            match (expected, got) {
                (Ok(want), Ok(got)) => assert_eq!(got, want, "{filter}({input:?}, {decimals:?})"),
                (Err(want), Err(e)) => {
                    let e = e.to_string();
                    assert!(
                        e.contains(want),
                        "{filter}({input:?}): {e:?} lacks {want:?}"
                    );
                    assert!(e.contains(filter), "{e:?} names no filter");
                }
                (want, got) => panic!("{filter}({input:?}, {decimals:?}): {got:?}, want {want:?}"),
            }
        }
    }

    fn v(x: impl Into<Value>) -> Value {
        x.into()
    }

    #[test]
    fn brl_table() {
        check(
            "brl",
            vec![
                // integers, floats, strings
                (v(0), None, Ok("R$ 0,00")),
                (v(1234.5), None, Ok("R$ 1.234,50")),
                (v(1_000_000), None, Ok("R$ 1.000.000,00")),
                (v(-12.3), None, Ok("-R$ 12,30")),
                (v(-7), None, Ok("-R$ 7,00")),
                (v("1234.50"), None, Ok("R$ 1.234,50")),
                (v("  6.25 "), None, Ok("R$ 6,25")),
                (v("+6.25"), None, Ok("R$ 6,25")),
                (v(".5"), None, Ok("R$ 0,50")),
                (v("5."), None, Ok("R$ 5,00")),
                (v("1e3"), None, Ok("R$ 1.000,00")),
                (v("1.5E-2"), None, Ok("R$ 0,02")),
                (v("0012"), None, Ok("R$ 12,00")),
                (v("99.999"), None, Ok("R$ 100,00")),
                // negative zero: the sign is decided after rounding
                (v(-0.0), None, Ok("R$ 0,00")),
                (v(-0.001), None, Ok("R$ 0,00")),
                (v(-0.004999), None, Ok("R$ 0,00")),
                (v("-0.001"), None, Ok("R$ 0,00")),
                (v("-0"), None, Ok("R$ 0,00")),
                (v("-0e5"), None, Ok("R$ 0,00")),
                (v(-0.005), None, Ok("-R$ 0,01")),
                // half away from zero, on the decimal that was written
                (v(0.005), None, Ok("R$ 0,01")),
                (v(0.125), None, Ok("R$ 0,13")),
                (v(2.675), None, Ok("R$ 2,68")),
                (v(-1.005), None, Ok("-R$ 1,01")),
                (v(1.004999), None, Ok("R$ 1,00")),
                (v("1234.505"), None, Ok("R$ 1.234,51")),
                (v(1234.505), None, Ok("R$ 1.234,51")),
                (v("2.675"), None, Ok("R$ 2,68")),
                (v("-1.005"), None, Ok("-R$ 1,01")),
                (
                    v("0.00499999999999999999999999999999999"),
                    None,
                    Ok("R$ 0,00"),
                ),
                (
                    v("0.0050000000000000000000000000000001"),
                    None,
                    Ok("R$ 0,01"),
                ),
                (v("1e-400"), None, Ok("R$ 0,00")),
                (v(1e-300), None, Ok("R$ 0,00")),
                // big values: exact below 10^13, refused from there
                (v(9_999_999_999_999i64), None, Ok("R$ 9.999.999.999.999,00")),
                (v("9999999999999.994"), None, Ok("R$ 9.999.999.999.999,99")),
                (v(9_999_999_999_999.99), None, Ok("R$ 9.999.999.999.999,99")),
                (
                    v(-9_999_999_999_999.99),
                    None,
                    Ok("-R$ 9.999.999.999.999,99"),
                ),
                (v("9999999999999.995"), None, Ok("R$ 10.000.000.000.000,00")),
                (v(10_000_000_000_000i64), None, Err("too large")),
                (v(1e13), None, Err("too large")),
                (v("10000000000000"), None, Err("too large")),
                (v(1e37), None, Err("too large")),
                (v(-1e37), None, Err("too large")),
                (v(1e300), None, Err("too large")),
                (v("1e37"), None, Err("too large")),
                (v("1e999999999999999999999"), None, Err("too large")),
                (v(i128::MAX), None, Err("too large")),
                (v(u128::MAX), None, Err("too large")),
                (v(u64::MAX), None, Err("too large")),
                (v(f64::INFINITY), None, Err("not a finite number")),
                (v(f64::NEG_INFINITY), None, Err("not a finite number")),
                (v(f64::NAN), None, Err("not a finite number")),
                // invalid strings and types
                (v("12,50"), None, Err("write decimals after a dot")),
                (v("1.234,50"), None, Err("write decimals after a dot")),
                (v("abc"), None, Err("got text that is not a number")),
                (v(""), None, Err("is not a number")),
                (v("-"), None, Err("is not a number")),
                (v("."), None, Err("is not a number")),
                (v("1e"), None, Err("is not a number")),
                (v("1_000"), None, Err("is not a number")),
                (v("R$ 5"), None, Err("is not a number")),
                (v("inf"), None, Err("is not a number")),
                (v("NaN"), None, Err("is not a number")),
                (v("1.2.3"), None, Err("is not a number")),
                (v("--1"), None, Err("is not a number")),
                (v("١٢"), None, Err("is not a number")),
                (v(true), None, Err("expected a number, got bool")),
                (Value::from(()), None, Err("expected a number, got none")),
                (Value::UNDEFINED, None, Err("expected a number")),
                (v(vec![1]), None, Err("expected a number, got sequence")),
            ],
        );
    }

    #[test]
    fn number_br_table() {
        check(
            "number_br",
            vec![
                (v(1234.5), None, Ok("1.234,50")),
                (v(1234.5), Some(0), Ok("1.235")),
                (v(-0.4), Some(0), Ok("0")),
                (v(-0.5), Some(0), Ok("-1")),
                (v(0.5), Some(0), Ok("1")),
                (v(2.5), Some(0), Ok("3")),
                (v(7), Some(3), Ok("7,000")),
                (v("1.23456789012"), Some(10), Ok("1,2345678901")),
                (v("1.23456789015"), Some(10), Ok("1,2345678902")),
                (v(0.1), Some(200), Ok("0,1000000000")),
                (v(1e-11), Some(10), Ok("0,0000000000")),
                (v(-5e-11), Some(10), Ok("-0,0000000001")),
                (v(123_456_789), Some(0), Ok("123.456.789")),
                (v(-1.005), None, Ok("-1,01")),
                (v(-0.001), None, Ok("0,00")),
                (v(1e13), Some(0), Err("too large")),
                (v(f64::NAN), None, Err("not a finite number")),
                (v("12,5"), None, Err("write decimals after a dot")),
                (v("x"), None, Err("is not a number")),
            ],
        );
    }

    fn decimal(amount: Amount) -> Decimal {
        let units = i128::try_from(amount.units).unwrap();
        Decimal::from_i128_with_scale(if amount.negative { -units } else { units }, KEPT_FRACTION)
    }

    /// What `brl`/`number_br` print, computed by rust_decimal from the
    /// decimal text (a float's shortest form from Rust's own formatter):
    /// the oracle the integer arithmetic above must equal.
    fn oracle_value(text: &str) -> Option<Decimal> {
        Some(if let Some((_, exponent)) = text.split_once(['e', 'E']) {
            // rust_decimal holds 28 decimals; below 10^-12 all rounds to zero.
            match exponent.parse::<i32>() {
                Ok(e) if e < -12 => Decimal::ZERO,
                _ => Decimal::from_scientific(text).ok()?,
            }
        } else {
            Decimal::from_str_exact(text).ok()?
        })
    }

    fn oracle(text: &str, decimals: u8) -> Option<(bool, String)> {
        let exact = oracle_value(text)?;
        let rounded = exact
            .round_dp_with_strategy(u32::from(decimals), RoundingStrategy::MidpointAwayFromZero);
        let negative = rounded.is_sign_negative() && !rounded.is_zero();
        let plain = format!("{:.*}", usize::from(decimals), rounded.abs());
        let (int, frac) = plain.split_once('.').unwrap_or((&plain, ""));
        let mut out = String::new();
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                out.push('.');
            }
            out.push(c);
        }
        if decimals > 0 {
            out.push(',');
            out.push_str(frac);
        }
        Some((negative, out))
    }

    /// `text` as 0.DIGITS × 10^point: its significant digits and point.
    fn shape(text: &str) -> (String, i64) {
        let text = text.trim_start_matches('-');
        let (mantissa, exponent) = text.split_once(['e', 'E']).unwrap_or((text, "0"));
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all = format!("{int}{frac}");
        let significant = all.trim_start_matches('0');
        let point = int.len() as i64 + exponent.parse::<i64>().unwrap()
            - (all.len() - significant.len()) as i64;
        (significant.trim_end_matches('0').to_owned(), point)
    }

    /// The parser against rust_decimal's own: the same value wherever both
    /// accept the input (rust_decimal also takes `_`, which recado refuses).
    #[test]
    fn parse_agrees_with_rust_decimal() {
        let mut next = crate::xorshift(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let int_len = (next() % 14) as usize;
            let frac_len = (next() % 12) as usize;
            let digit = |r: u64| char::from(b'0' + (r % 10) as u8);
            let int: String = (0..int_len).map(|_| digit(next())).collect();
            let frac: String = (0..frac_len).map(|_| digit(next())).collect();
            let sign = ["", "-", "+"][(next() % 3) as usize];
            let s = if frac.is_empty() {
                format!("{sign}{int}")
            } else {
                format!("{sign}{int}.{frac}")
            };
            let ours = parse(&s).map(decimal);
            match Decimal::from_str(&s) {
                Ok(theirs) if theirs.abs() < Decimal::from(10_000_000_000_000i64) => {
                    assert_eq!(ours, Ok(theirs), "{s}")
                }
                Ok(_) => assert_eq!(ours, Err(Unparsed::TooLarge), "{s}"),
                Err(_) => assert_eq!(ours, Err(Unparsed::NotANumber), "{s}"),
            }
            let decimals = (next() % 11) as u8;
            if let (Ok(_), Some(want)) = (parse(&s), oracle(&s, decimals)) {
                let got = rounded(&Value::from(s.as_str()), "number_br", decimals).unwrap();
                assert_eq!(got, want, "{s} to {decimals} decimals");
            }
        }
    }

    /// Floats: `ryu`'s shortest form through the integer arithmetic, against
    /// the same text through rust_decimal, on random bit patterns and on
    /// amounts with few decimals (as money comes). Where the shortest form
    /// has at most 15 significant digits (every amount a person wrote), it
    /// is also Rust's own (`{:e}`); at 16 or 17 digits the two may break a
    /// tie differently (`3676116640988.78125` → ryu `…7812`, Rust `…7813`).
    #[test]
    fn floats_agree_with_rust_decimal() {
        let mut next = crate::xorshift(0x9e37_79b9_7f4a_7c15);
        for i in 0..200_000 {
            let f = if i % 2 == 0 {
                f64::from_bits(next())
            } else {
                let cents = (next() % 2_000_000_000_000_000) as f64;
                let scale = [1.0, 10.0, 100.0, 1000.0, 1e6][(next() % 5) as usize];
                let f = cents / scale / [1.0, 1e3, 1e7][(next() % 3) as usize];
                if next() % 2 == 0 {
                    -f
                } else {
                    f
                }
            };
            if !f.is_finite() || f.abs() >= LIMIT {
                continue;
            }
            let mut buffer = ryu::Buffer::new();
            let shortest = buffer.format_finite(f);
            let rust = format!("{f:e}");
            let digits = |t: &str| {
                let mantissa = t.split(['e', 'E']).next().unwrap();
                mantissa
                    .trim_start_matches(['-', '0', '.'])
                    .replace('.', "")
                    .len()
            };
            if digits(&rust) <= 15 {
                assert_eq!(shape(&rust), shape(shortest), "{f:e}: ryu wrote {shortest}");
            }
            let decimals = (next() % 11) as u8;
            let want = oracle(shortest, decimals).unwrap_or_else(|| panic!("oracle: {shortest}"));
            let got = rounded(&Value::from(f), "number_br", decimals).unwrap();
            assert_eq!(got, want, "{f:e} to {decimals} decimals");
        }
    }
}
