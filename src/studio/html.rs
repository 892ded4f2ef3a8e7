//! HTML for the studio's pages: every value written into a page goes through
//! [`Esc`], so a tenant's file name or YAML text can never become markup.

use std::fmt::{self, Display, Write};

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// Writes a value HTML-escaped (text and attribute values alike).
pub struct Esc<T>(pub T);

impl<T: Display> Display for Esc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Escaper<'a, 'b>(&'a mut fmt::Formatter<'b>);
        impl Write for Escaper<'_, '_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                let mut last = 0;
                for (i, b) in s.bytes().enumerate() {
                    let rep = match b {
                        b'&' => "&amp;",
                        b'<' => "&lt;",
                        b'>' => "&gt;",
                        b'"' => "&quot;",
                        b'\'' => "&#39;",
                        _ => continue,
                    };
                    self.0.write_str(&s[last..i])?;
                    self.0.write_str(rep)?;
                    last = i + 1;
                }
                self.0.write_str(&s[last..])
            }
        }
        write!(Escaper(f), "{}", self.0)
    }
}

/// A path segment for a link (tenant folder names are free text).
pub fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A whole page. `csrf` is set for a signed-in browser session: the page's
/// script sends it with every POST, and the sign-out form carries it.
pub fn page(status: StatusCode, title: &str, csrf: Option<&str>, body: &str) -> Response {
    let mut out = String::with_capacity(body.len() + 1024);
    let _ = write!(
        out,
        r##"<!doctype html>
<html lang="pt-BR">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
{csrf_meta}<title>{title} · recado studio</title>
<link rel="stylesheet" href="/studio/assets/studio.css">
<script src="/studio/assets/studio.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Pular para o conteúdo</a>
<header class="top">
<a class="brand" href="/studio">recado <span>studio</span></a>
{signout}
</header>
<main id="main" tabindex="-1">
{body}
</main>
</body>
</html>
"##,
        csrf_meta = csrf
            .map(|c| format!("<meta name=\"csrf-token\" content=\"{}\">\n", Esc(c)))
            .unwrap_or_default(),
        title = Esc(title),
        signout = csrf
            .map(|c| format!(
                "<form method=\"post\" action=\"/studio/logout\" class=\"signout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Sair</button></form>",
                Esc(c)
            ))
            .unwrap_or_default(),
    );
    (status, Html(out)).into_response()
}

/// The sign-in page: names nothing that is behind it.
pub fn login(status: StatusCode, problem: Option<&str>) -> Response {
    let problem = problem
        .map(|p| format!("<p class=\"problem\" role=\"alert\">{}</p>", Esc(p)))
        .unwrap_or_default();
    let body = format!(
        r#"<section class="login">
<h1>Entrar no studio</h1>
<p>Veja, antes de salvar, as mensagens que o contato vai receber.</p>
{problem}<form method="post" action="/studio/login">
<label for="token">Token de acesso</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<button type="submit">Entrar</button>
</form>
<p class="hint">Use o token de administrador do recado, ou um dos <code>studio_tokens</code> do <code>tenant.yaml</code> da sua empresa.</p>
</section>"#
    );
    page(status, "Entrar", None, &body)
}

pub fn not_found(csrf: Option<&str>) -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Não encontrado",
        csrf,
        "<h1>Página não encontrada</h1><p>Esta página não existe, ou o seu acesso não a inclui.</p><p><a href=\"/studio\">Voltar ao início</a></p>",
    )
}

/// A moment as the tenant's operators read it: their zone, Brazilian order.
pub fn when(t: &crate::config::Tenant, at: std::time::SystemTime) -> String {
    let Ok(ts) = jiff::Timestamp::try_from(at) else {
        return String::new();
    };
    let tz =
        jiff::tz::TimeZone::get(&t.compile_options().timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    ts.to_zoned(tz).strftime("%d/%m/%Y %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            Esc("<a href=\"x\">'&'</a>").to_string(),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(Esc("ação").to_string(), "ação");
    }
}
