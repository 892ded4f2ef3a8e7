//! The webhook: the request's whole path, one stage per line, each stage
//! its own module: receive ([`crate::server`]) → validate request
//! ([`crate::request`]) → tenant ([`crate::tenant`]) → enrich
//! ([`crate::enrich`]) → render ([`crate::render`]) → validate output
//! ([`crate::output`]) → respond ([`crate::error`]). Metrics and the access
//! line are the stack's ([`crate::server::App`]), from the [`RequestRecord`]
//! the webhook fills in.

use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

use crate::config::{Integration, Limits, Snapshot, Tenant};
use crate::enrich::{CallLog, Upstream};
use crate::error::ApiError;
use crate::journal::{Exchange, RingRef};
use crate::output::Message;
use crate::render::{render, request_context};
use crate::request::{Envelope, PlatformRequest, RequestVars};
use crate::state::AppState;
use crate::telemetry::{RequestRecord, TenantMetrics};
use crate::tenant::{authenticate, token_from};

/// How long a client may take to send a request's body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// An answer's body: the webhook's JSON as bytes (`Left`), or any body the
/// router makes (`Right`). The webhook's answer is not boxed behind a
/// `dyn Body` as axum's would be: one allocation and a virtual call per
/// poll less on every request.
pub type AnswerBody = http_body_util::Either<http_body_util::Full<Bytes>, axum::body::Body>;

/// A response with an [`AnswerBody`].
pub type Answer = http::Response<AnswerBody>;

/// An axum response as an [`Answer`].
pub fn answer(response: Response) -> Answer {
    response.map(http_body_util::Either::Right)
}

