//! The fast path for the commonest templates: literal text around
//! `{{ a.b.c | filter }}` holes, e.g. `Olá, {{ contact.name | first_name }}!`.
//!
//! Starting minijinja's VM for such a template costs several times more than
//! the lookups and the filter themselves, and most message texts look like
//! this. So at load time a template of this shape is also kept as a list of
//! pieces, and rendering tries the pieces first.
//!
//! Only a plain success is fast. Anything unusual (an undefined or null
//! value, a value of an unexpected type, a filter that fails, a date that is
//! not `YYYY-MM-DD`) gives `None`, and the caller renders the compiled
//! template instead, so the output and every error are always minijinja's
//! own. A unit test below renders both ways and compares.

use minijinja::value::ValueKind;
use minijinja::Value;

use crate::filters;
use crate::request::{walk, Field, RequestVars};

/// The room [`Interpolation::render`] makes for each hole's text at first:
/// a name, an amount, a date or a short URL fits.
const HOLE_BYTES: usize = 32;

/// A template split into literal text and holes, when it has that shape.
#[derive(Debug)]
pub struct Interpolation {
    pieces: Vec<Piece>,
    /// What the output's buffer starts with: the literal text plus a
    /// guess per hole, so that most renders allocate it once.
    capacity: usize,
    /// A call's URL: each hole's text goes between the markers of
    /// [`super::holes::push_hole`], as the formatter does.
    marked: bool,
}

#[derive(Debug)]
enum Piece {
    Literal(String),
    Hole {
        path: Vec<String>,
        filters: Vec<Filter>,
    },
}

/// Filters the fast path calls directly: recado's own, without arguments,
/// and `dateformat` on ISO dates in the default format. Any other filter
/// makes the template ineligible.
#[derive(Debug, Clone, Copy)]
enum Filter {
    FirstName,
    Brl,
    NumberBr,
    PhoneBr,
    DateFormat,
}

impl Filter {
    fn by_name(name: &str) -> Option<Filter> {
        Some(match name {
            "first_name" => Filter::FirstName,
            "brl" => Filter::Brl,
            "number_br" => Filter::NumberBr,
            "phone_br" => Filter::PhoneBr,
            "dateformat" => Filter::DateFormat,
            _ => return None,
        })
    }

    /// The filter's result, or `None` where minijinja must decide.
    fn apply(self, value: &Field<'_>) -> Option<String> {
        let mut out = String::new();
        self.apply_into(&mut out, value)?;
        Some(out)
    }

    /// The filter's result appended to `out` (the last filter of a hole
    /// writes straight into the template's text), or `None` where
    /// minijinja must decide.
    fn apply_into(self, out: &mut String, value: &Field<'_>) -> Option<()> {
        match self {
            Filter::FirstName => filters::first_name_into(out, value.as_str()?).ok(),
            Filter::Brl => match value {
                Field::Value(v) => filters::brl_into(out, v).ok(),
                Field::Str(s) => filters::brl_into(out, &Value::from(*s)).ok(),
            },
            Filter::NumberBr => {
                out.push_str(&filters::number_br(value.clone().into_value(), None).ok()?);
                Some(())
            }
            Filter::PhoneBr => {
                out.push_str(&filters::phone_br(value.as_str()?));
                Some(())
            }
            Filter::DateFormat => filters::iso_date_in_default_format_into(out, value.as_str()?),
        }
    }
}

