//! `dateformat`, `datetimeformat` and `timeformat` in Brazilian Portuguese.
//!
//! They take the same values, keyword arguments (`format`, `tz`) and
//! globals (`DATE_FORMAT`, `DATETIME_FORMAT`, `TIME_FORMAT`, `TIMEZONE`) as
//! minijinja-contrib's filters of the same names, which they replace. The
//! format is read here, directive by directive: month and weekday names
//! (`%B %b %h %A %a`, also inside `%c`) are written here in Portuguese, with
//! the `^` and `#` flags in upper case; the locale directives take their
//! Brazilian form (`%c` → `qui 10 dez 2026 14:30:00`, `%x` → `10/12/2026`,
//! `%X` → `14:30:00`); numeric directives are printed by jiff's strtime,
//! flags and widths included. Whatever cannot be printed correctly in
//! Portuguese is refused with an error naming the directive and what to
//! write instead: `%p`/`%P` and `%r` (Brazil writes hours on a 24-hour
//! clock), `%D` (American month/day/year), unknown directives, widths on
//! names, a lone `%`, control characters, and a format with no directive at
//! all (`"dd/mm/yyyy"` would print the same text for every date).

use jiff::civil::{Date, DateTime, Time};
use jiff::fmt::strtime::BrokenDownTime;
use jiff::fmt::temporal::Pieces;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use minijinja::value::Kwargs;
use minijinja::{Error, ErrorKind, State, Value};

/// What `DATE_FORMAT` is unless an operator changes it.
pub const DEFAULT_DATE_FORMAT: &str = "%d/%m/%Y";

/// `"2026-12-10" | dateformat` → `10/12/2026`, in `DATE_FORMAT`.
///
/// Its most common call is done directly: an ISO date (a boleto's due
/// date) in the default format. That call otherwise goes through a general
/// date parser, a time zone conversion and a strftime interpreter, about a
/// tenth of a whole webhook's CPU.
pub fn dateformat(state: &State, value: Value, kwargs: Kwargs) -> Result<String, Error> {
    if let Some(iso) = value.as_str().filter(|_| kwargs.args().next().is_none()) {
        if let Some(out) = iso_date_default(state, iso) {
            return Ok(out);
        }
    }
    format_filter(Kind::Date, state, value, kwargs)
}

/// `"2026-12-10T13:00:00Z" | datetimeformat` → `10/12/2026 10:00`, in
/// `DATETIME_FORMAT` and the tenant's time zone.
pub fn datetimeformat(state: &State, value: Value, kwargs: Kwargs) -> Result<String, Error> {
    format_filter(Kind::DateTime, state, value, kwargs)
}

/// `"2026-12-10T13:00:00Z" | timeformat` → `10:00`, in `TIME_FORMAT`.
pub fn timeformat(state: &State, value: Value, kwargs: Kwargs) -> Result<String, Error> {
    format_filter(Kind::Time, state, value, kwargs)
}

#[derive(Clone, Copy)]
enum Kind {
    Date,
    DateTime,
    Time,
}

impl Kind {
    fn filter(self) -> &'static str {
        match self {
            Kind::Date => "dateformat",
            Kind::DateTime => "datetimeformat",
            Kind::Time => "timeformat",
        }
    }

    fn global(self) -> &'static str {
        match self {
            Kind::Date => "DATE_FORMAT",
            Kind::DateTime => "DATETIME_FORMAT",
            Kind::Time => "TIME_FORMAT",
        }
    }

    /// The named formats, in Brazilian order; `iso` and `unix` as contrib's.
    fn named(self, name: &str) -> Option<&'static str> {
        Some(match (self, name) {
            (Kind::Date, "short") => "%d/%m/%Y",
            (Kind::Date, "medium") => "%-d de %b de %Y",
            (Kind::Date, "long") => "%-d de %B de %Y",
            (Kind::Date, "full") => "%A, %-d de %B de %Y",
            (Kind::DateTime, "short") => "%d/%m/%Y %H:%M",
            (Kind::DateTime, "medium") => "%-d de %b de %Y %H:%M",
            (Kind::DateTime, "long") => "%-d de %B de %Y %H:%M:%S",
            (Kind::DateTime, "full") => "%A, %-d de %B de %Y %H:%M:%S",
            (Kind::Time, "short" | "medium") => "%H:%M",
            (Kind::Time, "long") => "%H:%M:%S",
            (Kind::Time, "full") => "%H:%M:%S.%f",
            (Kind::DateTime | Kind::Time, "iso") => "%Y-%m-%dT%H:%M:%S%:z",
            (Kind::DateTime | Kind::Time, "unix") => "%s",
            _ => return None,
        })
    }
}

