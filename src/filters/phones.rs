//! `phone_br`: Brazilian phone numbers as people write them.

/// `"5513999999999" | phone_br` → `+55 (13) 99999-9999`; `"1133334444"` →
/// `(11) 3333-4444`. Only the digits count, so `"+55 13 99999-9999"`
/// works too. Other shapes are returned unchanged: a number is better shown
/// raw than wrongly formatted.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_br_table() {
        let cases = [
            ("5513999999999", "+55 (13) 99999-9999"),
            ("551333334444", "+55 (13) 3333-4444"),
            ("+55 (13) 99999-9999", "+55 (13) 99999-9999"),
            ("1133334444", "(11) 3333-4444"),
            ("11999998888", "(11) 99999-8888"),
            ("55999998888", "(55) 99999-8888"),
            ("(11) 3333-4444", "(11) 3333-4444"),
            ("123", "123"),
            ("", ""),
            ("4413999999999", "4413999999999"),
            ("15551234567890", "15551234567890"),
            ("telefone", "telefone"),
            ("١١٣٣٣٣٤٤٤٤", "١١٣٣٣٣٤٤٤٤"),
        ];
        for (input, want) in cases {
            assert_eq!(phone_br(input), want, "{input:?}");
        }
    }
}
