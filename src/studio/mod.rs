//! The studio (`/studio`): operators look at what a contact will get, next
//! to the YAML that makes it, and try drafts without saving them. Served on
//! the webhooks' own listener; nothing to install.
//!
//! Who may look: the admin token sees every tenant, a tenant's
//! `studio_tokens` see that tenant only. A browser signs in once and gets a
//! session cookie (HttpOnly, SameSite=Strict, Secure over https); every POST
//! of a session carries its CSRF token. Scripts may send the same tokens as
//! `Authorization: Bearer` instead. Without either, no page names a tenant
//! or an integration; a tenant that is not the viewer's answers 404, as one
//! that does not exist.

mod api;
pub use api::MAX_PREVIEW_BYTES;
/// The one operators' route whose body may be larger than a sign-in form.
pub const PREVIEW_PATH: &str = "/studio/api/preview";
mod html;
mod pages;
pub mod session;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Snapshot;
use crate::state::AppState;
use session::{Scope, Session, Who};

/// The session cookie's name.
pub const COOKIE: &str = "recado_studio";

/// Where the sign-in form posts its token.
pub const LOGIN_PATH: &str = "/studio/login";

const CSS: &str = include_str!("assets/studio.css");
const JS: &str = include_str!("assets/studio.js");

/// No external source of any kind; images may come from the operators' own
/// https media URLs (a message's IMAGE), shown as the contact would see them.
const CSP: &str = "default-src 'self'; img-src 'self' https: data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The studio's routes, merged into [`crate::server::router`].
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/studio", get(pages::home))
        .route("/studio/", get(pages::home))
        .route(LOGIN_PATH, post(login))
        .route("/studio/logout", post(logout))
        .route("/studio/t/{tenant}", get(pages::tenant))
        .route(
            "/studio/t/{tenant}/i/{integration}",
            get(pages::integration),
        )
        .route(PREVIEW_PATH, post(api::preview))
        .route(
            "/studio/assets/studio.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/studio/assets/studio.js",
            get(|| async { asset(JS, "text/javascript; charset=utf-8") }),
        )
        .layer(axum::middleware::map_response(security_headers))
}

fn asset(text: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response()
}

async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: with it, browsers send `Origin: null` on the
    // pages' own POSTs, and the same-origin check could not tell them apart.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// Who is asking, and how.
pub(crate) struct Viewer {
    pub who: Who,
    /// The browser session, when signed in with a cookie (not for Bearer).
    pub session: Option<Session>,
}

impl Viewer {
    pub fn csrf(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.csrf.as_str())
    }
}

/// The viewer of a request: `Authorization: Bearer` first, else the
/// session cookie, whose tenant token must still be listed in its
/// `tenant.yaml` (removing it signs the sessions out).
pub(crate) fn viewer(app: &AppState, snapshot: &Snapshot, headers: &HeaderMap) -> Option<Viewer> {
    if let Some(token) = crate::lockout::bearer(headers) {
        return who_for_token(app, snapshot, token.trim()).map(|who| Viewer { who, session: None });
    }
    let session = app.studio.get(&session_id(headers)?)?;
    // The token it was opened with must still be configured.
    let opened_with = |digest: &[u8; 32]| app.studio.token_id(digest) == session.token;
    let who = match &session.scope {
        Scope::Admin => {
            let admin = app.settings.admin_token.as_ref()?;
            opened_with(admin.digest()).then_some(Who::Admin)?
        }
        Scope::Tenant(name) => {
            let tenant = snapshot.tenants.get(name)?;
            let digest = tenant
                .studio_token_digests
                .iter()
                .find(|d| opened_with(d))?;
            Who::Tenant {
                name: name.clone(),
                digest: *digest,
            }
        }
    };
    Some(Viewer {
        who,
        session: Some(session),
    })
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .map(str::to_owned)
}