impl Interpolation {
    /// The pieces of `source`, if it is only literal text and holes of the
    /// form `{{ name(.name)* (| filter)* }}` with filters from [`Filter`].
    ///
    /// Block tags, comments, whitespace control (`{{-`), a carriage return
    /// or a trailing newline (which minijinja drops) make it ineligible.
    /// `dateformat` is eligible only while `DATE_FORMAT` is recado's
    /// default: a template of this shape cannot `set` it.
    pub fn parse(source: &str) -> Option<Interpolation> {
        if source.contains("{%")
            || source.contains("{#")
            || source.contains('\r')
            || source.ends_with('\n')
        {
            return None;
        }
        let mut pieces = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                pieces.push(Piece::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}")?;
            pieces.push(hole(&after[..end])?);
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Literal(rest.to_owned()));
        }
        let capacity = pieces
            .iter()
            .map(|p| match p {
                Piece::Literal(text) => text.len(),
                Piece::Hole { .. } => HOLE_BYTES,
            })
            .sum();
        pieces
            .iter()
            .any(|p| matches!(p, Piece::Hole { .. }))
            .then_some(Interpolation {
                pieces,
                capacity,
                marked: false,
            })
    }

    /// The same, with each hole marked as a call's URL needs.
    pub fn marking_holes(self) -> Interpolation {
        Interpolation {
            marked: true,
            ..self
        }
    }

    /// The rendered text, or `None` to let minijinja render it.
    pub fn render(&self, ctx: &Value) -> Option<String> {
        // A request's own variables are read from the request; any other
        // context (one with `enrich`, a test's) through minijinja's lookups.
        let vars = ctx.downcast_object_ref::<RequestVars>();
        let mut out = String::with_capacity(self.capacity);
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Hole { path, filters } if self.marked => {
                    let mut hole = String::new();
                    hole_value(&mut hole, vars, ctx, path, filters)?;
                    super::holes::push_hole(&mut out, &hole).ok()?;
                }
                Piece::Hole { path, filters } => hole_value(&mut out, vars, ctx, path, filters)?,
            }
        }
        Some(out)
    }
}

/// Appends one hole's text to `out`; `None` where minijinja must decide.
fn hole_value(
    out: &mut String,
    vars: Option<&RequestVars>,
    ctx: &Value,
    path: &[String],
    filters: &[Filter],
) -> Option<()> {
    let mut value = match vars {
        Some(vars) => vars.field(path)?,
        // Undefined gives `None`: a name the context lacks may be a
        // global, and printing undefined is an error, both minijinja's.
        None => Field::Value(walk(ctx.clone(), path)?),
    };
    let Some((last, first)) = filters.split_last() else {
        return push_value(out, &value);
    };
    for filter in first {
        value = Field::Value(Value::from(filter.apply(&value)?));
    }
    last.apply_into(out, &value)
}

/// `a.b | f | g` → the path and the filters, if every name is eligible.
fn hole(inner: &str) -> Option<Piece> {
    if inner.starts_with(['-', '+']) || inner.ends_with(['-', '+']) {
        return None;
    }
    // Only whitespace minijinja's expression lexer skips too (`str::trim`
    // would also take a vertical tab, which minijinja rejects).
    let mut parts = inner.split('|').map(|p| p.trim_matches([' ', '\t', '\n']));
    let path: Vec<String> = parts
        .next()?
        .split('.')
        .map(|p| ident(p).then(|| p.to_owned()))
        .collect::<Option<_>>()?;
    let filters = parts.map(Filter::by_name).collect::<Option<_>>()?;
    Some(Piece::Hole { path, filters })
}

