//! `data`, the request's free-form payload, as the templates' fast path
//! reads it: its top-level entries with their text, without minijinja values.
//!
//! A webhook's templates mostly print `data.x` for a few flat fields. Built
//! as minijinja values, `data` cost a map, a key value per entry and a
//! string value per text, then a lookup through the map's ordered keys per
//! hole: about a tenth of a webhook's instructions. Here the same one-pass
//! parse keeps the top level as a list of entries whose keys and texts sit
//! in one buffer, and a lookup is a scan of a few entries. minijinja's
//! value of the whole payload is built only when a template needs it (a
//! block, an expression, a loop, an upstream call's `enrich` context), once
//! per request ([`Payload::value`]), and equals what deserializing `data`
//! into a `minijinja::Value` gives (a differential test below, and the
//! request fuzz target, compare the two).
//!
//! Everything below the top level (a nested object or list) is parsed into
//! minijinja values as before: the fast path then looks it up as it did.

use std::ops::Range;
use std::sync::OnceLock;

use minijinja::Value;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Past this many entries a lookup goes through minijinja's map of the
/// payload (made once per request) instead of a scan: a payload of
/// thousands of keys must not make each hole cost thousands of compares.
const SCAN_ENTRIES: usize = 32;

/// The request's `data`. Parsing checks it exactly as deserializing it into
/// a `minijinja::Value` does (the same parser, the same calls), so a body is
/// refused or accepted, with the same message, as before this type existed.
#[derive(Debug, Default)]
pub struct Payload {
    shape: Shape,
    /// minijinja's value of the whole payload, made on first need.
    value: OnceLock<Value>,
}

#[derive(Debug, Default)]
enum Shape {
    /// No `data`, or `data: null`: templates see an empty mapping.
    #[default]
    Absent,
    /// An object: its entries in the order sent (a repeated key's last
    /// value is the one that counts, as in a map), their keys and texts in
    /// `text`.
    Map { text: String, entries: Vec<Entry> },
    /// Anything else (a list, a text, a number), as minijinja values.
    Other(Value),
}

#[derive(Debug)]
struct Entry {
    key: Range<usize>,
    slot: Slot,
}

#[derive(Debug)]
enum Slot {
    /// A text, in the payload's `text`.
    Text(Range<usize>),
    /// A number, a boolean, null, or a nested object or list.
    Value(Value),
}

/// One value the fast path found: a text borrowed from the request, or a
/// minijinja value.
#[derive(Debug, Clone)]
pub enum Field<'a> {
    Str(&'a str),
    Value(Value),
}

impl Field<'_> {
    /// The text, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Field::Str(s) => Some(s),
            Field::Value(v) => v.as_str(),
        }
    }

    /// As the minijinja value a template would see.
    pub fn into_value(self) -> Value {
        match self {
            Field::Str(s) => Value::from(s),
            Field::Value(v) => v,
        }
    }
}

impl Payload {
    /// `data.<key>`, if `data` is an object that has it.
    pub fn get(&self, key: &str) -> Option<Field<'_>> {
        let Shape::Map { text, entries } = &self.shape else {
            return None;
        };
        if entries.len() > SCAN_ENTRIES {
            let value = self.value().get_attr(key).ok()?;
            return (!value.is_undefined()).then_some(Field::Value(value));
        }
        // From the end: a key sent twice means its last value, as in a map.
        let entry = entries.iter().rev().find(|e| &text[e.key.clone()] == key)?;
        Some(match &entry.slot {
            Slot::Text(span) => Field::Str(&text[span.clone()]),
            Slot::Value(value) => Field::Value(value.clone()),
        })
    }

    /// The whole payload as a minijinja value, as templates see it: an
    /// absent or null `data` is an empty mapping.
    pub fn value(&self) -> Value {
        self.value
            .get_or_init(|| match &self.shape {
                Shape::Absent => Value::from(std::collections::BTreeMap::<String, Value>::new()),
                Shape::Other(value) => value.clone(),
                Shape::Map { text, entries } => Value::from_pairs(entries.iter().map(|e| {
                    let value = match &e.slot {
                        Slot::Text(span) => Value::from(&text[span.clone()]),
                        Slot::Value(value) => value.clone(),
                    };
                    (Value::from(&text[e.key.clone()]), value)
                })),
            })
            .clone()
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Payload, D::Error> {
        // As `Option<minijinja::Value>` was: `null` is no payload.
        d.deserialize_option(Outer)
    }
}