/// `POST /hooks/{integration}`: the platform's scheduled-message webhook,
/// from the stack of [`crate::server::App`], which started the request at
/// `started`. Answers the messages, or the error; either way `record` says
/// how far the request got, for the stack's access step.
pub async fn hook(
    app: &AppState,
    request: hyper::Request<Incoming>,
    started: Instant,
    record: &mut Option<RequestRecord>,
) -> Answer {
    let (parts, body) = request.into_parts();
    let record = record.insert(RequestRecord {
        personal_data: app.settings.log_personal_data,
        ..RequestRecord::default()
    });
    // The journal's: the body, the answer, each upstream call, and the
    // integration's ring once the integration is known.
    let calls = app.journal.as_ref().map(|_| CallLog::default());
    let mut ring = None;
    // A client that trickles its body must not hold a worker's attention
    // forever (stalled headers are the connection watchdog's). The body has
    // nearly always arrived with the headers: the timer is only set up
    // when it has not.
    //
    // A body that is refused before it is read (not JSON, or longer than
    // the limit by its `Content-Length`) is refused at once: nothing waits
    // for it, and hyper sends no `100 Continue` for a body nobody polls.
    // A connection whose body was not read whole cannot carry another
    // request: the answer says `Connection: close`, or the client would
    // send its next request into a socket hyper is closing.
    let limit = app.settings.body_limit;
    // hyper's size hint is the `Content-Length` it already parsed: no
    // header lookup on the hot path.
    let announced = hyper::body::Body::size_hint(&body).lower();
    let early = check_content_type(&parts.headers)
        .err()
        .or_else(|| (announced > limit as u64).then_some(ApiError::PayloadTooLarge { limit }));
    let mut collect = std::pin::pin!(Limited::new(body, limit).collect());
    let collected = match early {
        Some(e) => Err(e),
        None => match futures_util::poll!(collect.as_mut()) {
            Poll::Ready(body) => Ok(body),
            Poll::Pending => tokio::time::timeout_at((started + BODY_READ_TIMEOUT).into(), collect)
                .await
                .map_err(|_| ApiError::BodyTimeout(BODY_READ_TIMEOUT)),
        },
    };
    // Whatever the answer, the body was not read whole.
    let close = !matches!(collected, Ok(Ok(_)));
    let (body, result) = match collected {
        Err(e) => (None, Err(e)),
        Ok(body) => {
            let body = body.map(|c| c.to_bytes());
            // One snapshot for the whole request, even if a reload lands meanwhile.
            let snapshot = app.config.load_full();
            let calls = calls.as_ref();
            let result = pipeline(
                app,
                &snapshot,
                &parts,
                body.as_ref(),
                record,
                &mut ring,
                calls,
            )
            .await;
            (body.ok(), result)
        }
    };
    // Read once for the journal and the stack's access record.
    let took = started.elapsed();
    record.took = Some(took);
    if let Err(e) = &result {
        record.error = Some((e.code(), e.to_string()));
    }
    // Recorded before the answer is made, so that the journal copies the
    // answer's bytes rather than sharing them with the response.
    if let (Some(journal), Some(ring), Some(body)) = (&app.journal, &ring, &body) {
        let exchange = Exchange {
            status: result
                .as_ref()
                .map_or_else(|e| e.status(), |_| StatusCode::OK)
                .as_u16(),
            took,
            body,
            answer: result.as_ref().ok().map(Vec::as_slice),
        };
        journal.record(ring, record, exchange, calls);
    }
    let mut resp = match result {
        Ok(json) => {
            let json = Bytes::from(json);
            let mut resp = Answer::new(http_body_util::Either::Left(json.into()));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(e) => answer(e.into_response()),
    };
    if close {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// `/hooks/{integration}` → the integration's name, percent-decoded. Read
/// from the URI rather than by axum's `Path`, whose rejection is not JSON.
fn integration_name(parts: &Parts) -> std::borrow::Cow<'_, str> {
    let name = parts.uri.path().strip_prefix("/hooks/").unwrap_or("");
    // A URI's path is ASCII: without `%` there is nothing to decode.
    if !name.bytes().any(|b| b == b'%') {
        return name.into();
    }
    percent_encoding::percent_decode_str(name).decode_utf8_lossy()
}

/// receive → validate request → tenant → enrich → render (+ validate output) → respond.
/// Fills `record` in as it goes, for the log line and the metrics, and
/// `ring` with the integration's journal ring once it is found.
async fn pipeline(
    app: &AppState,
    snapshot: &Snapshot,
    parts: &Parts,
    body: Result<&Bytes, &tower::BoxError>,
    record: &mut RequestRecord,
    ring: &mut Option<RingRef>,
    calls: Option<&CallLog>,
) -> Result<Vec<u8>, ApiError> {
    let limit = app.settings.body_limit;
    let body = body.map_err(|e| {
        if e.is::<LengthLimitError>() {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::InvalidRequest(crate::request::RequestError {
                path: String::new(),
                message: format!("cannot read the body: {e}"),
            })
        }
    })?;
    // Authentication needs only the top-level fields: `data` is scanned,
    // not parsed, until the token is known good.
    let envelope = Envelope::parse(body)?;
    record.request_id = Some(envelope.id());

    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = token_from(authorization, parts.uri.query());
    let tenant = authenticate(snapshot, envelope.client_id(), token.as_deref())
        .ok_or(ApiError::Unauthorized)?;
    if crate::telemetry::access_log_enabled() {
        let contact = envelope.contact();
        record.keep_contact(&contact.key, &contact.name);
    }
    let req = envelope.into_request()?;
    let state = app.tenants.of_attached(tenant);
    record.tenant = Some(tenant.clone());
    let integration = integration_name(parts);
    let found = tenant
        .integrations
        .get(integration.as_ref())
        .ok_or_else(|| {
            ApiError::UnknownIntegration(crate::request::short(&integration).into_owned())
        })?;
    record.integration = Some(found.clone());
    let own = state.integration_of(&tenant.name, found, app.journal.as_deref());
    record.metrics = Some(own.metrics.clone());
    *ring = own.journal.clone();

    if body.len() > tenant.limits.max_body_bytes {
        return Err(ApiError::PayloadTooLarge {
            limit: tenant.limits.max_body_bytes,
        });
    }
    // Each tenant has its own slots: one tenant's flood waits on its own
    // limit and never takes the others' capacity.
    let _slot = state.in_flight.try_take().ok_or(ApiError::Busy)?;
    if !found.program.borrow_dependent().calls.is_empty() {
        app.upstream.set_tenants(snapshot.tenants.len());
    }
    let messages =
        produce_logged(&app.upstream, tenant, &state.metrics, found, &req, calls).await?;
    record.messages = Some(messages.len());
    encode(&messages, found, &tenant.limits)
}

/// The answer's JSON, within the tenant's `max_output_bytes`.
pub fn encode(
    messages: &[Message],
    integration: &Integration,
    limits: &Limits,
) -> Result<Vec<u8>, ApiError> {
    let mut json = Vec::with_capacity(512);
    crate::output::write_json(messages, &mut json)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if json.len() > limits.max_output_bytes {
        return Err(ApiError::OutputTooLarge {
            file: integration.file.clone(),
            size: json.len(),
            limit: limits.max_output_bytes,
        });
    }
    Ok(json)
}

/// enrich → render (+ validate output): the messages `integration` answers
/// for an authenticated request. Also the dry run of `recado render`.
pub async fn produce(
    upstream: &Upstream,
    tenant: &Tenant,
    metrics: &TenantMetrics,
    integration: &Integration,
    req: &Arc<PlatformRequest>,
) -> Result<Vec<Message>, ApiError> {
    produce_logged(upstream, tenant, metrics, integration, req, None).await
}

/// [`produce`], reporting each upstream call to `calls` (for the journal).
pub async fn produce_logged(
    upstream: &Upstream,
    tenant: &Tenant,
    metrics: &TenantMetrics,
    integration: &Integration,
    req: &Arc<PlatformRequest>,
    calls: Option<&CallLog>,
) -> Result<Vec<Message>, ApiError> {
    let mut ctx = request_context(req);
    let compiled = integration.program.borrow_dependent();
    if !compiled.calls.is_empty() {
        // Only upstream calls wait, so one timer bounds them by both the
        // integration's `deadline` and the tenant's; rendering is bounded by
        // template fuel. Boxed: the calls' future is large, and inline it
        // would make every request's future large too, enrichment or not.
        let (own, tenant_limit) = (compiled.deadline, tenant.limits.deadline);
        let calls = Box::pin(upstream.run_logged(tenant, metrics, integration, &ctx, calls));
        let answers = match tokio::time::timeout(own.min(tenant_limit), calls).await {
            Ok(answers) => answers,
            Err(_) if tenant_limit < own => return Err(ApiError::Timeout(tenant_limit)),
            Err(_) => Err(crate::enrich::EnrichError::Deadline(own)),
        }
        .map_err(|mut source| {
            if let crate::enrich::EnrichError::Template { detail, place, .. } = &mut source {
                mask_contact(detail, req);
                place.locate(integration.positions());
            }
            ApiError::Upstream {
                file: integration.file.clone(),
                source,
            }
        })?;
        ctx = RequestVars::with(&ctx, [("enrich", answers)]);
    }
    render_request(integration, &ctx, tenant.limits.max_messages).map_err(|mut e| {
        if let ApiError::Render {
            source: crate::render::RenderError::Template { detail, .. },
            ..
        } = &mut e
        {
            mask_contact(detail, req);
        }
        e
    })
}

/// render (+ validate output) over the request's variables, with the calls'
/// answers as `enrich` when the integration has calls: the end of
/// [`produce`], and the whole of a config test (`crate::testing`), whose
/// answers are canned instead of fetched.
pub fn render_request(
    integration: &Integration,
    ctx: &minijinja::Value,
    max_messages: usize,
) -> Result<Vec<Message>, ApiError> {
    render(&integration.program, ctx, max_messages).map_err(|mut source| {
        source.locate(integration.positions());
        ApiError::Render {
            file: integration.file.clone(),
            source,
        }
    })
}

/// A template's error may quote what it was given (a filter's "`…` is not
/// a number"); the contact's phone number and name are masked there as in
/// the access line, since the text goes to the log, the answer and
/// `/admin/status`.
fn mask_contact(detail: &mut String, req: &PlatformRequest) {
    let key = req.contact.key.trim();
    let name = req.contact.name.trim();
    if key.len() >= 4 && detail.contains(key) {
        *detail = detail.replace(key, &crate::telemetry::mask_phone(key));
    }
    if name.len() >= 2 && detail.contains(name) {
        *detail = detail.replace(name, &crate::telemetry::mask_name(name));
    }
}

/// The platform sends `application/json`; a body declared as anything else
/// is refused rather than guessed at. A missing header is tolerated.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("");
    // What the platform sends, accepted without splitting it.
    if text.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    let mut params = text.split(';');
    let mime = params.next().unwrap_or("").trim();
    // The body is read as UTF-8, as JSON is; a body in another charset
    // would be misread, not refused.
    let utf8 = params.all(|p| match p.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            let value = value.trim().trim_matches('"');
            value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
        }
        _ => true,
    });
    let (kind, subtype) = mime.split_once('/').unwrap_or((mime, ""));
    let json = subtype.eq_ignore_ascii_case("json")
        || subtype.len() > 5
            && subtype
                .get(subtype.len() - 5..)
                .is_some_and(|t| t.eq_ignore_ascii_case("+json"));
    if kind.eq_ignore_ascii_case("application") && json && utf8 {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(
            crate::request::short(text).into_owned(),
        ))
    }
}
