//! Turns an [`IntegrationSpec`] into a [`Program`]: every template and
//! expression compiled, ready to render many times.
//!
//! Hosting thousands of integrations, memory is what matters: there is one
//! minijinja environment per option set (timezone, fuel), not per
//! integration, and templates are compiled outside it, each owning its text
//! and borrowing the environment. A template is also shared between
//! integrations that have the same text at the same place (see [`Pool`]).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::{Arc, LazyLock, Mutex, OnceLock, Weak};

use minijinja::{value::ValueKind, Environment, Expression, Template, UndefinedBehavior, Value};

use std::time::Duration;

use http::HeaderName;
use minijinja::value::Serde;

use super::catalogue;
use super::error::FieldPath;
use super::holes::push_hole;
use super::interpolation::Interpolation;
use super::spec::{BodyTree, Content, HttpMethod, IntegrationSpec, Origin, QrKind, TemplateSrc};
use crate::filters;

/// Settings that shape how an integration's templates run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CompileOptions {
    /// IANA zone used by the date filters.
    pub timezone: String,
    /// minijinja fuel per render: a runaway loop stops with an error instead
    /// of holding a worker.
    pub fuel: u64,
}

/// Default template fuel: far above what a real message needs (the boleto
/// workload uses under 100), far below what could hold a worker for long.
pub const DEFAULT_FUEL: u64 = 50_000;

/// An integration's compiled messages and calls. The templates in it are
/// shared: see [`TemplateRef`].
pub struct Program {
    compiled: Compiled<'static>,
}

impl Program {
    /// The compiled messages and calls (named after the self-referential
    /// cell this once was, so the request path reads it the same way).
    pub fn borrow_dependent(&self) -> &Compiled<'_> {
        &self.compiled
    }
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("messages", &self.compiled.messages.len())
            .field("calls", &self.compiled.calls.len())
            .finish()
    }
}

pub struct Compiled<'env> {
    pub messages: Vec<CompiledMessage<'env>>,
    /// Upstream calls in dependency order; see [`CompiledCall::level`].
    pub calls: Vec<CompiledCall<'env>>,
    /// Longest time all calls of one request may take together.
    pub deadline: Duration,
}

/// Default per-call timeout, response cap and overall deadline.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_MAX_BYTES: usize = 1024 * 1024;
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);

pub struct CompiledCall<'env> {
    pub name: String,
    pub method: http::Method,
    pub idempotent: bool,
    pub url: Text<'env>,
    pub query: Vec<(String, Text<'env>)>,
    pub headers: Vec<(HeaderName, Text<'env>)>,
    pub body: Option<BodyNode<'env>>,
    pub timeout: Duration,
    pub retries: u32,
    pub cache_ttl: Option<Duration>,
    pub max_bytes: usize,
    /// Used when the call fails and the operator declared `on_error: fallback`.
    pub fallback: Option<Value>,
    /// The fixed `scheme://host[:port]`, when the YAML spells it out.
    pub origin: Option<Origin>,
    /// The URL's literal text up to the `/` that ends its authority
    /// (`https://erp.example.com/`), when `origin` is fixed and a path
    /// follows. A rendered URL that starts with it has that origin whatever
    /// the path holds, so a cache hit can skip parsing the URL.
    pub origin_prefix: Option<String>,
    /// Calls of the same level do not read each other and run concurrently;
    /// level n runs after level n-1 is done.
    pub level: usize,
}

/// A JSON body whose string values are templates.
pub enum BodyNode<'env> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Text(Text<'env>),
    List(Vec<BodyNode<'env>>),
    Map(Vec<(String, BodyNode<'env>)>),
}

pub struct CompiledMessage<'env> {
    pub when: Option<Expr<'env>>,
    pub for_each: Option<(Expr<'env>, String)>,
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
        /// The catalogue's template, resolved at load when `name` and
        /// `language` are fixed text: the run-time checks that need the
        /// template's text (the body as read, the buttons' links) use it.
        catalogue: Option<Arc<catalogue::Template>>,
        /// When `name` or `language` is a template, the tenant's catalogue,
        /// to find the template by what they render to and check the
        /// message against it at run time.
        lookup: Option<Arc<catalogue::Catalogue>>,
    },
}

/// A field's value: fixed text is kept as is, anything else is a template.
pub enum Text<'env> {
    Literal(String),
    Template(TemplateRef<'env>),
}

impl Text<'_> {
    pub fn render(&self, ctx: &Value) -> Result<String, minijinja::Error> {
        match self {
            Text::Literal(s) => Ok(s.clone()),
            Text::Template(t) => t.render(ctx),
        }
    }

    /// The template's text as written; `None` for fixed text.
    pub fn template_source(&self) -> Option<&str> {
        match self {
            Text::Literal(_) => None,
            Text::Template(t) => Some(t.source()),
        }
    }
}