fn format_filter(kind: Kind, state: &State, value: Value, kwargs: Kwargs) -> Result<String, Error> {
    let configured = state.lookup(kind.global());
    let format = kwargs
        .get::<Option<&str>>("format")?
        .or_else(|| configured.as_ref().and_then(|v| v.as_str()))
        .unwrap_or("medium");
    let tz = kwargs.get::<Option<&str>>("tz")?;
    kwargs.assert_all_used()?;
    let format = kind.named(format).unwrap_or(format);
    let tokens = tokenize(format).map_err(|why| error(kind, why))?;
    let zoned = to_zoned(value, state, tz, matches!(kind, Kind::Date))?;
    render(&tokens, format, &zoned).map_err(|why| error(kind, why))
}

fn error(kind: Kind, why: String) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("{}: {why}", kind.filter()),
    )
}

/// A piece of a format: text printed as it is, or one directive.
#[derive(Debug, PartialEq)]
enum Token {
    /// Text, or directives jiff prints correctly as they are, as a byte
    /// range of the format: handed to jiff in one call.
    Jiff(std::ops::Range<usize>),
    /// A month or weekday name (`B`, `b`, `A`, `a`), in upper case or not.
    Name { name: char, upper: bool },
    /// `%c`: `qui 10 dez 2026 14:30:00`.
    DateAndTime { upper: bool },
    /// `%x`: `10/12/2026`.
    LocaleDate,
    /// `%X`: `14:30:00`.
    LocaleTime,
}

/// Directives jiff prints without any language in them.
const NUMERIC: &str = "%CdeFfGgHIjklMmNnQqRSsTtUuVWwYyZz";

/// Splits `format` into [`Token`]s, refusing what cannot be printed
/// correctly in Portuguese.
fn tokenize(format: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut has_directive = false;
    let mut jiff_start = 0;
    let mut chars = format.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c != '%' {
            if c.is_control() && c != '\n' && c != '\t' {
                return Err(format!(
                    "the format has the control character U+{:04X}, which would not show in \
                     a message; remove it",
                    c as u32
                ));
            }
            continue;
        }
        let mut next = || chars.next().map(|(_, c)| c);
        let incomplete = || {
            format!(
                "the format ends in an incomplete directive `{}`; write `%%` for a percent sign",
                &format[at..]
            )
        };
        let mut conv = next().ok_or_else(incomplete)?;
        let flag = matches!(conv, '_' | '0' | '-' | '^' | '#').then_some(conv);
        if flag.is_some() {
            conv = next().ok_or_else(incomplete)?;
        }
        let mut width = false;
        while conv.is_ascii_digit() {
            width = true;
            conv = next().ok_or_else(incomplete)?;
        }
        let mut colons = 0;
        while conv == ':' {
            colons += 1;
            conv = next().ok_or_else(incomplete)?;
        }
        let dotted = conv == '.';
        if dotted {
            conv = next().ok_or_else(incomplete)?;
            while conv.is_ascii_digit() {
                conv = next().ok_or_else(incomplete)?;
            }
        }
        let end = chars.peek().map_or(format.len(), |&(i, _)| i);
        let directive = &format[at..end];
        if dotted && conv != 'f' {
            return Err(unknown(directive));
        }
        let upper = matches!(flag, Some('^' | '#'));
        let own = match conv {
            'A' | 'a' | 'B' | 'b' | 'h' | 'c' if width || colons > 0 => {
                return Err(format!(
                    "`{directive}`: widths and colons do not apply to names; write `%{conv}`"
                ));
            }
            'A' | 'a' | 'B' | 'b' => Token::Name { name: conv, upper },
            'h' => Token::Name { name: 'b', upper },
            'c' => Token::DateAndTime { upper },
            'x' | 'X' if flag.is_some() || width || colons > 0 => {
                return Err(format!(
                    "`{directive}` takes no flag or width; write `%{conv}`"
                ));
            }
            'x' => Token::LocaleDate,
            'X' => Token::LocaleTime,
            'p' | 'P' => {
                return Err(format!(
                    "`{directive}` prints AM/PM, which Brazil does not use: write hours on a \
                     24-hour clock, `%H:%M`"
                ))
            }
            'r' => {
                return Err(format!(
                    "`{directive}` is a 12-hour time with AM/PM, which Brazil does not use: \
                     write `%H:%M:%S` (or `%X`)"
                ))
            }
            'D' => {
                return Err(format!(
                    "`{directive}` is the American month/day/year order: write `%d/%m/%y`"
                ))
            }
            _ if NUMERIC.contains(conv) => {
                has_directive |= !matches!(conv, '%' | 'n' | 't');
                continue;
            }
            _ => return Err(unknown(directive)),
        };
        has_directive = true;
        if jiff_start < at {
            tokens.push(Token::Jiff(jiff_start..at));
        }
        tokens.push(own);
        jiff_start = end;
    }
    if !has_directive {
        return Err(format!(
            "the format {format:?} has no directive, so every date would print the same; \
             write e.g. `%d/%m/%Y`"
        ));
    }
    if jiff_start < format.len() {
        tokens.push(Token::Jiff(jiff_start..format.len()));
    }
    Ok(tokens)
}