struct Outer;

impl<'de> Visitor<'de> for Outer {
    type Value = Payload;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_none<E: de::Error>(self) -> Result<Payload, E> {
        Ok(Payload::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Payload, E> {
        Ok(Payload::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Payload, D::Error> {
        d.deserialize_any(Top)
    }
}

/// `data` itself: an object is kept as entries, anything else as the
/// minijinja value it would have been.
struct Top;

/// What `Top` makes of anything but an object.
fn other(value: Value) -> Payload {
    Payload {
        shape: Shape::Other(value),
        value: OnceLock::new(),
    }
}

/// The visits that make minijinja's value of a scalar, null or a list as its
/// own `Deserialize` makes it, each handed to `$wrap` (`fn(Value) -> Self::Value`).
macro_rules! visit_as_minijinja {
    ($de:lifetime, $wrap:expr) => {
        visit_as_minijinja!(@scalar $wrap, visit_bool bool, visit_i64 i64, visit_u64 u64,
            visit_i128 i128, visit_u128 u128, visit_f64 f64);
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap(Value::from(())))
        }
        fn visit_seq<A: SeqAccess<$de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Ok($wrap(Value::deserialize(SeqAccessDeserializer::new(seq))?))
        }
    };
    (@scalar $wrap:expr, $($name:ident $ty:ty),*) => {
        $(fn $name<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            Ok($wrap(Value::from(v)))
        })*
    };
}