/// A compiled template, shared by every integration that has the same text
/// at the same place under the same options (see [`Pool`]). The lifetime
/// only ties it to the [`Program`] it was handed out with.
pub struct TemplateRef<'env> {
    shared: Arc<SharedTemplate>,
    _program: PhantomData<&'env ()>,
}

impl TemplateRef<'_> {
    /// The template's text as written.
    pub fn source(&self) -> &str {
        &self.shared.sources.2
    }

    pub fn render(&self, ctx: &Value) -> Result<String, minijinja::Error> {
        let shared = &*self.shared;
        if let Some(out) = shared.fast.as_ref().and_then(|f| f.render(ctx)) {
            return Ok(out);
        }
        match shared.compiled.get() {
            Some(cell) => cell.borrow_dependent().render(ctx),
            None => {
                let cell = TemplateCell::try_new(shared.sources.clone(), |(env, name, source)| {
                    compile_template(env, name, source)
                })?;
                shared
                    .compiled
                    .get_or_init(|| cell)
                    .borrow_dependent()
                    .render(ctx)
            }
        }
    }
}

/// A compiled `when`/`for_each` expression, shared like [`TemplateRef`].
pub struct Expr<'env> {
    shared: Arc<SharedExpr>,
    _program: PhantomData<&'env ()>,
}

impl Expr<'_> {
    pub fn eval(&self, ctx: &Value) -> Result<Value, minijinja::Error> {
        self.shared.borrow_dependent().eval(ctx)
    }
}

/// The environment, the template's name (what minijinja's errors call it)
/// and its text: what a compiled template borrows.
type Sources = (Arc<Environment<'static>>, Box<str>, Box<str>);
type BorrowedTemplate<'a> = Template<'a, 'a>;
type BorrowedExpression<'a> = Expression<'a, 'a>;

self_cell::self_cell!(
    /// A template compiled outside any environment's store: it only borrows
    /// the shared environment (filters, globals, options) and its own text,
    /// so an integration costs its templates' bytecode and nothing more.
    struct TemplateCell {
        owner: Sources,
        #[covariant]
        dependent: BorrowedTemplate,
    }
);

self_cell::self_cell!(
    struct SharedExpr {
        owner: Sources,
        #[covariant]
        dependent: BorrowedExpression,
    }
);

struct SharedTemplate {
    sources: Sources,
    /// Set when the template is plain text around `{{ … }}` holes; see
    /// [`Interpolation`].
    fast: Option<Interpolation>,
    /// minijinja's bytecode. A template with a fast path is compiled only
    /// when the fast path first declines a request (an unusual value, an
    /// error to report): minijinja sets aside room for 256 instructions per
    /// template, about 12 KiB, which for most message texts would be most
    /// of what an integration costs. The syntax was checked while parsing.
    compiled: OnceLock<TemplateCell>,
}

// `Environment<'static>` is covariant, so the shared environment can be
// lent for as long as the text it compiles.
fn compile_template<'a>(
    env: &'a Environment<'a>,
    name: &'a str,
    source: &'a str,
) -> Result<Template<'a, 'a>, minijinja::Error> {
    env.template_from_named_str(name, source)
}