fn unknown(directive: &str) -> String {
    format!(
        "`{directive}` is not a directive recado knows; see the list in \
         docs/integrations.md, or write `%%` for a percent sign"
    )
}

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
const MONTHS_SHORT: [&str; 12] = [
    "jan", "fev", "mar", "abr", "mai", "jun", "jul", "ago", "set", "out", "nov", "dez",
];
/// From Sunday, like [`jiff::civil::Weekday::to_sunday_zero_offset`].
const WEEKDAYS: [&str; 7] = [
    "domingo",
    "segunda-feira",
    "terça-feira",
    "quarta-feira",
    "quinta-feira",
    "sexta-feira",
    "sábado",
];
const WEEKDAYS_SHORT: [&str; 7] = ["dom", "seg", "ter", "qua", "qui", "sex", "sáb"];

fn render(tokens: &[Token], format: &str, zoned: &Zoned) -> Result<String, String> {
    let tm = BrokenDownTime::from(zoned);
    let mut out = String::with_capacity(format.len() + 16);
    let jiff = |out: &mut String, pattern: &str| {
        tm.format(pattern, out)
            .map_err(|e| format!("`{pattern}` could not be printed: {e}"))
    };
    let name = |out: &mut String, name: char, upper: bool| -> Result<(), String> {
        let month = usize::try_from(zoned.month() - 1).ok();
        let weekday = usize::try_from(zoned.weekday().to_sunday_zero_offset()).ok();
        let word = match name {
            'B' => month.and_then(|m| MONTHS.get(m)),
            'b' => month.and_then(|m| MONTHS_SHORT.get(m)),
            'A' => weekday.and_then(|w| WEEKDAYS.get(w)),
            _ => weekday.and_then(|w| WEEKDAYS_SHORT.get(w)),
        }
        .ok_or_else(|| format!("`%{name}` has no name for {zoned}"))?;
        if upper {
            out.push_str(&word.to_uppercase());
        } else {
            out.push_str(word);
        }
        Ok(())
    };
    for token in tokens {
        match token {
            Token::LocaleDate => jiff(&mut out, "%d/%m/%Y")?,
            Token::LocaleTime => jiff(&mut out, "%H:%M:%S")?,
            Token::Jiff(range) => jiff(&mut out, &format[range.clone()])?,
            Token::Name { name: n, upper } => name(&mut out, *n, *upper)?,
            Token::DateAndTime { upper } => {
                name(&mut out, 'a', *upper)?;
                jiff(&mut out, " %d ")?;
                name(&mut out, 'b', *upper)?;
                jiff(&mut out, " %Y %H:%M:%S")?;
            }
        }
    }
    Ok(out)
}

/// `2026-12-10` → `10/12/2026` when `DATE_FORMAT` is the default and the
/// date exists; `None` sends the call to the general path.
fn iso_date_default(state: &State, iso: &str) -> Option<String> {
    let out = iso_date_in_default_format(iso)?;
    let format = state.lookup("DATE_FORMAT")?;
    (format.as_str()? == DEFAULT_DATE_FORMAT).then_some(out)
}

/// `2026-12-10` → `10/12/2026`, as `dateformat` prints it in
/// [`DEFAULT_DATE_FORMAT`]; `None` unless `iso` is exactly an existing
/// `YYYY-MM-DD` date from year 1000 on.
pub fn iso_date_in_default_format(iso: &str) -> Option<String> {
    let mut out = String::with_capacity(10);
    iso_date_in_default_format_into(&mut out, iso)?;
    Some(out)
}