/// The admin token, or one tenant's studio token.
fn who_for_token(app: &AppState, snapshot: &Snapshot, token: &str) -> Option<Who> {
    if token.is_empty() {
        return None;
    }
    if app
        .settings
        .admin_token
        .as_ref()
        .is_some_and(|a| a.accepts(token))
    {
        return Some(Who::Admin);
    }
    let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    snapshot.tenants.values().find_map(|t| {
        t.studio_token_digests
            .iter()
            .any(|d| bool::from(d.ct_eq(&presented)))
            .then(|| Who::Tenant {
                name: t.name.clone(),
                digest: presented,
            })
    })
}

/// A browser's POST that another site started is refused: `Sec-Fetch-Site`
/// and `Origin` say where it came from when a browser sends it. Scripts
/// that send neither are not browsers and carry no ambient credentials.
fn same_origin(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        if !matches!(site, "same-origin" | "none") {
            return false;
        }
    }
    match get("origin") {
        None => true,
        Some(origin) => {
            let host = get("host").unwrap_or("");
            url::Url::parse(origin).is_ok_and(|u| {
                let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
                !host.is_empty() && format!("{}{port}", u.host_str().unwrap_or("")) == host
            })
        }
    }
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn secure(app: &AppState, headers: &HeaderMap) -> bool {
    app.settings.studio_secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

fn cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/studio; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("recado_studio=; Max-Age=0"))
}

fn redirect(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/studio")),
        )],
    )
        .into_response()
}

/// `POST /studio/login` (form field `token`): opens a session.
async fn login(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if !same_origin(&headers) {
        return html::login(
            StatusCode::FORBIDDEN,
            Some("Pedido recusado: ele não veio desta página."),
        );
    }
    let snapshot = app.config.load();
    let token = form_field(&body, "token").unwrap_or_default();
    let Some(who) = who_for_token(&app, &snapshot, token.trim()) else {
        return html::login(StatusCode::UNAUTHORIZED, Some("Token não reconhecido."));
    };
    let (scope, digest) = match who {
        Who::Tenant { name, digest } => (Scope::Tenant(name), digest),
        Who::Admin => match &app.settings.admin_token {
            Some(admin) => (Scope::Admin, *admin.digest()),
            None => return html::login(StatusCode::UNAUTHORIZED, Some("Token não reconhecido.")),
        },
    };
    let Ok((id, _)) = app.studio.open(scope, &digest) else {
        return html::login(
            StatusCode::SERVICE_UNAVAILABLE,
            Some("Não foi possível abrir a sessão; tente de novo."),
        );
    };
    let mut resp = redirect("/studio");
    resp.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&id, session::SESSION_TTL.as_secs(), secure(&app, &headers)),
    );
    resp
}

/// The sign-in page when the browser's address is locked out
/// ([`crate::lockout`]): 429, and when to try again.
pub fn locked_out(locked: crate::lockout::Locked) -> Response {
    let mut resp = html::login(
        StatusCode::TOO_MANY_REQUESTS,
        Some(&format!(
            "Muitas tentativas com token errado deste endereço; tente de novo em {} s.",
            locked.seconds()
        )),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(locked.seconds()));
    resp
}

/// `POST /studio/logout` (form field `csrf`): closes the session.
async fn logout(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let presented = form_field(&body, "csrf").unwrap_or_default();
    if let Some(id) = session_id(&headers) {
        match app.studio.get(&id) {
            Some(s) if s.csrf_matches(&presented) => app.studio.close(&s),
            Some(_) => return csrf_refused(),
            None => {}
        }
    }
    let mut resp = redirect("/studio");
    resp.headers_mut()
        .insert(header::SET_COOKIE, cookie("", 0, secure(&app, &headers)));
    resp
}

fn csrf_refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({"error": {
            "code": "csrf",
            "message": "this request lacks the session's CSRF token (X-CSRF-Token); reload the page",
        }})),
    )
        .into_response()
}
