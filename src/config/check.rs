//! Static checks of templates and expressions, done once at load so that a
//! file `recado check` accepts cannot fail every live request: every filter,
//! test and function a template uses must exist, with arguments its
//! signature accepts; `secrets.<name>` must be a secret of the tenant;
//! a fixed upstream origin must be one the tenant allows; a `{#` that
//! swallows message text is reported.
//!
//! The templates are walked with minijinja's AST, which is only exposed by
//! its `unstable_machinery` feature (no semver promise). Every use of that
//! API is in this module, every match on its nodes is exhaustive (a new
//! node type fails the build here), and `walker_sees_every_construct`
//! fails loudly if what the walker finds changes.

use std::collections::{BTreeSet, HashSet};
use std::sync::LazyLock;

use minijinja::machinery::{self, ast, Span, Token};
use minijinja::{Environment, ErrorKind};

use super::compile::{self, CompileOptions};
use super::error::{did_you_mean, suggest, FieldPath};
use super::spec::{IntegrationSpec, Origin, TemplateSrc};

/// What a template uses, with positions inside its text (line, column:
/// 1-based, in characters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    pub uses: Vec<Use>,
    /// `secrets.<name>` and `enrich.<name>` reads.
    pub reads: Vec<Read>,
    /// Where a `{#` comment starts that runs past the end of its line.
    pub long_comments: Vec<(usize, usize)>,
}

/// A filter, test or function call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    pub kind: Kind,
    pub name: String,
    /// Positional arguments (for a filter, not counting the value it filters).
    pub positional: usize,
    /// `*args` or `**kwargs`: the counts are not known.
    pub splat: bool,
    pub keywords: Vec<String>,
    pub at: (usize, usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Filter,
    Test,
    Function,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Filter => "filter",
            Kind::Test => "test",
            Kind::Function => "function",
        }
    }
}

/// `root.name`: `secrets.erp_token`, `enrich.cliente`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub root: String,
    pub name: String,
    pub at: (usize, usize),
}

/// Scans a template that already parsed (its syntax was checked).
pub fn scan_template(source: &str) -> Scan {
    let mut w = Walker::default();
    if let Ok(stmt) = machinery::parse(source, "<template>", Default::default()) {
        w.stmt(&stmt);
    }
    let mut scan = w.finish();
    scan.long_comments = long_comments(source);
    scan
}

/// Scans an expression (`when`, `for_each`) that already parsed.
pub fn scan_expr(source: &str) -> Scan {
    let mut w = Walker::default();
    if let Ok(expr) = machinery::parse_expr(source) {
        w.expr(&expr);
    }
    w.finish()
}

/// `{#` starts a comment up to `#}`; `Pedido {#123}` hides everything after
/// it. A comment that crosses a line end is almost always that mistake.
fn long_comments(source: &str) -> Vec<(usize, usize)> {
    if !source.contains("{#") {
        return Vec::new();
    }
    // The lexer skips comments: a `{#` outside every token starts one. Inside
    // a string literal or a `{% raw %}` block it is part of a token.
    let mut covered: Vec<(usize, usize)> = Vec::new();
    for tok in machinery::tokenize(source, false, Default::default()) {
        let Ok((tok, span)) = tok else { break };
        if matches!(
            tok,
            Token::TemplateData(_) | Token::Str(_) | Token::String(_)
        ) {
            covered.push((span.start_offset as usize, span.end_offset as usize));
        }
    }
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = source[from..].find("{#").map(|i| i + from) {
        from = i + 2;
        if covered.iter().any(|&(s, e)| s <= i && i < e) {
            continue;
        }
        let end = source[from..].find("#}").map_or(source.len(), |e| from + e);
        if source[from..end].contains('\n') {
            out.push(position(source, i));
        }
        from = end;
    }
    out
}

