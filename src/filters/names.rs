//! `first_name`: the name to greet a customer by, or an error.
//!
//! A greeting must never go out as "Olá, !" or "Olá, ㅤ!": a name made only
//! of invisible characters (zero-width spaces, the Hangul filler U+3164,
//! the braille blank U+2800, NUL, U+FEFF, other format and control
//! characters) is as blank as an empty one, and the filter fails on it,
//! naming itself, like it does on an empty name.

use minijinja::{Error, ErrorKind};

/// Particles that join a Brazilian name's parts; they are never a first
/// name.
const PARTICLES: [&str; 6] = ["da", "das", "de", "do", "dos", "e"];

/// `"joão da silva" | first_name` → `João`.
///
/// The first name is the first word (words are separated by Unicode
/// whitespace) once invisible characters are removed, without punctuation
/// around it (`"(joão)"` → `João`), with its first letter and every letter
/// after a hyphen in upper case and the rest in lower case (`JOÃO` →
/// `João`, `ana-maria` → `Ana-Maria`). Words without a letter (`"🙂"`,
/// `"-"`, `"5511999999999"`) are skipped. Fails when no word has a letter,
/// or when the first one is a particle (`"da Silva"`).
pub fn first_name(value: &str) -> Result<String, Error> {
    let mut out = String::new();
    first_name_into(&mut out, value)?;
    Ok(out)
}

/// [`first_name`], appended to `out`; nothing is appended on an error.
pub fn first_name_into(out: &mut String, value: &str) -> Result<(), Error> {
    let error = |why: String| Error::new(ErrorKind::InvalidOperation, format!("first_name: {why}"));
    // Names rarely hold invisible characters: copied only when they do.
    let visible: std::borrow::Cow<str> = if value.chars().any(is_invisible) {
        value.chars().filter(|&c| !is_invisible(c)).collect()
    } else {
        value.into()
    };
    let word = visible
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .find(|w| w.chars().any(char::is_alphabetic))
        .ok_or_else(|| {
            // The name itself is personal data: errors say what is wrong
            // with it, never what it is.
            error(if value.trim().is_empty() {
                "the name is empty".to_owned()
            } else {
                "the name has no visible letter (only digits, symbols, emoji or invisible characters)"
                    .to_owned()
            })
        })?;
    if PARTICLES.iter().any(|p| word.eq_ignore_ascii_case(p)) {
        return Err(error(format!(
            "the name starts with `{}`, which is not a first name",
            word.to_lowercase()
        )));
    }
    out.reserve(word.len());
    let mut upper = true;
    for c in word.chars() {
        if upper && c.is_alphabetic() {
            if c.is_ascii() {
                out.push(c.to_ascii_uppercase());
            } else {
                out.extend(c.to_uppercase());
            }
            upper = false;
        } else {
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
            } else if let Some(lower) = latin1_lower(c) {
                out.push(lower);
            } else {
                out.extend(c.to_lowercase());
            }
            upper |= c == '-';
        }
    }
    Ok(())
}

/// `c.to_lowercase()` for Latin-1's letters (`À`–`ÿ`), where Portuguese
/// names' accents are, without std's search of its case tables.
fn latin1_lower(c: char) -> Option<char> {
    match c {
        'À'..='Þ' if c != '×' => char::from_u32(u32::from(c) + 0x20),
        'ß'..='ÿ' => Some(c),
        _ => None,
    }
}

/// The filter as templates call it: `first_name`, or
/// `first_name(fallback="cliente")` to greet with the fallback instead of
/// failing when the contact's name has no usable first name (WhatsApp names
/// are often a phone number or an emoji).
pub fn first_name_filter(value: &str, kwargs: minijinja::value::Kwargs) -> Result<String, Error> {
    let fallback: Option<String> = kwargs.get("fallback")?;
    kwargs.assert_all_used()?;
    match (first_name(value), fallback) {
        (Ok(name), _) => Ok(name),
        (Err(_), Some(fallback)) => Ok(fallback),
        (Err(e), None) => Err(e),
    }
}

