//! Turns an [`IntegrationSpec`] into a [`Program`]: one minijinja environment
//! with every template and expression compiled, ready to render many times.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use minijinja::{Environment, Expression, Template, UndefinedBehavior, Value};

use super::spec::{Content, IntegrationSpec, QrKind, TemplateSrc};
use crate::filters;

/// Settings that shape how an integration's templates run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CompileOptions {
    /// IANA zone used by the date filters.
    pub timezone: String,
}

self_cell::self_cell!(
    /// The environment owns the compiled templates; the messages hold handles
    /// into it, so rendering never looks anything up by name.
    pub struct Program {
        owner: Environment<'static>,
        #[covariant]
        dependent: Messages,
    }
);

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("messages", &self.borrow_dependent().0.len())
            .finish()
    }
}

pub struct Messages<'env>(pub Vec<CompiledMessage<'env>>);

pub struct CompiledMessage<'env> {
    pub when: Option<Expression<'env, 'static>>,
    pub for_each: Option<(Expression<'env, 'static>, String)>,
    pub content: CompiledContent<'env>,
}

pub enum CompiledContent<'env> {
    Qr {
        kind: QrKind,
        value: Text<'env>,
    },
    Template {
        name: Text<'env>,
        language: Text<'env>,
        header: Option<Text<'env>>,
        body: Vec<Text<'env>>,
        buttons: Vec<Option<Text<'env>>>,
    },
}

/// A field's value: fixed text is kept as is, anything else is a template.
pub enum Text<'env> {
    Literal(String),
    Template(Template<'env, 'env>),
}

/// Builds the environment every integration renders in.
pub fn environment(opts: &CompileOptions) -> Environment<'static> {
    let mut env = Environment::new();
    // Printing or iterating something undefined is an error, so a missing field
    // can never become an empty name in front of a customer; testing it in an
    // `if`/`when` is allowed, which is how optional fields are handled.
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    // Messages are plain text, not HTML.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    // `{% if %}`/`{% for %}` on their own lines leave no blank lines behind.
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("the default delimiters are valid"),
    );
    minijinja_contrib::add_to_environment(&mut env);
    filters::register(&mut env);
    env.add_global("DATE_FORMAT", "%d/%m/%Y");
    env.add_global("DATETIME_FORMAT", "%d/%m/%Y %H:%M");
    env.add_global("TIME_FORMAT", "%H:%M");
    env.add_global("TIMEZONE", Value::from(opts.timezone.clone()));
    env
}

/// A clone of one shared, fully set-up environment per option set: clones
/// share the filters and globals instead of each integration allocating its
/// own (thousands of integrations are loaded at once).
fn base_environment(opts: &CompileOptions) -> Environment<'static> {
    static BASES: LazyLock<Mutex<HashMap<CompileOptions, Environment<'static>>>> =
        LazyLock::new(Default::default);
    let mut bases = BASES.lock().unwrap_or_else(|e| e.into_inner());
    bases
        .entry(opts.clone())
        .or_insert_with(|| environment(opts))
        .clone()
}

/// Compiles every template and expression of `spec`. Syntax was already
/// checked while parsing, so an error here is unexpected but still reported.
pub fn compile(spec: &IntegrationSpec, opts: &CompileOptions) -> Result<Program, minijinja::Error> {
    let mut env = base_environment(opts);
    for (i, msg) in spec.messages.iter().enumerate() {
        for (field, src) in msg.content.templates() {
            if !src.is_literal() {
                env.add_template_owned(template_name(i, &field), src.source.clone())?;
            }
        }
    }
    Program::try_new(env, |env| {
        let mut out = Vec::with_capacity(spec.messages.len());
        for (i, msg) in spec.messages.iter().enumerate() {
            let text = |field: &str, src: &TemplateSrc| -> Result<Text<'_>, minijinja::Error> {
                Ok(if src.is_literal() {
                    Text::Literal(src.source.clone())
                } else {
                    Text::Template(env.get_template(&template_name(i, field))?)
                })
            };
            let content = match &msg.content {
                Content::Qr { kind, value } => CompiledContent::Qr {
                    kind: *kind,
                    value: text(kind.key(), value)?,
                },
                Content::Template(t) => CompiledContent::Template {
                    name: text("template.name", &t.name)?,
                    language: text("template.language", &t.language)?,
                    header: t
                        .header
                        .as_ref()
                        .map(|h| text("template.header", h))
                        .transpose()?,
                    body: t
                        .body
                        .iter()
                        .enumerate()
                        .map(|(j, b)| text(&format!("template.body[{j}]"), b))
                        .collect::<Result<_, _>>()?,
                    buttons: t
                        .buttons
                        .iter()
                        .enumerate()
                        .map(|(j, b)| {
                            b.as_ref()
                                .map(|b| text(&format!("template.buttons[{j}]"), b))
                                .transpose()
                        })
                        .collect::<Result<_, _>>()?,
                },
            };
            out.push(CompiledMessage {
                when: msg
                    .when
                    .as_ref()
                    .map(|w| env.compile_expression_owned(w.source.clone()))
                    .transpose()?,
                for_each: msg
                    .for_each
                    .as_ref()
                    .map(|f| {
                        Ok::<_, minijinja::Error>((
                            env.compile_expression_owned(f.list.source.clone())?,
                            f.var.clone(),
                        ))
                    })
                    .transpose()?,
                content,
            });
        }
        Ok(Messages(out))
    })
}

/// The name a template carries in minijinja's errors: where it sits in the file.
fn template_name(index: usize, field: &str) -> String {
    format!("messages[{index}].{field}")
}