/// Line and column (1-based, characters) of a byte offset.
pub(crate) fn position(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

fn at(span: Span) -> (usize, usize) {
    // minijinja's lines are 1-based, its columns 0-based.
    (span.start_line as usize, span.start_col as usize + 1)
}

#[derive(Default)]
struct Walker {
    uses: Vec<Use>,
    reads: Vec<Read>,
    /// Names the template binds itself (`set`, `for`, `macro`, `with`):
    /// calling one of them is not calling a global function.
    locals: HashSet<String>,
}

impl Walker {
    fn finish(mut self) -> Scan {
        let locals = std::mem::take(&mut self.locals);
        self.uses
            .retain(|u| u.kind != Kind::Function || !locals.contains(&u.name));
        Scan {
            uses: self.uses,
            reads: self.reads,
            long_comments: Vec::new(),
        }
    }

    fn stmts(&mut self, stmts: &[ast::Stmt<'_>]) {
        for s in stmts {
            self.stmt(s);
        }
    }

    fn bind(&mut self, target: &ast::Expr<'_>) {
        match target {
            ast::Expr::Var(v) => {
                self.locals.insert(v.id.to_owned());
            }
            ast::Expr::Tuple(t) => t.items.iter().for_each(|e| self.bind(e)),
            ast::Expr::List(l) => l.items.iter().for_each(|e| self.bind(e)),
            other => self.expr(other),
        }
    }

    fn stmt(&mut self, stmt: &ast::Stmt<'_>) {
        match stmt {
            ast::Stmt::Template(t) => self.stmts(&t.children),
            ast::Stmt::EmitExpr(e) => self.expr(&e.expr),
            ast::Stmt::EmitRaw(_) => {}
            ast::Stmt::ForLoop(f) => {
                self.bind(&f.target);
                self.locals.insert("loop".into());
                self.expr(&f.iter);
                if let Some(e) = &f.filter_expr {
                    self.expr(e);
                }
                self.stmts(&f.body);
                self.stmts(&f.else_body);
            }
            ast::Stmt::IfCond(i) => {
                self.expr(&i.expr);
                self.stmts(&i.true_body);
                self.stmts(&i.false_body);
            }
            ast::Stmt::WithBlock(w) => {
                for (target, value) in &w.assignments {
                    self.bind(target);
                    self.expr(value);
                }
                self.stmts(&w.body);
            }
            ast::Stmt::Set(s) => {
                self.bind(&s.target);
                self.expr(&s.expr);
            }
            ast::Stmt::SetBlock(s) => {
                self.bind(&s.target);
                if let Some(f) = &s.filter {
                    self.expr(f);
                }
                self.stmts(&s.body);
            }
            ast::Stmt::AutoEscape(a) => {
                self.expr(&a.enabled);
                self.stmts(&a.body);
            }
            ast::Stmt::FilterBlock(f) => {
                self.expr(&f.filter);
                self.stmts(&f.body);
            }
            ast::Stmt::Block(b) => self.stmts(&b.body),
            ast::Stmt::Import(i) => {
                self.expr(&i.expr);
                self.bind(&i.name);
            }
            ast::Stmt::FromImport(i) => {
                self.expr(&i.expr);
                for (name, alias) in &i.names {
                    self.bind(alias.as_ref().unwrap_or(name));
                }
            }
            ast::Stmt::Extends(e) => self.expr(&e.name),
            ast::Stmt::Include(i) => self.expr(&i.name),
            ast::Stmt::Macro(m) => self.macro_decl(m),
            ast::Stmt::CallBlock(c) => {
                self.call(&c.call, c.call.span());
                self.macro_decl(&c.macro_decl);
            }
            ast::Stmt::Do(d) => self.call(&d.call, d.call.span()),
        }
    }

    fn macro_decl(&mut self, m: &ast::Macro<'_>) {
        self.locals.insert(m.name.to_owned());
        for name in ["caller", "varargs", "kwargs"] {
            self.locals.insert(name.into());
        }
        m.args.iter().for_each(|a| self.bind(a));
        m.defaults.iter().for_each(|d| self.expr(d));
        self.stmts(&m.body);
    }

    fn args(&mut self, args: &[ast::CallArg<'_>]) -> (usize, bool, Vec<String>) {
        let (mut positional, mut splat, mut keywords) = (0, false, Vec::new());
        for arg in args {
            match arg {
                ast::CallArg::Pos(e) => {
                    positional += 1;
                    self.expr(e);
                }
                ast::CallArg::Kwarg(name, e) => {
                    keywords.push((*name).to_owned());
                    self.expr(e);
                }
                ast::CallArg::PosSplat(e) | ast::CallArg::KwargSplat(e) => {
                    splat = true;
                    self.expr(e);
                }
            }
        }
        (positional, splat, keywords)
    }

    fn record(&mut self, kind: Kind, name: &str, args: &[ast::CallArg<'_>], span: Span) {
        let (positional, splat, keywords) = self.args(args);
        self.uses.push(Use {
            kind,
            name: name.to_owned(),
            positional,
            splat,
            keywords,
            at: at(span),
        });
    }

    fn call(&mut self, call: &ast::Call<'_>, span: Span) {
        match &call.expr {
            ast::Expr::Var(v) => self.record(Kind::Function, v.id, &call.args, span),
            // A method (`x.items()`, `loop.cycle()`): not a global name.
            other => {
                self.expr(other);
                self.args(&call.args);
            }
        }
    }

    fn expr(&mut self, expr: &ast::Expr<'_>) {
        match expr {
            ast::Expr::Var(_) | ast::Expr::Const(_) => {}
            ast::Expr::Slice(s) => {
                self.expr(&s.expr);
                for e in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(e);
                }
            }
            ast::Expr::UnaryOp(u) => self.expr(&u.expr),
            ast::Expr::BinOp(b) => {
                self.expr(&b.left);
                self.expr(&b.right);
            }
            ast::Expr::Compare(c) => {
                self.expr(&c.expr);
                c.ops.iter().for_each(|op| self.expr(&op.expr));
            }
            ast::Expr::IfExpr(i) => {
                self.expr(&i.test_expr);
                self.expr(&i.true_expr);
                if let Some(e) = &i.false_expr {
                    self.expr(e);
                }
            }
            ast::Expr::Filter(f) => {
                if let Some(e) = &f.expr {
                    self.expr(e);
                }
                self.record(Kind::Filter, f.name, &f.args, f.span());
            }
            ast::Expr::Test(t) => {
                self.expr(&t.expr);
                self.record(Kind::Test, t.name, &t.args, t.span());
            }
            ast::Expr::GetAttr(g) => {
                if let ast::Expr::Var(v) = &g.expr {
                    self.read(v.id, g.name, g.span());
                }
                self.expr(&g.expr);
            }
            ast::Expr::GetItem(g) => {
                if let (ast::Expr::Var(v), Some(key)) = (&g.expr, g.subscript_expr.as_const()) {
                    if let Some(key) = key.as_str() {
                        self.read(v.id, key, g.span());
                    }
                }
                self.expr(&g.expr);
                self.expr(&g.subscript_expr);
            }
            ast::Expr::Call(c) => self.call(c, c.span()),
            ast::Expr::List(l) => l.items.iter().for_each(|e| self.expr(e)),
            ast::Expr::Tuple(t) => t.items.iter().for_each(|e| self.expr(e)),
            ast::Expr::Map(m) => {
                m.keys.iter().for_each(|e| self.expr(e));
                m.values.iter().for_each(|e| self.expr(e));
            }
        }
    }

    fn read(&mut self, root: &str, name: &str, span: Span) {
        if matches!(root, "secrets" | "enrich") {
            self.reads.push(Read {
                root: root.to_owned(),
                name: name.to_owned(),
                at: at(span),
            });
        }
    }
}

/// What a filter, test or function accepts, where recado knows it: positional
/// arguments (a filter's value not counted) and keyword names. `None`: any.
struct Signature {
    min: usize,
    max: Option<usize>,
    keywords: Option<&'static [&'static str]>,
}

const fn sig(min: usize, max: usize, keywords: &'static [&'static str]) -> Signature {
    Signature {
        min,
        max: Some(max),
        keywords: Some(keywords),
    }
}

/// Any arguments: the signature is not checked.
const ANY: Signature = Signature {
    min: 0,
    max: None,
    keywords: None,
};

const DATE_KWARGS: &[&str] = &["format", "tz"];

/// Filters of recado (`crate::filters`), minijinja-contrib and minijinja's
/// built-ins, as registered by [`compile::environment`]. A test checks that
/// each exists there.
const FILTERS: &[(&str, Signature)] = &[
    // recado
    ("brl", sig(0, 0, &[])),
    ("number_br", sig(0, 1, &[])),
    ("first_name", sig(0, 0, &["fallback"])),
    ("phone_br", sig(0, 0, &[])),
    ("dateformat", sig(0, 0, DATE_KWARGS)),
    ("datetimeformat", sig(0, 0, DATE_KWARGS)),
    // minijinja-contrib
    ("timeformat", sig(0, 0, DATE_KWARGS)),
    (
        "truncate",
        sig(0, 0, &["length", "killwords", "end", "leeway"]),
    ),
    ("pluralize", sig(0, 2, &[])),
    ("filesizeformat", sig(0, 1, &[])),
    ("striptags", sig(0, 0, &[])),
    ("wordcount", sig(0, 0, &[])),
    // minijinja
    ("default", sig(0, 2, &[])),
    ("d", sig(0, 2, &[])),
    ("round", sig(0, 2, &["precision", "method"])),
    ("replace", sig(2, 3, &["count"])),
    ("join", sig(0, 2, &["attribute"])),
    ("length", sig(0, 0, &[])),
    ("count", sig(0, 0, &[])),
    ("upper", sig(0, 0, &[])),
    ("lower", sig(0, 0, &[])),
    ("title", sig(0, 0, &[])),
    ("capitalize", sig(0, 0, &[])),
    ("trim", sig(0, 1, &[])),
    ("first", sig(0, 0, &[])),
    ("last", sig(0, 0, &[])),
    ("int", sig(0, 2, &["default", "base"])),
    ("float", sig(0, 1, &["default"])),
    ("string", sig(0, 0, &[])),
    ("abs", sig(0, 0, &[])),
    ("list", sig(0, 0, &[])),
    ("bool", sig(0, 0, &[])),
    ("lines", sig(0, 0, &[])),
    ("split", sig(0, 2, &[])),
    ("items", sig(0, 0, &[])),
    ("reverse", sig(0, 0, &[])),
    ("unique", sig(0, 0, &["attribute", "case_sensitive"])),
    ("min", sig(0, 0, &["attribute", "case_sensitive"])),
    ("max", sig(0, 0, &["attribute", "case_sensitive"])),
    (
        "sort",
        sig(0, 0, &["reverse", "attribute", "case_sensitive"]),
    ),
    ("sum", sig(0, 2, &["attribute", "start"])),
    ("attr", sig(1, 1, &[])),
    ("batch", sig(1, 2, &[])),
    ("slice", sig(1, 2, &[])),
    ("safe", sig(0, 0, &[])),
    ("escape", sig(0, 0, &[])),
    ("e", sig(0, 0, &[])),
    ("pprint", sig(0, 0, &[])),
    ("selectattr", Signature { min: 1, ..ANY }),
    ("rejectattr", Signature { min: 1, ..ANY }),
    ("select", ANY),
    ("reject", ANY),
    ("map", ANY),
    ("dictsort", ANY),
    ("groupby", ANY),
    ("indent", ANY),
    ("tojson", ANY),
    ("chain", ANY),
    ("zip", ANY),
    ("format", ANY),
    ("urlencode", sig(0, 0, &[])),
];

/// Tests; a test's value is not counted.
const TESTS: &[(&str, Signature)] = &[
    ("defined", sig(0, 0, &[])),
    ("undefined", sig(0, 0, &[])),
    ("none", sig(0, 0, &[])),
    ("true", sig(0, 0, &[])),
    ("false", sig(0, 0, &[])),
    ("boolean", sig(0, 0, &[])),
    ("odd", sig(0, 0, &[])),
    ("even", sig(0, 0, &[])),
    ("number", sig(0, 0, &[])),
    ("integer", sig(0, 0, &[])),
    ("float", sig(0, 0, &[])),
    ("string", sig(0, 0, &[])),
    ("sequence", sig(0, 0, &[])),
    ("iterable", sig(0, 0, &[])),
    ("mapping", sig(0, 0, &[])),
    ("lower", sig(0, 0, &[])),
    ("upper", sig(0, 0, &[])),
    ("safe", sig(0, 0, &[])),
    ("escaped", sig(0, 0, &[])),
    ("divisibleby", sig(1, 1, &[])),
    ("startingwith", sig(1, 1, &[])),
    ("endingwith", sig(1, 1, &[])),
    ("sameas", sig(1, 1, &[])),
    ("in", sig(1, 1, &[])),
    ("eq", sig(1, 1, &[])),
    ("equalto", sig(1, 1, &[])),
    ("ne", sig(1, 1, &[])),
    ("lt", sig(1, 1, &[])),
    ("lessthan", sig(1, 1, &[])),
    ("le", sig(1, 1, &[])),
    ("gt", sig(1, 1, &[])),
    ("greaterthan", sig(1, 1, &[])),
    ("ge", sig(1, 1, &[])),
    ("filter", sig(0, 0, &[])),
    ("test", sig(0, 0, &[])),
];

const FUNCTIONS: &[(&str, Signature)] = &[
    ("range", sig(1, 3, &[])),
    ("now", sig(0, 0, &[])),
    ("joiner", sig(0, 1, &[])),
    ("dict", ANY),
    ("namespace", ANY),
    ("cycler", ANY),
    ("debug", ANY),
];

/// The environment templates run in; filters, tests and functions are the
/// same whatever the options.
static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    compile::environment(&CompileOptions {
        timezone: "UTC".into(),
        fuel: compile::DEFAULT_FUEL,
    })
});