impl<'de> Visitor<'de> for Top {
    type Value = Payload;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    visit_as_minijinja!('de, other);

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Payload, E> {
        Ok(other(Value::from(v)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Payload, A::Error> {
        // Room for a usual payload's keys and texts, and entries, at once.
        let mut text = String::with_capacity(128);
        let mut entries = Vec::with_capacity(8);
        while let Some(key) = map.next_key_seed(Key(&mut text))? {
            let slot = map.next_value_seed(EntryValue(&mut text))?;
            entries.push(Entry { key, slot });
        }
        Ok(Payload {
            shape: Shape::Map { text, entries },
            value: OnceLock::new(),
        })
    }
}

/// A key: its text appended to the payload's `text`.
struct Key<'t>(&'t mut String);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Range<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Range<usize>, D::Error> {
        // `deserialize_any`, as minijinja's value asks for a key.
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = Range<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a text")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Range<usize>, E> {
        Ok(push(self.0, v))
    }
}

fn push(text: &mut String, v: &str) -> Range<usize> {
    let start = text.len();
    text.push_str(v);
    start..text.len()
}

/// An entry's value: a text appended to the payload's `text`, anything else
/// the minijinja value it would have been.
struct EntryValue<'t>(&'t mut String);

impl<'de> DeserializeSeed<'de> for EntryValue<'_> {
    type Value = Slot;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Slot, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntryValue<'_> {
    type Value = Slot;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    visit_as_minijinja!('de, Slot::Value);

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Slot, E> {
        Ok(Slot::Text(push(self.0, v)))
    }
    fn visit_none<E: de::Error>(self) -> Result<Slot, E> {
        Ok(Slot::Value(Value::from(())))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Slot, D::Error> {
        Ok(Slot::Value(Value::deserialize(d)?))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Slot, A::Error> {
        Ok(Slot::Value(Value::deserialize(
            MapAccessDeserializer::new(map),
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `data` was before this type: a minijinja value, or none.
    fn as_minijinja(json: &str) -> Result<Value, String> {
        serde_json::from_str::<Option<Value>>(json)
            .map(|v| {
                v.unwrap_or_else(|| Value::from(std::collections::BTreeMap::<String, Value>::new()))
            })
            .map_err(|e| e.to_string())
    }

    fn as_payload(json: &str) -> Result<Payload, String> {
        serde_json::from_str::<Payload>(json).map_err(|e| e.to_string())
    }

    /// Compares the payload with minijinja's value of the same JSON: the
    /// same error, or an equal value that prints, serializes and
    /// enumerates the same; and every top-level key found with its value.
    pub(crate) fn agree(json: &str) {
        match (as_minijinja(json), as_payload(json)) {
            (Err(a), Err(b)) => assert_eq!(a, b, "{json}"),
            (Ok(want), Ok(payload)) => {
                let got = payload.value();
                assert_eq!(got, want, "{json}");
                assert_eq!(got.kind(), want.kind(), "{json}");
                assert_eq!(got.to_string(), want.to_string(), "{json}");
                assert_eq!(format!("{got:?}"), format!("{want:?}"), "{json}");
                assert_eq!(
                    serde_json::to_string(&got).unwrap(),
                    serde_json::to_string(&want).unwrap(),
                    "{json}"
                );
                if want.kind() == minijinja::value::ValueKind::Map {
                    for key in want.try_iter().unwrap() {
                        let Some(name) = key.as_str() else { continue };
                        let expected = want.get_item(&key).unwrap();
                        let found = payload
                            .get(name)
                            .unwrap_or_else(|| panic!("{name} not found in {json}"))
                            .into_value();
                        assert_eq!(found, expected, "{name} in {json}");
                        assert_eq!(found.kind(), expected.kind(), "{name} in {json}");
                    }
                } else {
                    assert!(payload.get("x").is_none(), "{json}");
                }
            }
            (a, b) => panic!(
                "{json}: minijinja {a:?}, payload {:?}",
                b.map(|p| p.value())
            ),
        }
    }

    #[test]
    fn agrees_with_minijinjas_value() {
        // More entries than a scan serves, a key repeated among them.
        let many_keys = format!(
            "{{{}, \"k7\": \"de novo\"}}",
            (0..40)
                .map(|i| format!("\"k{i}\": {i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for json in [
            "null",
            "{}",
            "[]",
            "[1, \"a\", {\"b\": null}]",
            "\"texto\"",
            "12",
            "-1.5",
            "true",
            r#"{"valor": 1234.5, "vencimento": "2026-12-10", "boleto_url": "https://example.com/b.pdf", "pedido": "A-1001"}"#,
            r#"{"a": 1, "a": "dois"}"#,
            r#"{"b": 2, "a": 1, "b": {"c": [1, 2]}}"#,
            r#"{"esc\u00e3pe": "linha\nnova \"aspas\" \ud83d\ude00", "vazio": "", "nulo": null}"#,
            r#"{"grande": 18446744073709551615, "maior": 18446744073709551616, "neg": -9223372036854775808}"#,
            r#"{"f": 1e308, "g": 0.1, "h": -0.0, "i": 1E2}"#,
            r#"{"aninhado": {"z": 1, "a": {"b": "c"}}, "lista": [{"x": 1}]}"#,
            r#"{"fora": 1e400}"#,
            many_keys.as_str(),
            r#"{"sozinho": "\ud800"}"#,
            r#"{"ruim": tru}"#,
            r#"{"x": 1,}"#,
            r#"{"fundo": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"#,
        ] {
            agree(json);
        }
    }

    /// The depth limit is serde_json's, counted the same way through the
    /// payload's own levels.
    #[test]
    fn the_depth_limit_is_the_same() {
        for depth in [120, 126, 127, 128, 129, 130] {
            let json = format!("{{\"x\": {}1{}}}", "[".repeat(depth), "]".repeat(depth));
            agree(&json);
        }
    }
}