fn compile_expression<'a>(
    env: &'a Environment<'a>,
    source: &'a str,
) -> Result<Expression<'a, 'a>, minijinja::Error> {
    env.compile_expression(source)
}

trait Pooled {
    fn sources(&self) -> &Sources;
}

impl Pooled for SharedTemplate {
    fn sources(&self) -> &Sources {
        &self.sources
    }
}

impl Pooled for SharedExpr {
    fn sources(&self) -> &Sources {
        self.borrow_owner()
    }
}

/// Compiled templates by (environment, name, text), held weakly: identical
/// templates across tenants are compiled and stored once, and one nobody
/// uses any more is freed with the last integration that had it.
struct Pool<T> {
    by_hash: HashMap<u64, Vec<Weak<T>>>,
    /// Entries after the last sweep of dead ones.
    swept_len: usize,
}

impl<T: Pooled> Pool<T> {
    fn new() -> Pool<T> {
        Pool {
            by_hash: HashMap::new(),
            swept_len: 0,
        }
    }

    fn get_or_compile(
        pool: &Mutex<Pool<T>>,
        env: &Arc<Environment<'static>>,
        name: &str,
        source: &str,
        compile: impl FnOnce(Sources) -> Result<T, minijinja::Error>,
    ) -> Result<Arc<T>, minijinja::Error> {
        let mut h = std::hash::DefaultHasher::new();
        (Arc::as_ptr(env) as usize, name, source).hash(&mut h);
        let hash = h.finish();
        let same = |t: &T| {
            let (e, n, s) = t.sources();
            Arc::ptr_eq(e, env) && **n == *name && **s == *source
        };
        {
            let pool = pool.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(found) = pool
                .by_hash
                .get(&hash)
                .into_iter()
                .flatten()
                .filter_map(Weak::upgrade)
                .find(|t| same(t))
            {
                return Ok(found);
            }
        }
        // Compiled outside the lock; a concurrent load of the same text at
        // worst compiles it twice.
        let fresh = Arc::new(compile((env.clone(), name.into(), source.into()))?);
        let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
        let slot = pool.by_hash.entry(hash).or_default();
        slot.retain(|w| w.strong_count() > 0);
        slot.push(Arc::downgrade(&fresh));
        if pool.by_hash.len() > 2 * pool.swept_len + 1024 {
            pool.by_hash.retain(|_, slot| {
                slot.retain(|w| w.strong_count() > 0);
                !slot.is_empty()
            });
            pool.by_hash.shrink_to_fit();
            pool.swept_len = pool.by_hash.len();
        }
        Ok(fresh)
    }
}

static TEMPLATES: LazyLock<Mutex<Pool<SharedTemplate>>> = LazyLock::new(|| Mutex::new(Pool::new()));
static EXPRESSIONS: LazyLock<Mutex<Pool<SharedExpr>>> = LazyLock::new(|| Mutex::new(Pool::new()));

fn shared_template<'env>(
    env: &Arc<Environment<'static>>,
    name: &str,
    source: &str,
) -> Result<TemplateRef<'env>, minijinja::Error> {
    let shared = Pool::get_or_compile(&TEMPLATES, env, name, source, |sources| {
        // In a call's `url`, the fast path marks values as the formatter
        // does (see [`is_call_url`]).
        let fast = Interpolation::parse(&sources.2).map(|f| {
            if is_call_url(&sources.1) {
                f.marking_holes()
            } else {
                f
            }
        });
        let compiled = OnceLock::new();
        if fast.is_none() {
            let cell = TemplateCell::try_new(sources.clone(), |(env, name, source)| {
                compile_template(env, name, source)
            })?;
            let _ = compiled.set(cell);
        }
        Ok(SharedTemplate {
            sources,
            fast,
            compiled,
        })
    })?;
    Ok(TemplateRef {
        shared,
        _program: PhantomData,
    })
}

