//! The studio's server-rendered pages: the tenants, one tenant's
//! integrations with their state, one integration with its YAML and the
//! preview (filled in by `studio.js` from the preview API).

use std::fmt::Write;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::html::{self, page, seg, when, Esc};
use super::session::Who;
use super::{redirect, viewer, Viewer};
use crate::config::{ConfigError, Snapshot, Tenant};
use crate::journal::{Filter, Journal, Redactor};
use crate::state::AppState;

/// `GET /studio`: the sign-in page, the admin's list of tenants, or (for a
/// tenant's token) that tenant's page.
pub async fn home(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let snapshot = app.config.load();
    let Some(v) = viewer(&app, &snapshot, &headers) else {
        // A wrong token is a failed sign-in (counted: `crate::lockout`).
        let status = if crate::lockout::bearer(&headers).is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        return html::login(status, None);
    };
    if let Who::Tenant { name, .. } = &v.who {
        return redirect(&format!("/studio/t/{}", seg(name)));
    }
    let mut body = String::from("<h1>Empresas</h1>\n<ul class=\"cards\">\n");
    for t in snapshot.tenants.values() {
        let errors = snapshot.errors.get(&t.name).map_or(0, Vec::len);
        let _ = writeln!(
            body,
            "<li><a href=\"/studio/t/{}\">{}</a> <span class=\"meta\">{} integrações{}</span></li>",
            seg(&t.name),
            Esc(&t.name),
            t.integrations.len(),
            if errors > 0 {
                format!(", <strong class=\"bad\">{errors} erro(s)</strong>")
            } else {
                String::new()
            }
        );
    }
    body.push_str("</ul>\n");
    let root_errors: Vec<&ConfigError> = snapshot
        .errors
        .iter()
        .filter(|(k, _)| !snapshot.tenants.contains_key(*k))
        .flat_map(|(_, e)| e)
        .collect();
    if !root_errors.is_empty() {
        body.push_str("<h2>Pastas com erro</h2>\n");
        errors_list(&mut body, root_errors.into_iter(), false);
    }
    page(StatusCode::OK, "Empresas", v.csrf(), &body)
}

/// The viewer and the tenant, or the page to answer instead: sign-in when
/// nobody is signed in, 404 for a tenant that is not the viewer's (the
/// same page as for one that does not exist).
fn open_tenant(
    app: &AppState,
    snapshot: &Snapshot,
    headers: &HeaderMap,
    tenant: &str,
) -> Result<(Viewer, std::sync::Arc<Tenant>), Box<Response>> {
    let Some(v) = viewer(app, snapshot, headers) else {
        return Err(Box::new(html::login(StatusCode::UNAUTHORIZED, None)));
    };
    match snapshot.tenants.get(tenant).filter(|_| v.who.sees(tenant)) {
        Some(t) => Ok((v, t.clone())),
        None => Err(Box::new(html::not_found(v.csrf()))),
    }
}

/// `GET /studio/t/{tenant}`.
pub async fn tenant(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let snapshot = app.config.load();
    let (v, t) = match open_tenant(&app, &snapshot, &headers, &name) {
        Ok(x) => x,
        Err(resp) => return *resp,
    };
    let errors: &[ConfigError] = snapshot.errors.get(&t.name).map_or(&[], Vec::as_slice);
    let mut body = String::new();
    let _ = write!(
        body,
        "<nav class=\"crumbs\" aria-label=\"Você está em\"><a href=\"/studio\">Início</a> › <span aria-current=\"page\">{}</span></nav>\n<h1>{}</h1>\n",
        Esc(&t.name),
        Esc(&t.name)
    );
    body.push_str("<h2>Integrações</h2>\n<table class=\"state\">\n<thead><tr><th scope=\"col\">Integração</th><th scope=\"col\">Estado</th><th scope=\"col\">Versão em uso</th><th scope=\"col\">Carregada em</th></tr></thead>\n<tbody>\n");
    for i in t.integrations.values() {
        let broken = errors.iter().filter(|e| e.file == i.file).count();
        let state = if broken > 0 {
            format!("<span class=\"bad\">arquivo com {broken} erro(s): segue no ar a versão anterior</span>")
        } else {
            "<span class=\"good\">no ar</span>".to_owned()
        };
        let _ = writeln!(
            body,
            "<tr><th scope=\"row\"><a href=\"/studio/t/{}/i/{}\">{}</a><div class=\"meta\">{}</div></th><td>{state}</td><td><code>{}</code></td><td>{}</td></tr>",
            seg(&t.name),
            seg(&i.name),
            Esc(&i.name),
            Esc(&i.file),
            Esc(&i.hash),
            Esc(when(&t, i.loaded_at)),
        );
    }
    // Files with errors and no good version are not served at all.
    let mut down: Vec<&str> = errors
        .iter()
        .map(|e| e.file.as_str())
        .filter(|f| !t.integrations.values().any(|i| &i.file == f))
        .collect();
    down.dedup();
    for f in down {
        let _ = writeln!(
            body,
            "<tr><th scope=\"row\">{}</th><td><span class=\"bad\">fora do ar: o arquivo tem erros</span></td><td>—</td><td>—</td></tr>",
            Esc(f)
        );
    }
    body.push_str("</tbody>\n</table>\n");
    if errors.is_empty() {
        body.push_str("<p class=\"good\">Nenhum erro nos arquivos desta empresa.</p>\n");
    } else {
        body.push_str("<h2>Erros nos arquivos</h2>\n");
        errors_list(&mut body, errors.iter(), false);
    }
    if let Some(journal) = &app.journal {
        failures(&mut body, journal, &t, app.settings.log_personal_data);
    }
    page(StatusCode::OK, &t.name, v.csrf(), &body)
}