/// Characters that print as nothing, or as a blank, in a chat message:
/// control characters (whitespace aside, which separates words), Unicode's
/// format characters (Cf) and other default-ignorable code points, and
/// letters that are blank by design. The zero-width joiner and variation
/// selectors stay: emoji need them, and they never make a word visible on
/// their own (a word needs a letter).
fn is_invisible(c: char) -> bool {
    if (' '..='~').contains(&c) {
        return false; // printable ASCII: nearly every character of a name
    }
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{E}'..='\u{1F}' | '\u{7F}'..='\u{84}' | '\u{86}'..='\u{9F}'
        | '\u{AD}'            // soft hyphen
        | '\u{34F}'           // combining grapheme joiner
        | '\u{61C}'           // Arabic letter mark
        | '\u{600}'..='\u{605}' | '\u{6DD}' | '\u{70F}' | '\u{890}'..='\u{891}' | '\u{8E2}'
        | '\u{115F}' | '\u{1160}' // Hangul choseong and jungseong fillers
        | '\u{17B4}' | '\u{17B5}' // Khmer inherent vowels
        | '\u{180B}'..='\u{180F}' // Mongolian variation selectors, vowel separator
        | '\u{200B}' | '\u{200C}' | '\u{200E}' | '\u{200F}' // ZWSP, ZWNJ, LRM, RLM
        | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
        | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, bidi isolates
        | '\u{2800}'          // braille pattern blank
        | '\u{3164}'          // Hangul filler
        | '\u{FEFF}'          // zero-width no-break space (BOM)
        | '\u{FFA0}'          // halfwidth Hangul filler
        | '\u{FFF0}'..='\u{FFFB}' // unassigned specials, interlinear annotation
        | '\u{110BD}' | '\u{110CD}' | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' // musical formatting
        | '\u{E0000}'..='\u{E0FFF}' // tags, variation selectors supplement
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_lower_is_std_lowercase() {
        for c in ('\u{80}'..='\u{17f}').filter(|c| !c.is_ascii()) {
            if let Some(lower) = latin1_lower(c) {
                assert_eq!(
                    c.to_lowercase().collect::<String>(),
                    lower.to_string(),
                    "{c}"
                );
            }
        }
        assert_eq!(
            ('\u{c0}'..='\u{ff}')
                .filter(|&c| latin1_lower(c).is_some())
                .count(),
            63
        );
    }

    #[test]
    fn first_name_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("João da Silva", Ok("João")),
            ("joão da silva", Ok("João")),
            ("JOÃO DA SILVA", Ok("João")),
            ("  MARIA  ", Ok("Maria")),
            ("maria das dores", Ok("Maria")),
            ("JOSÉ DOS SANTOS", Ok("José")),
            ("ana de souza e silva", Ok("Ana")),
            ("ÉRICA", Ok("Érica")),
            ("ÍTALO", Ok("Ítalo")),
            ("çÃo", Ok("Ção")),
            ("ana-maria braga", Ok("Ana-Maria")),
            ("MARIA-JOSÉ", Ok("Maria-José")),
            ("d'ÁVILA", Ok("D'ávila")),
            ("(joão)", Ok("João")),
            ("joão, maria", Ok("João")),
            ("🙂 Maria", Ok("Maria")),
            ("- Pedro", Ok("Pedro")),
            ("5511999999999 Pedro", Ok("Pedro")),
            ("\u{200B}João", Ok("João")),
            ("Jo\u{200B}ão", Ok("João")),
            ("\u{FEFF}\u{3164} maria", Ok("Maria")),
            ("\u{2800}\tluísa", Ok("Luísa")),
            ("\u{0}Ana", Ok("Ana")),
            ("Zoë", Ok("Zoë")),
            ("Ñandú", Ok("Ñandú")),
            ("\u{3000}renata", Ok("Renata")),
            // blank and invisible names
            ("", Err("the name is empty")),
            ("   ", Err("the name is empty")),
            ("\u{200B}", Err("no visible letter")),
            ("\u{200B}\u{200B} \u{200D}", Err("no visible letter")),
            ("\u{3164}", Err("no visible letter")),
            ("\u{3164}\u{3164}", Err("no visible letter")),
            ("\u{2800}", Err("no visible letter")),
            ("\u{0}", Err("no visible letter")),
            ("\u{FEFF}", Err("no visible letter")),
            ("\u{00AD}", Err("no visible letter")),
            ("\u{115F}\u{1160}\u{FFA0}", Err("no visible letter")),
            ("\u{2060}\u{2061}\u{206F}", Err("no visible letter")),
            ("\u{202E}\u{202C}", Err("no visible letter")),
            ("\u{E0041}\u{E007F}", Err("no visible letter")),
            ("\u{FE0F}", Err("no visible letter")),
            ("\u{301}", Err("no visible letter")),
            ("🙂", Err("no visible letter")),
            ("...", Err("no visible letter")),
            ("5511999999999", Err("no visible letter")),
            // particles are not first names
            ("da Silva", Err("starts with `da`")),
            ("DOS SANTOS", Err("starts with `dos`")),
            ("de", Err("starts with `de`")),
        ];
        for (input, expected) in cases {
            match (expected, first_name(input)) {
                (Ok(want), Ok(got)) => assert_eq!(&got, want, "{input:?}"),
                (Err(want), Err(e)) => {
                    let e = e.to_string();
                    assert!(e.contains(want), "{input:?}: {e:?} lacks {want:?}");
                    assert!(e.contains("first_name"), "{e:?}");
                }
                (want, got) => panic!("{input:?}: {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn errors_never_show_the_name_and_a_fallback_replaces_them() {
        for name in ["5511987654321", "da Silva Pereira", "🙂🙂"] {
            let e = first_name(name).unwrap_err().to_string();
            assert!(!e.contains(name), "{e:?} shows the name");
        }
        let env = crate::config::compile::environment(&crate::config::compile::CompileOptions {
            timezone: "America/Sao_Paulo".into(),
            fuel: 1000,
        });
        let render = |name: &str| {
            env.render_str(
                "Olá, {{ n | first_name(fallback='cliente') }}!",
                minijinja::context! { n => name },
            )
        };
        assert_eq!(render("5511987654321").unwrap(), "Olá, cliente!");
        assert_eq!(render("JOÃO DA SILVA").unwrap(), "Olá, João!");
        let typo = env.render_str(
            "{{ n | first_name(fallbak='x') }}",
            minijinja::context! { n => "Ana" },
        );
        assert!(typo.is_err(), "an unknown keyword is an error");
    }
}