fn shared_expression<'env>(
    env: &Arc<Environment<'static>>,
    source: &str,
) -> Result<Expr<'env>, minijinja::Error> {
    let shared = Pool::get_or_compile(&EXPRESSIONS, env, "", source, |sources| {
        SharedExpr::try_new(sources, |(env, _, source)| compile_expression(env, source))
    })?;
    Ok(Expr {
        shared,
        _program: PhantomData,
    })
}

/// `enrich.<call>.url`: call names are simple names, without dots.
fn is_call_url(template: &str) -> bool {
    template
        .strip_prefix("enrich.")
        .and_then(|r| r.strip_suffix(".url"))
        .is_some_and(|call| !call.contains('.'))
}

const NULL_PRINTED: &str = "the value is null; use `default(\"…\", true)` to print something else";
const NOT_TEXT: &str = "the value is a list or a mapping, which would reach the contact as `{'…': …}` or `['…']`; print one of its fields (`data.pedido.numero`), or a list's items with `join(', ')`";

/// Builds the environment every integration renders in.
pub fn environment(opts: &CompileOptions) -> Environment<'static> {
    let mut env = Environment::new();
    // Printing or iterating something undefined is an error, so a missing field
    // can never become an empty name in front of a customer; testing it in an
    // `if`/`when` is allowed, which is how optional fields are handled.
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    // Debug info names what was undefined (`data.pedido`), so the operator is
    // told which field the request lacks. minijinja turns it on only in debug
    // builds by default; recado needs it in the release build too. It costs
    // on the error path only.
    env.set_debug(true);
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
    // In a call's `url`: this value is a path (its `/` separate segments),
    // not one segment. Only for values the operator controls.
    env.add_filter("raw_path", |v: Value| {
        Value::from_safe_string(v.to_string())
    });
    env.add_global("DATE_FORMAT", filters::DEFAULT_DATE_FORMAT);
    env.add_global("DATETIME_FORMAT", "%d/%m/%Y %H:%M");
    env.add_global("TIME_FORMAT", "%H:%M");
    env.add_global("TIMEZONE", Value::from(opts.timezone.clone()));
    env.set_fuel(Some(opts.fuel));
    // JSON `null` would print as "none": as wrong in front of a customer as
    // an empty name, so it is an error too (`default(x, true)` replaces it).
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                NULL_PRINTED,
            ));
        }
        // Printed, a payload whose shape changed (`pedido` now an object)
        // would send the contact Python-like text, with a 200. Only in a
        // message: what a call sends its upstream is the operator's affair.
        if matches!(
            value.kind(),
            ValueKind::Map | ValueKind::Seq | ValueKind::Iterable
        ) && state.name().starts_with("messages[")
        {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                NOT_TEXT,
            ));
        }
        // A value in a call's URL is marked for encoding, unless the
        // operator declared it a path (`| raw_path`, or `| safe`).
        if !value.is_safe() && is_call_url(state.name()) {
            let text = match value.as_str() {
                Some(s) => std::borrow::Cow::Borrowed(s),
                None => std::borrow::Cow::Owned(value.to_string()),
            };
            return push_hole(out, &text).map_err(minijinja::Error::from);
        }
        // Strings are most of what is printed; written as they are (there is
        // no auto-escaping) they skip the `Display` machinery.
        if let Some(s) = value.as_str() {
            return std::fmt::Write::write_str(out, s).map_err(minijinja::Error::from);
        }
        minijinja::escape_formatter(out, state, value)
    });
    env
}

/// The one environment of an option set, shared by every integration
/// compiled with it (there are few option sets; thousands of integrations).
/// Held weakly: it goes when the last template compiled in it does.
fn shared_environment(opts: &CompileOptions) -> Arc<Environment<'static>> {
    static ENVS: LazyLock<Mutex<HashMap<CompileOptions, Weak<Environment<'static>>>>> =
        LazyLock::new(Default::default);
    let mut envs = ENVS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(env) = envs.get(opts).and_then(Weak::upgrade) {
        return env;
    }
    envs.retain(|_, w| w.strong_count() > 0);
    let env = Arc::new(environment(opts));
    envs.insert(opts.clone(), Arc::downgrade(&env));
    env
}