/// Whether the environment has it. minijinja has no public lookup: a filter
/// or test is called with no arguments, which fails on the missing value
/// before doing anything, and only an unknown one fails as unknown.
fn exists(kind: Kind, name: &str) -> bool {
    let mut state = ENV.empty_state();
    match kind {
        Kind::Filter => {
            !matches!(state.apply_filter(name, &[]), Err(e) if e.kind() == ErrorKind::UnknownFilter)
        }
        Kind::Test => {
            !matches!(state.perform_test(name, &[]), Err(e) if e.kind() == ErrorKind::UnknownTest)
        }
        Kind::Function => ENV.globals().any(|(n, _)| n == name),
    }
}

fn table(kind: Kind) -> &'static [(&'static str, Signature)] {
    match kind {
        Kind::Filter => FILTERS,
        Kind::Test => TESTS,
        Kind::Function => FUNCTIONS,
    }
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// Problems with one use: unknown name, argument count, keyword names.
fn check_use(u: &Use) -> Vec<String> {
    let word = u.kind.word();
    if !exists(u.kind, &u.name) {
        let mut names: Vec<&'static str> = table(u.kind).iter().map(|(n, _)| *n).collect();
        if u.kind == Kind::Function {
            names.clear();
        }
        let hint = match suggest(&u.name, names.iter().copied()) {
            Some(s) => format!("; did you mean `{s}`?"),
            None => format!("; see the list of {word}s in docs/integrations.md"),
        };
        return vec![format!("unknown {word} `{}`{hint}", u.name)];
    }
    let Some((_, sig)) = table(u.kind).iter().find(|(n, _)| *n == u.name) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let n = u.positional;
    let too_few = n < sig.min && !u.splat;
    let too_many = sig.max.is_some_and(|max| n > max);
    if too_few || too_many {
        let wanted = match sig.max {
            Some(0) => "no arguments".to_owned(),
            Some(max) if max == sig.min => plural(max, "argument"),
            Some(max) => format!("{} to {}", sig.min, plural(max, "argument")),
            None => format!("at least {}", plural(sig.min, "argument")),
        };
        let mut msg = format!(
            "{word} `{}` takes {wanted}{}, got {n}",
            u.name,
            if u.kind == Kind::Filter && sig.max == Some(0) {
                " in parentheses"
            } else {
                ""
            }
        );
        if let Some(kw) = sig.keywords.filter(|k| !k.is_empty() && too_many) {
            msg += &format!("; name them instead, e.g. `{}({}=…)`", u.name, kw[0]);
        }
        out.push(msg);
    }
    if let Some(allowed) = sig.keywords {
        for k in u.keywords.iter().filter(|k| !allowed.contains(&k.as_str())) {
            let known = if allowed.is_empty() {
                "it takes none".to_owned()
            } else {
                format!("it takes {}", allowed.join(", "))
            };
            let hint = did_you_mean(k, allowed.iter().copied());
            out.push(format!(
                "{word} `{}` has no keyword argument `{k}` ({known}){hint}",
                u.name
            ));
        }
    }
    out
}

/// What the checks know of the tenant. `None`: not known (its `tenant.yaml`
/// is broken), so those checks are skipped rather than guessed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantFacts {
    pub secrets: Option<BTreeSet<String>>,
    pub upstreams: Option<Vec<Origin>>,
}

