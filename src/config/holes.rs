//! Marks around the values a call's `url` template prints, so the URL
//! builder (`crate::enrich`) can encode each for the part of the URL it
//! lands in. Shared by the compiled templates and the interpolation fast
//! path, which must print the same bytes.

/// Around each value a call's `url` template prints: the URL builder
/// (`enrich`) percent-encodes what is between them for the part of the URL
/// it lands in, so request data fills one path segment (or one query
/// value) and never changes the path. Private-use characters, removed from
/// the values themselves.
pub const HOLE_OPEN: char = '\u{E000}';
pub const HOLE_CLOSE: char = '\u{E001}';

/// Writes `value` between [`HOLE_OPEN`] and [`HOLE_CLOSE`].
pub fn push_hole(out: &mut impl std::fmt::Write, value: &str) -> std::fmt::Result {
    out.write_char(HOLE_OPEN)?;
    if value.contains([HOLE_OPEN, HOLE_CLOSE]) {
        out.write_str(&value.replace([HOLE_OPEN, HOLE_CLOSE], ""))?;
    } else {
        out.write_str(value)?;
    }
    out.write_char(HOLE_CLOSE)
}