/// Compiles every template and expression of `spec`. Syntax was already
/// checked while parsing, so an error here is unexpected but still reported.
pub fn compile(spec: &IntegrationSpec, opts: &CompileOptions) -> Result<Program, minijinja::Error> {
    compile_with(spec, opts, &[], None)
}

/// Like [`compile`], with each message's catalogue template (by message
/// index; missing or `None` where there is none): named body values are put
/// in the template's order, and the template rides along for run-time checks.
pub fn compile_with(
    spec: &IntegrationSpec,
    opts: &CompileOptions,
    templates: &[Option<Arc<catalogue::Template>>],
    lookup: Option<&Arc<catalogue::Catalogue>>,
) -> Result<Program, minijinja::Error> {
    let env = &shared_environment(opts);
    {
        let text_of =
            |path: FieldPath, src: &TemplateSrc| -> Result<Text<'static>, minijinja::Error> {
                Ok(if src.is_literal() {
                    Text::Literal(src.source.clone())
                } else {
                    Text::Template(shared_template(env, &path.to_string(), &src.source)?)
                })
            };
        let mut messages = Vec::with_capacity(spec.messages.len());
        for (i, msg) in spec.messages.iter().enumerate() {
            let text = |field: FieldPath, src: &TemplateSrc| text_of(message_path(i, &field), src);
            let template = FieldPath::key(super::spec::TEMPLATE_KEY);
            let content = match &msg.content {
                Content::Qr { kind, value } => CompiledContent::Qr {
                    kind: *kind,
                    value: text(FieldPath::key(kind.key()), value)?,
                },
                Content::Template(t) => {
                    let resolved = templates.get(i).cloned().flatten();
                    CompiledContent::Template {
                        name: text(template.then("name"), &t.name)?,
                        language: text(template.then("language"), &t.language)?,
                        header: t
                            .header
                            .as_ref()
                            .map(|h| text(template.then("header"), h))
                            .transpose()?,
                        body: t
                            .body
                            .ordered(resolved.as_deref())
                            .into_iter()
                            .map(|(path, b)| text(path, b))
                            .collect::<Result<_, _>>()?,
                        buttons: t
                            .buttons
                            .iter()
                            .enumerate()
                            .map(|(j, b)| {
                                b.as_ref()
                                    .map(|b| text(template.then("buttons").at(j), b))
                                    .transpose()
                            })
                            .collect::<Result<_, _>>()?,
                        lookup: resolved.is_none().then(|| lookup.cloned()).flatten(),
                        catalogue: resolved,
                    }
                }
            };
            messages.push(CompiledMessage {
                when: msg
                    .when
                    .as_ref()
                    .map(|w| shared_expression(env, &w.source))
                    .transpose()?,
                for_each: msg
                    .for_each
                    .as_ref()
                    .map(|f| {
                        Ok::<_, minijinja::Error>((
                            shared_expression(env, &f.list.source)?,
                            f.var.clone(),
                        ))
                    })
                    .transpose()?,
                content,
            });
        }

        let mut calls: Vec<CompiledCall<'static>> = Vec::with_capacity(spec.enrich.calls.len());
        for (name, call) in &spec.enrich.calls {
            let text = |field: FieldPath, src: &TemplateSrc| text_of(call_path(name, &field), src);
            let level = calls
                .iter()
                .filter(|c| call.deps.contains(&c.name))
                .map(|c| c.level + 1)
                .max()
                .unwrap_or(0);
            calls.push(CompiledCall {
                name: name.clone(),
                method: method(call.method),
                idempotent: call.method.idempotent(),
                url: text(FieldPath::key("url"), &call.url)?,
                query: call
                    .query
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), text(FieldPath::key("query").then(k), v)?)))
                    .collect::<Result<_, minijinja::Error>>()?,
                headers: call
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        let header =
                            HeaderName::from_bytes(k.as_bytes()).expect("checked while parsing");
                        Ok((header, text(FieldPath::key("headers").then(k), v)?))
                    })
                    .collect::<Result<_, minijinja::Error>>()?,
                body: call
                    .body
                    .as_ref()
                    .map(|b| body_node(b, FieldPath::key("body"), &text))
                    .transpose()?,
                timeout: call.timeout.map_or(DEFAULT_CALL_TIMEOUT, |d| d.0),
                retries: call.retries,
                cache_ttl: call.cache.map(|d| d.0),
                max_bytes: call.max_bytes.unwrap_or(DEFAULT_MAX_BYTES),
                fallback: call.fallback.as_ref().map(|f| Value::from(Serde(f))),
                origin: call.origin.clone(),
                origin_prefix: call
                    .origin
                    .as_ref()
                    .and_then(|_| origin_prefix(&call.url.source)),
                level,
            });
        }
        Ok(Program {
            compiled: Compiled {
                messages,
                calls,
                deadline: spec.deadline.map_or(DEFAULT_DEADLINE, |d| d.0),
            },
        })
    }
}