/// A problem at `path`, at `inner` (line, column inside the value) if known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: FieldPath,
    pub inner: Option<(usize, usize)>,
    pub message: String,
}

const COMMENT_HINT: &str = "`{#` starts a comment that hides the text up to `#}`, here across a line end; to print `{#`, write `{{ \"{#\" }}` or put the text inside `{% raw %}…{% endraw %}`";

/// Every problem of an integration that parsed, in file order.
pub fn integration(spec: &IntegrationSpec, facts: &TenantFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    let calls: BTreeSet<&str> = spec.enrich.calls.iter().map(|(n, _)| n.as_str()).collect();
    for (name, call) in &spec.enrich.calls {
        let base = FieldPath::key("enrich").then(name);
        let url_path = FieldPath::key("url").under(&base);
        match (&call.origin, &facts.upstreams) {
            (Some(origin), Some(allowed)) if !allowed.is_empty() && !allowed.contains(origin) => {
                out.push(Finding {
                    path: url_path,
                    inner: None,
                    message: format!(
                        "`{}` is not one of the tenant's `upstreams` ({}); add it to `upstreams:` in tenant.yaml or fix the URL",
                        origin.0,
                        allowed.iter().map(|o| o.0.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                });
            }
            (None, Some(allowed)) if allowed.is_empty() => out.push(Finding {
                path: url_path,
                inner: None,
                message: "the URL's `scheme://host[:port]` is a template; that is allowed only when tenant.yaml lists the hosts it may reach under `upstreams:`; write the host as plain text or list it there".into(),
            }),
            _ => {}
        }
        // The URL builder encodes `url` and `query` values for where they
        // land; `urlencode` on top would send `%2520` for a space.
        let encoded_for_you = std::iter::once((FieldPath::key("url"), &call.url)).chain(
            call.query
                .iter()
                .map(|(k, v)| (FieldPath::key("query").then(k), v)),
        );
        for (field, src) in encoded_for_you {
            let twice = src
                .scan
                .uses
                .iter()
                .filter(|u| u.kind == Kind::Filter && u.name == "urlencode");
            for u in twice {
                out.push(Finding {
                    path: field.under(&base),
                    inner: Some(u.at),
                    message: "`urlencode` is not needed here: recado encodes each value of a call's `url` and `query` for where it lands, so this would encode it twice (a space would arrive as `%2520`); remove `| urlencode`".into(),
                });
            }
        }
        for (field, src) in call.templates() {
            template(&field.under(&base), src, &calls, facts, &mut out);
        }
    }
    for (i, msg) in spec.messages.iter().enumerate() {
        let base = FieldPath::key("messages").at(i);
        for (key, expr) in [
            ("when", msg.when.as_ref()),
            ("for_each", msg.for_each.as_ref().map(|f| &f.list)),
        ] {
            if let Some(expr) = expr {
                uses(&base.then(key), &expr.scan, &mut out);
            }
        }
        for (field, src) in msg.content.templates() {
            template(&field.under(&base), src, &calls, facts, &mut out);
        }
    }
    out
}

fn uses(path: &FieldPath, scan: &Scan, out: &mut Vec<Finding>) {
    for u in &scan.uses {
        for message in check_use(u) {
            out.push(Finding {
                path: path.clone(),
                inner: Some(u.at),
                message,
            });
        }
    }
}

fn template(
    path: &FieldPath,
    src: &TemplateSrc,
    calls: &BTreeSet<&str>,
    facts: &TenantFacts,
    out: &mut Vec<Finding>,
) {
    let scan = &src.scan;
    for &at in &scan.long_comments {
        out.push(Finding {
            path: path.clone(),
            inner: Some(at),
            message: COMMENT_HINT.into(),
        });
    }
    uses(path, scan, out);
    for r in &scan.reads {
        let message = match r.root.as_str() {
            "enrich" if !calls.contains(r.name.as_str()) => format!(
                "`{path}` reads `enrich.{}`, but `enrich:` has no call named `{}`{}; declare it under `enrich:` or fix the name",
                r.name,
                r.name,
                suggest(&r.name, calls.iter().copied()).map_or(String::new(), |s| format!(" (did you mean `{s}`?)"))
            ),
            "secrets" => match &facts.secrets {
                Some(known) if !known.contains(&r.name) => format!(
                    "unknown secret `{}`: tenant.yaml's `secrets:` has {}{}",
                    r.name,
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
                    },
                    suggest(&r.name, known.iter().map(String::as_str))
                        .map_or(String::new(), |s| format!("; did you mean `{s}`?"))
                ),
                _ => continue,
            },
            _ => continue,
        };
        out.push(Finding {
            path: path.clone(),
            inner: Some(r.at),
            message,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(scan: &Scan) -> Vec<String> {
        scan.uses
            .iter()
            .map(|u| {
                format!(
                    "{}:{}({}{}{})@{}:{}",
                    u.kind.word(),
                    u.name,
                    u.positional,
                    if u.splat { "*" } else { "" },
                    u.keywords
                        .iter()
                        .map(|k| format!(",{k}="))
                        .collect::<String>(),
                    u.at.0,
                    u.at.1
                )
            })
            .collect()
    }

    /// Fails loudly if minijinja's AST (an unstable API) changes what the
    /// walker sees.
    #[test]
    fn walker_sees_every_construct() {
        let src = "{{ a | upper }}{% if b is divisibleby 3 %}\n\
                   {% for x in range(3) if x is odd %}{{ x | round(1, method='floor') }}{% endfor %}\n\
                   {% set f = dict(a=1) %}{{ f() }}{{ secrets.tok }}{{ enrich['c'].x }}\n\
                   {% macro m(y) %}{{ caller() }}{{ y | truncate(length=3) }}{% endmacro %}\n\
                   {% filter lower %}x{% endfilter %}{{ [1, 2][0:1] | join(*z) }}{{ q.items() }}{% endif %}";
        let scan = scan_template(src);
        assert_eq!(
            names(&scan),
            [
                "filter:upper(0)@1:8",
                "test:divisibleby(1)@1:27",
                "function:range(1)@2:13",
                "test:odd(0)@2:30",
                "filter:round(1,method=)@2:43",
                "function:dict(0,a=)@3:12",
                "filter:truncate(0,length=)@4:38",
                "filter:lower(0)@5:11",
                "filter:join(0*)@5:52",
            ]
        );
        let reads: Vec<_> = scan
            .reads
            .iter()
            .map(|r| format!("{}.{}@{}:{}", r.root, r.name, r.at.0, r.at.1))
            .collect();
        assert_eq!(reads, ["secrets.tok@3:36", "enrich.c@3:53"]);
        assert_eq!(
            names(&scan_expr("x | lenght > 0")),
            ["filter:lenght(0)@1:5"]
        );
    }

    #[test]
    fn every_listed_name_exists() {
        for kind in [Kind::Filter, Kind::Test, Kind::Function] {
            for (name, _) in table(kind) {
                assert!(
                    exists(kind, name),
                    "{} `{name}` is listed but not registered",
                    kind.word()
                );
            }
            assert!(!exists(kind, "no_such_thing"));
        }
    }

    fn problems(src: &str) -> Vec<String> {
        scan_template(src).uses.iter().flat_map(check_use).collect()
    }

    #[test]
    fn unknown_names_and_bad_arguments() {
        assert_eq!(
            problems("{{ a | first_nme }}"),
            ["unknown filter `first_nme`; did you mean `first_name`?"]
        );
        assert_eq!(
            problems("{{ a | timeformt }}{% if a is numbr %}{% endif %}"),
            [
                "unknown filter `timeformt`; did you mean `timeformat`?",
                "unknown test `numbr`; did you mean `number`?"
            ]
        );
        assert_eq!(
            problems("{{ a | brl(casas=3) }}"),
            ["filter `brl` has no keyword argument `casas` (it takes none)"]
        );
        assert_eq!(
            problems("{{ a | truncate(20) }}"),
            ["filter `truncate` takes no arguments in parentheses, got 1; name them instead, e.g. `truncate(length=…)`"]
        );
        assert_eq!(
            problems("{{ a | replace('x') }}"),
            ["filter `replace` takes 2 to 3 arguments, got 1"]
        );
        assert!(problems(
            "{{ a | replace('x', 'y') | default('-', true) | map(attribute='n') | join(', ') }}"
        )
        .is_empty());
        assert_eq!(long_comments("Pedido {#123}\nValor"), [(1, 8)]);
        assert!(long_comments("{# ok #}\n{{ '{#' }}\n{% raw %}{#\n{% endraw %}").is_empty());
    }

    /// The filters really reject what the table refuses, so a refusal never
    /// blocks a template that would have worked.
    #[test]
    fn table_matches_runtime() {
        let env = &*ENV;
        let ctx = minijinja::context! { a => "Ana Maria" };
        for (src, ok) in [
            ("{{ a | truncate(3) }}", false),
            ("{{ a | truncate(length=3) }}", true),
            ("{{ 1 | brl(casas=3) }}", false),
            ("{{ '2026-01-02' | dateformat('%d') }}", false),
            ("{{ '2026-01-02' | dateformat(format='%d') }}", true),
            ("{{ 1.5 | round(1, method='floor') }}", true),
            ("{{ a | urlencode }}", true),
            ("{{ a | urlencode('x') }}", false),
            ("{{ a | wordcount }}", true),
            ("{{ a | first_name }}", true),
            ("{{ '5511' | first_name(fallback='cliente') }}", true),
            ("{{ a | first_name('cliente') }}", false),
            ("{{ a | first_name(padrao='cliente') }}", false),
        ] {
            let rendered = env.render_str(src, &ctx);
            assert_eq!(rendered.is_ok(), ok, "{src}: {rendered:?}");
            assert_eq!(problems(src).is_empty(), ok, "{src}");
        }
    }
}