/// [`iso_date_in_default_format`], appended to `out`; nothing is appended
/// on `None`.
pub fn iso_date_in_default_format_into(out: &mut String, iso: &str) -> Option<()> {
    let &[y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = iso.as_bytes() else {
        return None;
    };
    let digits = [y0, y1, y2, y3, m0, m1, d0, d1];
    if !digits.iter().all(u8::is_ascii_digit) || y0 == b'0' {
        return None;
    }
    let n = |ds: &[u8]| ds.iter().fold(0i16, |n, d| n * 10 + i16::from(d - b'0'));
    let (year, month, day) = (n(&digits[..4]), n(&digits[4..6]), n(&digits[6..]));
    Date::new(year, i8::try_from(month).ok()?, i8::try_from(day).ok()?).ok()?;
    // Not `format!`: its machinery costs more than the check above. ASCII
    // digits and slashes: the bytes are UTF-8.
    let text = [d0, d1, b'/', m0, m1, b'/', y0, y1, y2, y3];
    out.push_str(std::str::from_utf8(&text).ok()?);
    Some(())
}

// What follows reads a value as minijinja-contrib 3.1's `value_to_datetime`
// does (same inputs, same errors), except that NaN and infinite timestamps
// are refused instead of read as 1970, and that `tz` is accepted (checked,
// with no effect) on a date without a time, which has no time zone.

/// What a date filter reads, after contrib's words, for the operator
/// whose `data` holds `10/12/2026`.
pub(crate) const WHAT_A_DATE_IS: &str = " (a date filter reads YYYY-MM-DD, an ISO date-time \
such as 2026-12-10T09:00:00-03:00, or Unix seconds)";

fn not_a_date() -> Error {
    let message = format!("not a valid date or timestamp{WHAT_A_DATE_IS}");
    Error::new(ErrorKind::InvalidOperation, message)
}

fn invalid_datetime(err: jiff::Error) -> Error {
    not_a_date().with_source(err)
}

fn date_out_of_range(err: jiff::Error) -> Error {
    Error::new(ErrorKind::InvalidOperation, "date out of range").with_source(err)
}

enum Parsed {
    Date(Date),
    Civil(DateTime),
    Zoned(Zoned),
}

fn parse_string(value: &str) -> Result<Parsed, Error> {
    let pieces = Pieces::parse(value).map_err(invalid_datetime)?;
    let Some(time) = pieces.time() else {
        return Ok(Parsed::Date(pieces.date()));
    };
    let datetime = pieces.date().to_datetime(time);
    let annotated = pieces
        .to_time_zone()
        .or_else(|err| pieces.to_time_zone_with(bundled_db()).map_err(|_| err))
        .map_err(invalid_datetime)?;
    if let Some(offset) = pieces.to_numeric_offset() {
        let timestamp = offset.to_timestamp(datetime).map_err(date_out_of_range)?;
        let tz = annotated.unwrap_or_else(|| TimeZone::fixed(offset));
        Ok(Parsed::Zoned(timestamp.to_zoned(tz)))
    } else if let Some(tz) = annotated {
        Ok(Parsed::Zoned(
            datetime.to_zoned(tz).map_err(date_out_of_range)?,
        ))
    } else {
        Ok(Parsed::Civil(datetime))
    }
}

fn to_zoned(
    value: Value,
    state: &State,
    tz: Option<&str>,
    allow_date: bool,
) -> Result<Zoned, Error> {
    let parsed = if let Some(value) = value.as_str() {
        parse_string(value)?
    } else if let Ok(seconds) = f64::try_from(value.clone()) {
        if !seconds.is_finite() {
            return Err(not_a_date());
        }
        let timestamp =
            Timestamp::from_nanosecond((seconds * 1e9) as i128).map_err(date_out_of_range)?;
        Parsed::Zoned(timestamp.to_zoned(TimeZone::UTC))
    } else {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "value is not a datetime",
        ));
    };
    Ok(match parsed {
        Parsed::Date(date) => {
            if !allow_date {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "filter requires time, but only received a date",
                ));
            }
            if tz.is_some() {
                // No effect on a date, but a misspelt zone is still an error.
                timezone(state, tz)?;
            }
            date.to_datetime(Time::midnight())
                .to_zoned(TimeZone::UTC)
                .map_err(date_out_of_range)?
        }
        Parsed::Civil(datetime) => {
            let tz = timezone(state, tz)?.unwrap_or(TimeZone::UTC);
            datetime.to_zoned(tz).map_err(date_out_of_range)?
        }
        Parsed::Zoned(zoned) => match timezone(state, tz)? {
            Some(tz) => zoned.with_time_zone(tz),
            None => zoned,
        },
    })
}

fn timezone(state: &State, tz: Option<&str>) -> Result<Option<TimeZone>, Error> {
    let configured = state.lookup("TIMEZONE");
    let name = tz.unwrap_or_else(|| {
        configured
            .as_ref()
            .and_then(|x| x.as_str())
            .unwrap_or("original")
    });
    if name == "original" {
        return Ok(None);
    }
    jiff::tz::db()
        .get(name)
        .or_else(|_| bundled_db().get(name))
        .map(Some)
        .map_err(|_| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("unknown timezone '{name}'"),
            )
        })
}

/// jiff's bundled time zone database, empty unless jiff bundles one.
fn bundled_db() -> &'static jiff::tz::TimeZoneDatabase {
    static DB: std::sync::OnceLock<jiff::tz::TimeZoneDatabase> = std::sync::OnceLock::new();
    DB.get_or_init(jiff::tz::TimeZoneDatabase::bundled)
}