/// `https://host:port/path{{ x }}` → `https://host:port/`, if the text up to
/// the path is literal.
fn origin_prefix(url: &str) -> Option<String> {
    let after_scheme = url.find("://")? + 3;
    let slash = after_scheme + url[after_scheme..].find(['/', '?', '#', '{'])?;
    (url.as_bytes()[slash] == b'/').then(|| url[..=slash].to_owned())
}

/// The call body's tree with each template compiled.
fn body_node<'env>(
    tree: &BodyTree,
    at: FieldPath,
    text: &dyn Fn(FieldPath, &TemplateSrc) -> Result<Text<'env>, minijinja::Error>,
) -> Result<BodyNode<'env>, minijinja::Error> {
    Ok(match tree {
        BodyTree::Null => BodyNode::Null,
        BodyTree::Bool(b) => BodyNode::Bool(*b),
        BodyTree::Number(n) => BodyNode::Number(n.clone()),
        BodyTree::Text(src) => BodyNode::Text(text(at, src)?),
        BodyTree::List(items) => BodyNode::List(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| body_node(item, at.at(i), text))
                .collect::<Result<_, _>>()?,
        ),
        BodyTree::Map(entries) => BodyNode::Map(
            entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), body_node(v, at.then(k), text)?)))
                .collect::<Result<_, minijinja::Error>>()?,
        ),
    })
}

fn method(m: HttpMethod) -> http::Method {
    match m {
        HttpMethod::Get => http::Method::GET,
        HttpMethod::Post => http::Method::POST,
        HttpMethod::Put => http::Method::PUT,
        HttpMethod::Patch => http::Method::PATCH,
        HttpMethod::Delete => http::Method::DELETE,
        HttpMethod::Head => http::Method::HEAD,
    }
}

/// Where a message's template sits in the file; also the name it carries in
/// minijinja's errors.
pub fn message_path(index: usize, field: &FieldPath) -> FieldPath {
    field.under(&FieldPath::key("messages").at(index))
}

/// Where a call's template sits in the file (`enrich.cliente.url`).
pub fn call_path(call: &str, field: &FieldPath) -> FieldPath {
    field.under(&FieldPath::key("enrich").then(call))
}

#[cfg(test)]
mod tests {
    use super::origin_prefix;

    #[test]
    fn origin_prefix_only_when_a_literal_path_follows_the_authority() {
        let p = |s: &str| origin_prefix(s);
        assert_eq!(
            p("https://erp.example.com/x/{{ a }}").as_deref(),
            Some("https://erp.example.com/")
        );
        assert_eq!(
            p("http://127.0.0.1:8080/{{ a }}").as_deref(),
            Some("http://127.0.0.1:8080/")
        );
        assert_eq!(p("https://erp.example.com{{ a }}"), None);
        assert_eq!(p("https://erp.example.com?q={{ a }}"), None);
        assert_eq!(p("https://erp.example.com"), None);
        assert_eq!(p("https://{{ host }}/x"), None);
    }
}