/// `GET /studio/t/{tenant}/i/{integration}`.
pub async fn integration(
    State(app): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let snapshot = app.config.load();
    let (v, t) = match open_tenant(&app, &snapshot, &headers, &tenant) {
        Ok(x) => x,
        Err(resp) => return *resp,
    };
    let Some(i) = t.integrations.get(&name) else {
        return html::not_found(v.csrf());
    };
    let errors: Vec<&ConfigError> = snapshot
        .errors
        .get(&t.name)
        .into_iter()
        .flatten()
        .filter(|e| e.file == i.file)
        .collect();
    let calls: Vec<&str> = i
        .program
        .borrow_dependent()
        .calls
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let mut body = String::new();
    let _ = write!(
        body,
        r#"<nav class="crumbs" aria-label="Você está em"><a href="/studio">Início</a> › <a href="/studio/t/{tseg}">{tenant}</a> › <span aria-current="page">{name}</span></nav>
<h1>{name}</h1>
<div class="studio" data-tenant="{tenant}" data-integration="{name}" data-hash="{hash}">
<section class="source" aria-labelledby="h-yaml">
<h2 id="h-yaml">YAML</h2>
<p class="meta" id="showing">Mostrando a versão em uso: <code>{hash}</code>, carregada em {loaded}.</p>
"#,
        tseg = seg(&t.name),
        tenant = Esc(&t.name),
        name = Esc(&i.name),
        hash = Esc(&i.hash),
        loaded = Esc(when(&t, i.loaded_at)),
    );
    if !errors.is_empty() {
        body.push_str("<div class=\"disk-errors\"><h3>O arquivo em disco tem erros</h3><p>Enquanto não forem corrigidos, segue no ar a versão abaixo.</p>\n");
        errors_list(&mut body, errors.into_iter(), false);
        body.push_str("</div>\n");
    }
    body.push_str("<pre class=\"code\" id=\"code\" tabindex=\"0\" aria-label=\"Arquivo YAML com números de linha\">");
    for (n, line) in i.source.lines().enumerate() {
        let _ = write!(
            body,
            "<span class=\"line\" id=\"L{n}\" data-n=\"{n}\">{}</span>",
            Esc(line),
            n = n + 1
        );
    }
    body.push_str("</pre>\n");
    let _ = write!(
        body,
        r#"<details class="draft" id="draft-box">
<summary>Editar um rascunho</summary>
<p class="hint">O rascunho não é salvo nem enviado a ninguém: serve só para ver o resultado. Quando estiver bom, copie o YAML para o arquivo.</p>
<label for="draft">Rascunho do arquivo</label>
<textarea id="draft" spellcheck="false" rows="16">{source}</textarea>
<div class="buttons">
<button type="button" id="copy">Copiar YAML</button>
<button type="button" id="discard">Descartar rascunho</button>
<span id="copied" role="status"></span>
</div>
</details>
</section>
<section class="sample" aria-labelledby="h-sample">
<h2 id="h-sample">Pedido de exemplo</h2>
<form id="sample-form">
"#,
        source = Esc(&i.source),
    );
    super::api::sample_pickers(&mut body, &app, &t, i);
    let _ = write!(
        body,
        r#"<div class="row">
<div><label for="contact-name">Nome do contato</label>
<input id="contact-name" name="name" value="Maria Silva" autocomplete="off"></div>
<div><label for="contact-key">Telefone do contato</label>
<input id="contact-key" name="key" value="5511999990000" inputmode="numeric" autocomplete="off"></div>
</div>
<label for="data">Dados do pedido (<code>data</code>, em JSON)</label>
<textarea id="data" spellcheck="false" rows="6">{{}}</textarea>
"#
    );
    if !calls.is_empty() {
        let _ = write!(
            body,
            r#"<label for="enrich">Respostas de exemplo das chamadas ({}), em JSON</label>
<p class="hint" id="enrich-hint">O studio nunca chama o sistema de vocês: escreva aqui o que cada chamada responderia, por exemplo <code>{{"{}": {{…}}}}</code>.</p>
<textarea id="enrich" spellcheck="false" rows="5" aria-describedby="enrich-hint">{{}}</textarea>
"#,
            Esc(calls.join(", ")),
            Esc(calls[0])
        );
    }
    body.push_str(
        r#"<p id="sample-problem" class="problem" role="alert" hidden></p>
</form>
</section>
<section class="phone" aria-labelledby="h-phone">
<h2 id="h-phone">O que o contato recebe</h2>
<div class="screen">
<div class="bar" aria-hidden="true"><span class="avatar"></span><span>Sua empresa</span></div>
<div id="chat" class="chat" aria-live="polite" aria-busy="true"><p class="meta">Carregando a pré-visualização…</p></div>
</div>
<div id="problems-box" hidden><h3>Erros</h3><ul id="problems" class="errors"></ul></div>
<ul id="notes" class="notes"></ul>
</section>
</div>
"#,
    );
    page(StatusCode::OK, &i.name, v.csrf(), &body)
}