#[cfg(test)]
mod tests {
    use super::{iso_date_in_default_format, Date};
    use minijinja::{context, Environment};

    fn env() -> Environment<'static> {
        crate::config::compile::environment(&crate::config::compile::CompileOptions {
            timezone: "America/Sao_Paulo".into(),
            fuel: 100_000,
        })
    }

    /// `{{ v | filter(format=…, tz=…) }}`, the kwargs left out when `None`.
    fn render(
        env: &Environment,
        filter: &str,
        v: minijinja::Value,
        format: Option<&str>,
        tz: Option<&str>,
    ) -> Result<String, String> {
        let mut args = Vec::new();
        if format.is_some() {
            args.push("format=f");
        }
        if tz.is_some() {
            args.push("tz=z");
        }
        let call = if args.is_empty() {
            filter.to_owned()
        } else {
            format!("{filter}({})", args.join(", "))
        };
        env.render_str(
            &format!("{{{{ v | {call} }}}}"),
            context! { v, f => format, z => tz },
        )
        .map_err(|e| format!("{e:#}"))
    }

    type Case = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        Result<&'static str, &'static str>,
    );

    fn check(filter: &str, cases: &[Case]) {
        let env = env();
        for &(value, format, tz, ref expected) in cases {
            let v = match value.parse::<f64>() {
                Ok(n) if !value.starts_with('"') => minijinja::Value::from(n),
                _ => minijinja::Value::from(value.trim_matches('"')),
            };
            let got = render(&env, filter, v, format, tz);
            match (expected, got) {
                (Ok(want), Ok(got)) => assert_eq!(&got, want, "{filter} {value} {format:?} {tz:?}"),
                (Err(want), Err(e)) => assert!(
                    e.contains(want),
                    "{filter} {value} {format:?}: {e:?} lacks {want:?}"
                ),
                (want, got) => panic!("{filter} {value} {format:?} {tz:?}: {got:?}, want {want:?}"),
            }
        }
    }

    /// The byte-level fast path of `dateformat` answers as its first form
    /// (parse each part, check with jiff, join) did: every month and day
    /// number 00–39 of a few years, and bytes out of place.
    #[test]
    fn iso_date_fast_path_agrees_with_its_first_form() {
        fn first_form(iso: &str) -> Option<String> {
            let b = iso.as_bytes();
            let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
            if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(0..4) || !digits(5..7) {
                return None;
            }
            if !digits(8..10) || b[0] == b'0' {
                return None;
            }
            let (year, month, day) = (&iso[0..4], &iso[5..7], &iso[8..10]);
            Date::new(year.parse().ok()?, month.parse().ok()?, day.parse().ok()?).ok()?;
            Some([day, "/", month, "/", year].concat())
        }
        let mut checked = 0;
        for year in [
            "0999", "1000", "1900", "2024", "2026", "2100", "9999", "20a6", "+026",
        ] {
            for month in 0..40 {
                for day in 0..40 {
                    let iso = format!("{year}-{month:02}-{day:02}");
                    assert_eq!(iso_date_in_default_format(&iso), first_form(&iso), "{iso}");
                    checked += 1;
                }
            }
        }
        for iso in [
            "",
            "2026-12-1",
            "2026-12-100",
            "2026/12/10",
            "2026-12-1a",
            "2026-1-010",
            "２026-12-10",
            "2026-12-10 ",
            " 2026-12-10",
            "2026-02-29",
            "2024-02-29",
            "2026-00-10",
            "2026-12-00",
        ] {
            assert_eq!(iso_date_in_default_format(iso), first_form(iso), "{iso:?}");
            checked += 1;
        }
        assert!(checked > 14_000);
    }

    const D: &str = "2026-12-10"; // a Thursday
    const T: &str = "2026-03-01T13:05:00Z"; // a Sunday, 10:05 in São Paulo

    #[test]
    fn dateformat_table() {
        let f = Some;
        check(
            "dateformat",
            &[
                (D, None, None, Ok("10/12/2026")),
                (D, f("short"), None, Ok("10/12/2026")),
                (D, f("medium"), None, Ok("10 de dez de 2026")),
                (D, f("long"), None, Ok("10 de dezembro de 2026")),
                (
                    D,
                    f("full"),
                    None,
                    Ok("quinta-feira, 10 de dezembro de 2026"),
                ),
                (D, f("%d/%m/%Y"), None, Ok("10/12/2026")),
                // names, every flag
                (
                    D,
                    f("%B|%b|%h|%A|%a"),
                    None,
                    Ok("dezembro|dez|dez|quinta-feira|qui"),
                ),
                (
                    D,
                    f("%^B|%^b|%^h|%^A|%^a"),
                    None,
                    Ok("DEZEMBRO|DEZ|DEZ|QUINTA-FEIRA|QUI"),
                ),
                (
                    D,
                    f("%#B|%#b|%#h|%#A|%#a"),
                    None,
                    Ok("DEZEMBRO|DEZ|DEZ|QUINTA-FEIRA|QUI"),
                ),
                (
                    D,
                    f("%-B|%_b|%0A|%-a"),
                    None,
                    Ok("dezembro|dez|quinta-feira|qui"),
                ),
                (
                    "2026-03-03",
                    f("%^B %b %^A"),
                    None,
                    Ok("MARÇO mar TERÇA-FEIRA"),
                ),
                (
                    "2026-03-07",
                    f("%A %a %^a %^A"),
                    None,
                    Ok("sábado sáb SÁB SÁBADO"),
                ),
                ("2026-02-28", f("%B %b"), None, Ok("fevereiro fev")),
                (
                    "2026-05-04",
                    f("%B %b %A %a"),
                    None,
                    Ok("maio mai segunda-feira seg"),
                ),
                (
                    "2026-08-05",
                    f("%B %b %A %a"),
                    None,
                    Ok("agosto ago quarta-feira qua"),
                ),
                (
                    "2026-09-04",
                    f("%B %b %A %a"),
                    None,
                    Ok("setembro set sexta-feira sex"),
                ),
                (
                    "2026-10-04",
                    f("%B %b %A %a"),
                    None,
                    Ok("outubro out domingo dom"),
                ),
                ("2026-01-01", f("%B %b"), None, Ok("janeiro jan")),
                ("2026-04-01", f("%B %b"), None, Ok("abril abr")),
                ("2026-06-01", f("%B %b"), None, Ok("junho jun")),
                ("2026-07-01", f("%B %b"), None, Ok("julho jul")),
                ("2026-11-01", f("%B %b"), None, Ok("novembro nov")),
                (
                    D,
                    f("%10B"),
                    None,
                    Err("widths and colons do not apply to names; write `%B`"),
                ),
                (D, f("%_10a"), None, Err("write `%a`")),
                (D, f("%:A"), None, Err("write `%A`")),
                // padding flags on numbers
                (
                    "2026-03-02",
                    f("%d|%-d|%_d|%0d|%e|%0e|%-e|%3d|%_3d"),
                    None,
                    Ok("02|2| 2|02| 2|02|2|002|  2"),
                ),
                (
                    "2026-03-02",
                    f("%m|%-m|%_m|%y|%-y|%C"),
                    None,
                    Ok("03|3| 3|26|26|20"),
                ),
                (D, f("%^d/%#m/%^Y"), None, Ok("10/12/2026")),
                // locale directives, Brazilian
                (D, f("%c"), None, Ok("qui 10 dez 2026 00:00:00")),
                (D, f("%^c"), None, Ok("QUI 10 DEZ 2026 00:00:00")),
                ("2026-03-02", f("%c"), None, Ok("seg 02 mar 2026 00:00:00")),
                (D, f("%x"), None, Ok("10/12/2026")),
                (D, f("%X"), None, Ok("00:00:00")),
                (D, f("%5c"), None, Err("write `%c`")),
                (D, f("%-x"), None, Err("takes no flag or width; write `%x`")),
                (D, f("%_X"), None, Err("write `%X`")),
                // refused
                (D, f("%p"), None, Err("`%p` prints AM/PM")),
                (D, f("%^P"), None, Err("`%^P` prints AM/PM")),
                (D, f("%r"), None, Err("write `%H:%M:%S`")),
                (
                    D,
                    f("%D"),
                    None,
                    Err("American month/day/year order: write `%d/%m/%y`"),
                ),
                (D, f("%E"), None, Err("`%E` is not a directive")),
                (D, f("%Ec"), None, Err("`%E` is not a directive")),
                (D, f("%+"), None, Err("`%+` is not a directive")),
                (D, f("%é"), None, Err("`%é` is not a directive")),
                (D, f("%.3x"), None, Err("`%.3x` is not a directive")),
                (D, f("%\u{1}"), None, Err("is not a directive")),
                (D, f("%d\u{1}"), None, Err("control character U+0001")),
                (D, f("\u{1}é%B"), None, Err("control character U+0001")),
                (D, f("%B\u{7f}"), None, Err("control character U+007F")),
                (D, f("%"), None, Err("incomplete directive `%`")),
                (
                    D,
                    f("%d %"),
                    None,
                    Err("incomplete directive `%`; write `%%`"),
                ),
                (D, f("%-"), None, Err("incomplete directive `%-`")),
                (D, f("%0:"), None, Err("incomplete directive `%0:`")),
                (D, f("%.3"), None, Err("incomplete directive")),
                (D, f("dd/mm/yyyy"), None, Err("has no directive")),
                (D, f("iso"), None, Err("has no directive")),
                (D, f(""), None, Err("has no directive")),
                (D, f("100%%%n%t"), None, Err("has no directive")),
                (D, f("%999d"), None, Err("`%999d` could not be printed")),
                // everything else jiff prints
                (D, f("%d%n%m%t%Y"), None, Ok("10\n12\t2026")),
                (D, f("%B: 100%%"), None, Ok("dezembro: 100%")),
                (
                    D,
                    f("%F|%j|%U|%W|%V|%G|%g|%u|%w|%q"),
                    None,
                    Ok("2026-12-10|344|49|49|50|2026|26|4|4|4"),
                ),
                (
                    D,
                    f("%s|%Z|%z|%:z|%::z|%:::z|%Q|%:Q"),
                    None,
                    Ok("1796860800|UTC|+0000|+00:00|+00:00:00|+00|UTC|UTC"),
                ),
                (
                    D,
                    f("%H:%M:%S|%T|%R|%k|%l|%I|%f|%.f|%N"),
                    None,
                    Ok("00:00:00|00:00:00|00:00| 0|12|12|0||000000000"),
                ),
                (
                    D,
                    f("Vence em %-d de %B (%A). Até lá!"),
                    None,
                    Ok("Vence em 10 de dezembro (quinta-feira). Até lá!"),
                ),
                (D, f("%d年%m月"), None, Ok("10年12月")),
                // leap days
                ("2024-02-29", None, None, Ok("29/02/2024")),
                (
                    "2024-02-29",
                    f("%A, %-d de %B, dia %j"),
                    None,
                    Ok("quinta-feira, 29 de fevereiro, dia 060"),
                ),
                (
                    "2026-02-29",
                    None,
                    None,
                    Err("not a valid date or timestamp"),
                ),
                (
                    "2026-02-29",
                    f("%B"),
                    None,
                    Err("not a valid date or timestamp"),
                ),
                (
                    "2100-02-29",
                    f("%d"),
                    None,
                    Err("not a valid date or timestamp"),
                ),
                ("2000-02-29", f("%a %d/%m"), None, Ok("ter 29/02")),
                // time zones: a date has none; a date-time moves to the tenant's
                (D, f("%A"), f("Asia/Tokyo"), Ok("quinta-feira")),
                (D, None, f("UTC"), Ok("10/12/2026")),
                (
                    D,
                    None,
                    f("Mars/Olympus"),
                    Err("unknown timezone 'Mars/Olympus'"),
                ),
                (
                    "2026-03-01T02:30:00Z",
                    f("%d/%m %A"),
                    None,
                    Ok("28/02 sábado"),
                ),
                (
                    "2026-03-01T02:30:00Z",
                    f("%d/%m %A"),
                    f("UTC"),
                    Ok("01/03 domingo"),
                ),
                (
                    "2026-03-01T02:30:00Z",
                    f("%d/%m %A"),
                    f("Asia/Tokyo"),
                    Ok("01/03 domingo"),
                ),
                (
                    "2026-03-01T02:30:00-03:00",
                    f("%d/%m %a %Z"),
                    f("original"),
                    Ok("01/03 dom -03"),
                ),
                (
                    T,
                    f("%d"),
                    f("Mars/Olympus"),
                    Err("unknown timezone 'Mars/Olympus'"),
                ),
                // values
                ("0", f("%d/%m/%Y"), f("UTC"), Ok("01/01/1970")),
                (
                    "1796860800",
                    f("%d/%m/%Y %A"),
                    f("UTC"),
                    Ok("10/12/2026 quinta-feira"),
                ),
                (
                    "\"abc\"",
                    f("%d"),
                    None,
                    Err("not a valid date or timestamp"),
                ),
                ("\"\"", f("%d"), None, Err("not a valid date or timestamp")),
                ("1e300", f("%d"), None, Err("date out of range")),
                ("NaN", f("%d"), None, Err("not a valid date or timestamp")),
                ("inf", f("%d"), None, Err("not a valid date or timestamp")),
            ],
        );
    }

    #[test]
    fn datetimeformat_table() {
        let f = Some;
        check(
            "datetimeformat",
            &[
                (T, None, None, Ok("01/03/2026 10:05")),
                (T, f("short"), None, Ok("01/03/2026 10:05")),
                (T, f("medium"), None, Ok("1 de mar de 2026 10:05")),
                (T, f("long"), None, Ok("1 de março de 2026 10:05:00")),
                (
                    T,
                    f("full"),
                    None,
                    Ok("domingo, 1 de março de 2026 10:05:00"),
                ),
                (T, f("iso"), None, Ok("2026-03-01T10:05:00-03:00")),
                (T, f("unix"), None, Ok("1772370300")),
                (T, f("%c"), None, Ok("dom 01 mar 2026 10:05:00")),
                (T, f("%#c"), f("UTC"), Ok("DOM 01 MAR 2026 13:05:00")),
                (T, f("%x %X"), None, Ok("01/03/2026 10:05:00")),
                (T, f("%A %H:%M"), f("UTC"), Ok("domingo 13:05")),
                (T, f("%H:%M %Z %z"), None, Ok("10:05 -03 -0300")),
                (T, f("%I|%l|%-I|%k|%_H|%-H"), None, Ok("10|10|10|10|10|10")),
                ("2026-03-01T20:05:00Z", f("%I|%l|%H"), None, Ok("05| 5|17")),
                (
                    "2026-03-01T13:05:07.123456Z",
                    f("%S|%f|%.f|%.3f|%3f|%N"),
                    None,
                    Ok("07|123456|.123456|.123|123|123456000"),
                ),
                (T, f("%p"), None, Err("Brazil does not use")),
                (T, f("%r"), None, Err("`%r` is a 12-hour time")),
                (T, f("%l %P"), None, Err("`%P` prints AM/PM")),
                (T, f("%Q"), None, Ok("America/Sao_Paulo")),
                (T, f("%d"), f("America/Noronha"), Ok("01")),
                (
                    "2026-03-01T00:30:00",
                    f("%d %H:%M %z"),
                    None,
                    Ok("01 00:30 -0300"),
                ),
                (
                    "2026-03-01T00:30:00",
                    f("%d %H:%M %z"),
                    f("UTC"),
                    Ok("01 00:30 +0000"),
                ),
                (
                    D,
                    None,
                    None,
                    Err("filter requires time, but only received a date"),
                ),
                ("\"nope\"", None, None, Err("not a valid date or timestamp")),
                (T, f("hoje"), None, Err("has no directive")),
            ],
        );
    }

    #[test]
    fn timeformat_table() {
        let f = Some;
        check(
            "timeformat",
            &[
                (T, None, None, Ok("10:05")),
                (T, f("short"), None, Ok("10:05")),
                (T, f("medium"), None, Ok("10:05")),
                (T, f("long"), None, Ok("10:05:00")),
                (T, f("full"), None, Ok("10:05:00.0")),
                (T, f("iso"), None, Ok("2026-03-01T10:05:00-03:00")),
                (T, f("unix"), None, Ok("1772370300")),
                (T, f("%Hh%M"), None, Ok("10h05")),
                (T, f("%X"), f("UTC"), Ok("13:05:00")),
                (T, f("%A, %H:%M"), None, Ok("domingo, 10:05")),
                (T, f("%I:%M %p"), None, Err("Brazil does not use")),
                (D, None, None, Err("filter requires time")),
            ],
        );
    }

    /// Formats without names print exactly what minijinja-contrib prints.
    #[test]
    fn numeric_formats_agree_with_contrib() {
        let ours = env();
        let mut contrib = Environment::new();
        minijinja_contrib::add_to_environment(&mut contrib);
        contrib.add_global("TIMEZONE", "America/Sao_Paulo");
        let formats = [
            "%Y-%m-%d %H:%M:%S",
            "%-d/%-m/%y %k:%M",
            "%s",
            "%z %:z %::z %:::z %Z %Q %:Q",
            "%j %U %W %V %G %g %u %w %q %C",
            "%e|%_d|%0e|%-e|%3d|%_4m|%06Y",
            "%F %T %R",
            "%f %.f %.3f %N %6f",
            "100%% %d%n%t",
            "%^d %#H",
        ];
        let values = [
            "2026-12-10T10:00:00-03:00",
            "2024-02-29T23:59:59.5Z",
            "2026-03-01T13:05:00Z",
            "2026-03-01T13:05:00[Europe/Lisbon]",
            "2026-03-01T13:05:00",
            "1999-12-31T23:59:59.999999999+05:30",
        ];
        for format in formats {
            for value in values {
                for filter in ["dateformat", "datetimeformat", "timeformat"] {
                    for tz in [None, Some("UTC"), Some("Asia/Kolkata"), Some("original")] {
                        let v = minijinja::Value::from(value);
                        assert_eq!(
                            render(&ours, filter, v.clone(), Some(format), tz),
                            render(&contrib, filter, v, Some(format), tz),
                            "{filter} {value} {format} {tz:?}"
                        );
                    }
                }
            }
        }
    }
}