/// A name minijinja reads as a variable or attribute: no keyword or literal.
fn ident(s: &str) -> bool {
    const RESERVED: &[&str] = &[
        "and", "or", "not", "in", "is", "if", "else", "true", "false", "none", "True", "False",
        "None",
    ];
    if RESERVED.contains(&s) {
        return false;
    }
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Prints `value` as the environment's formatter would; anything but a
/// string, a number or a boolean (null, a list, a mapping) is the
/// formatter's to refuse.
fn push_value(out: &mut String, value: &Field<'_>) -> Option<()> {
    let value = match value {
        Field::Str(s) => {
            out.push_str(s);
            return Some(());
        }
        Field::Value(v) => v,
    };
    match value.kind() {
        ValueKind::String => out.push_str(value.as_str()?),
        ValueKind::Number | ValueKind::Bool => out.push_str(&value.to_string()),
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::compile::{environment, CompileOptions, DEFAULT_FUEL};
    use minijinja::context;

    #[test]
    fn eligible_shapes() {
        for ok in [
            "{{ a }}",
            "Olá, {{ contact.name | first_name }}!",
            "{{a.b|brl}} e {{ c|dateformat }}",
            "}} {{ x }}",
        ] {
            assert!(Interpolation::parse(ok).is_some(), "{ok}");
        }
        for no in [
            "plain text",
            "{{ a }}\n",
            "{{- a }}",
            "{{ a -}}",
            "{% if a %}x{% endif %}",
            "{# c #}{{ a }}",
            "{{ a | upper }}",
            "{{ a | default('x') }}",
            "{{ a[0] }}",
            "{{ a + 1 }}",
            "{{ 1a }}",
            "{{ a }",
            "{{ DATE_FORMAT | x }}",
            "{{ a |\u{b} brl }}",
            "{{ not }}",
            "{{ a.if }}",
            "{{ none }}",
        ] {
            assert!(Interpolation::parse(no).is_none(), "{no}");
        }
    }

    /// Wherever the fast path answers, its answer is minijinja's.
    #[test]
    fn agrees_with_minijinja() {
        let env = environment(&CompileOptions {
            timezone: "America/Sao_Paulo".into(),
            fuel: DEFAULT_FUEL,
        });
        let contexts = [
            context! {
                contact => context! { name => "joão da silva", key => "5513999999999" },
                data => context! {
                    valor => 1234.5, inteiro => 7, texto => "1234.50", vazio => "",
                    nulo => (), data => "2026-12-10", ruim => "2026-02-30",
                    iso => "2026-12-10T10:00:00-03:00", lista => vec![1, 2],
                    sim => true, mapa => context! { a => 1 },
                },
            },
            context! { contact => context! { name => 42 }, data => "texto" },
        ];
        let sources = [
            "Olá, {{ contact.name | first_name }}!",
            "{{ contact.name }}",
            "{{ contact.key | phone_br }}",
            "{{ data.valor | brl }} {{ data.inteiro | number_br }} {{ data.texto | brl }}",
            "{{ data.valor }}|{{ data.inteiro }}|{{ data.sim }}|{{ data.lista }}|{{ data.mapa }}",
            "{{ data.valor }}|{{ data.inteiro }}|{{ data.sim }}",
            "{{ data.lista }}",
            "{{ contact.key }} {{ contact.name }}",
            "{{ data.vazio | first_name }}",
            "{{ data.vazio | brl }}",
            "{{ data.nulo }}",
            "{{ data.nulo | brl }}",
            "{{ data.falta }}",
            "{{ data.falta.mais }}",
            "{{ data.valor.x }}",
            "{{ falta }}",
            "{{ data.data | dateformat }}",
            "{{ data.ruim | dateformat }}",
            "{{ data.iso | dateformat }}",
            "{{ data.valor | dateformat }}",
            "{{ data.texto | brl | first_name }}",
            "{{ data }}",
        ];
        let mut fast = 0;
        for source in sources {
            let interp = Interpolation::parse(source).expect(source);
            let template = env.template_from_str(source).unwrap();
            for ctx in &contexts {
                // `None` is rendered by minijinja, so it agrees by definition.
                if let Some(out) = interp.render(ctx) {
                    fast += 1;
                    let slow = template.render(ctx).map_err(|e| e.to_string());
                    assert_eq!(Ok(out), slow, "{source} on {ctx:?}");
                }
            }
        }
        assert!(fast >= 10, "only {fast} renders took the fast path");
    }

    /// The fast path over a real request's variables (read from the request,
    /// not through minijinja) prints what minijinja prints over the values
    /// deserialized from the same body, as the context was built before.
    #[test]
    fn agrees_with_minijinja_over_a_request() {
        let env = environment(&CompileOptions {
            timezone: "America/Sao_Paulo".into(),
            fuel: DEFAULT_FUEL,
        });
        let many = format!(
            "{{{}}}",
            (0..40)
                .map(|i| format!("\"k{i}\": \"v{i}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let datas = [
            r#"{"valor": 1234.5, "inteiro": 7, "texto": "1234.50", "vazio": "", "nulo": null,
                "data": "2026-12-10", "ruim": "2026-02-30", "lista": [1, 2], "sim": true,
                "mapa": {"a": 1, "b": {"c": "fundo"}}, "esc": "a\u00e3\"b\"", "valor": 99}"#,
            r#""texto""#,
            "[1, 2]",
            "null",
            "{}",
            many.as_str(),
        ];
        let sources = [
            "Olá, {{ contact.name | first_name }}! {{ contact.type }} {{ contact.uid }}",
            "{{ contact.key | phone_br }} {{ id }} {{ clientId }}",
            "{{ data.valor | brl }} {{ data.inteiro | number_br }} {{ data.texto | brl }}",
            "{{ data.valor }}|{{ data.inteiro }}|{{ data.sim }}|{{ data.esc }}",
            "{{ data.mapa.a }} {{ data.mapa.b.c }} {{ data.mapa.b.x }}",
            "{{ data.lista }}",
            "{{ data.nulo }}",
            "{{ data.falta }}",
            "{{ data.texto.x }}",
            "{{ contact.name.x }}",
            "{{ data.data | dateformat }} {{ data.ruim | dateformat }}",
            "{{ data.texto | brl | first_name }}",
            "{{ data }}",
            "{{ contact }}",
            "{{ data.k0 }} {{ data.k39 }}",
            "{{ enrich.c.nome }} {{ enrich.c.valor | brl }} {{ enrich.c.falta }}",
            "{{ enrich }}",
        ];
        let enrich = context! { c => context! { nome => "Ana", valor => 10.5 } };
        let item = context! { valor => 3, texto => "item" };
        let (mut fast, mut layered) = (0, 0);
        for data in datas {
            // Small bodies are parsed in one pass, large ones in two.
            for padding in [0, crate::request::ONE_PASS_BYTES] {
                let body = format!(
                    r#"{{"id": 9, "clientId": 72, "origin": "SCHEDULED_MESSAGE", "contact": {{"uid": "1", "type": "WHATSAPP", "key": "5513999999999", "name": "João da Silva"}}, "pad": "{}", "data": {data}}}"#,
                    "x".repeat(padding)
                );
                let req = crate::request::PlatformRequest::parse(body.as_bytes()).unwrap();
                let vars = RequestVars::context(req);
                let data: Option<Value> = serde_json::from_str(data).unwrap();
                let before = context! {
                    id => 9, clientId => 72,
                    contact => context! { uid => "1", type => "WHATSAPP", key => "5513999999999", name => "João da Silva" },
                    data => data.unwrap_or_else(|| Value::from(std::collections::BTreeMap::<String, Value>::new())),
                };
                // As the webhook layers `enrich`, then a `for_each` item
                // (here one that shadows `data`), over the request's.
                let with_enrich = RequestVars::with(&vars, [("enrich", enrich.clone())]);
                let with_item = RequestVars::with(&with_enrich, [("data", item.clone())]);
                assert!(with_item.downcast_object_ref::<RequestVars>().is_some());
                let before_enrich = context! { enrich => enrich.clone(), ..before.clone() };
                let before_item = context! { data => item.clone(), ..before_enrich.clone() };
                for source in sources {
                    let interp = Interpolation::parse(source).expect(source);
                    let template = env.template_from_str(source).unwrap();
                    for (ctx, old) in [
                        (&vars, &before),
                        (&with_enrich, &before_enrich),
                        (&with_item, &before_item),
                    ] {
                        let want = template.render(old).map_err(|e| e.to_string());
                        assert_eq!(
                            template.render(ctx).map_err(|e| e.to_string()),
                            want,
                            "{source} on {body} with {old:?}"
                        );
                        if let Some(out) = interp.render(ctx) {
                            fast += 1;
                            layered += usize::from(!std::ptr::eq(ctx, &vars));
                            assert_eq!(Ok(out), want, "{source} on {body} with {old:?}");
                        }
                    }
                }
            }
        }
        assert!(fast >= 80, "only {fast} renders took the fast path");
        assert!(
            layered >= 40,
            "only {layered} renders with layered variables took it"
        );
    }
}