/// Failures of a tenant's page, newest first.
const FAILURES: usize = 10;

/// The tenant's last answers that were not 200 or had no message, from the journal, with the
/// contact masked in the error messages as the admin API masks it.
fn failures(out: &mut String, journal: &Journal, t: &Tenant, personal_data: bool) {
    let filter = Filter {
        tenant: Some(t.name.clone()),
        ..Filter::default()
    };
    // The journal filters by one status only; a tenant's rings are bounded
    // (entries per integration), and this runs only when the page is opened.
    let failed: Vec<_> = journal
        .query(&filter, usize::MAX)
        .into_iter()
        // An empty answer (every `when` false) is the commonest "the
        // contact got nothing", and it is a 200.
        .filter(|e| e.status != 200 || e.messages == Some(0))
        .take(FAILURES)
        .collect();
    out.push_str("<h2>Falhas recentes</h2>\n");
    // Refused before the integration was known, a request has no place in
    // an integration's journal; the operator should know where to look.
    out.push_str("<p class=\"hint\">Pedidos recusados antes de chegar a uma integração (JSON inválido, campo obrigatório faltando, token errado, integração desconhecida) não aparecem aqui: veja o log de acesso do recado e <code>recado_requests_total</code> em <code>/metrics</code>.</p>\n");
    if failed.is_empty() {
        out.push_str("<p class=\"good\">Nenhuma falha recente.</p>\n");
        return;
    }
    out.push_str("<p class=\"hint\">Os últimos pedidos que não receberam mensagens, do mais novo ao mais antigo. Nome e telefone do contato aparecem mascarados.</p>\n<table class=\"state failures\">\n<thead><tr><th scope=\"col\">Quando</th><th scope=\"col\">Integração</th><th scope=\"col\">Status</th><th scope=\"col\">Erro</th><th scope=\"col\">Mensagem</th><th scope=\"col\">Pedido</th></tr></thead>\n<tbody>\n");
    for e in failed {
        let integration = if t.integrations.contains_key(e.integration()) {
            format!(
                "<a href=\"/studio/t/{}/i/{}\">{}</a>",
                seg(&t.name),
                seg(e.integration()),
                Esc(e.integration())
            )
        } else {
            Esc(e.integration()).to_string()
        };
        let (code, message) = match &e.error {
            // Without the body the contact is unknown, so nothing to mask
            // with: the message is not shown rather than shown unmasked.
            Some((code, _)) if e.body().is_empty() && !personal_data => (
                *code,
                "(não mostrada: o pedido era grande demais para o diário)".to_owned(),
            ),
            Some((code, message)) => (
                *code,
                Redactor::for_body(e.body(), personal_data).text(message),
            ),
            None if e.messages == Some(0) => (
                "—",
                "nenhuma mensagem: a resposta foi uma lista vazia (todo `when` deu falso)"
                    .to_owned(),
            ),
            None => ("—", String::new()),
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><th scope=\"row\">{integration}</th><td>{}</td><td><code>{}</code></td><td class=\"msg\">{}</td><td>{}</td></tr>",
            Esc(when(t, e.at)),
            e.status,
            Esc(code),
            Esc(message),
            e.request_id.map_or_else(|| "—".to_owned(), |id| id.to_string()),
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

/// A list of config errors in plain words, each at its file:line:col.
fn errors_list<'a>(out: &mut String, errors: impl Iterator<Item = &'a ConfigError>, link: bool) {
    out.push_str("<ul class=\"errors\">\n");
    for e in errors {
        let at = match (e.line, e.column) {
            (Some(l), Some(c)) => format!("{}, linha {l}, coluna {c}", e.file),
            (Some(l), None) => format!("{}, linha {l}", e.file),
            _ => e.file.clone(),
        };
        let at = match (link, e.line) {
            (true, Some(l)) => format!("<a href=\"#L{l}\">{}</a>", Esc(at)),
            _ => format!("<strong>{}</strong>", Esc(at)),
        };
        let _ = writeln!(out, "<li>{at}: {}</li>", Esc(&e.message));
    }
    out.push_str("</ul>\n");
}
