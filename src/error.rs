//! Stage 6, respond (errors): every failure becomes the same JSON shape,
//! `{"error":{"code","message","path"?,"integration"?}}`, with a status that
//! tells the platform's panel whose fault it is.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::enrich::EnrichError;
use crate::render::RenderError;
use crate::request::RequestError;

/// Everything that can go wrong with a webhook call. Any of them means the
/// platform sends nothing to the contact.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not a valid platform request.
    #[error("{0}")]
    InvalidRequest(#[from] RequestError),
    /// 415: the body is declared as something other than JSON.
    #[error("the body must be JSON in UTF-8 (`Content-Type: application/json`), got `{0}`")]
    UnsupportedMediaType(String),
    /// 413: the body is larger than the limit.
    #[error("the body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 401: unknown clientId, missing token or wrong token; deliberately alike.
    #[error("missing or invalid token: a webhook needs a token of the tenant its clientId belongs to; /admin and /metrics take theirs as `Authorization: Bearer <token>`")]
    Unauthorized,
    /// 404: the tenant has no integration with this name.
    #[error("no integration named `{0}` for this tenant")]
    UnknownIntegration(String),
    /// 404: the path is not a webhook.
    #[error("nothing at {0}")]
    NoRoute(String),
    /// 405.
    #[error("method not allowed; webhooks are POST /hooks/{{integration}}")]
    MethodNotAllowed,
    /// 422: the integration's templates failed, or produced messages the
    /// platform or WhatsApp would refuse. The config (or the payload the
    /// company typed) must change; retrying the same request will not help.
    #[error("{file}: {source}")]
    Render { file: String, source: RenderError },
    /// 502/504 (422 for a refused host or a call template that failed): an
    /// upstream call failed and declared no fallback.
    #[error("{file}: {source}")]
    Upstream { file: String, source: EnrichError },
    /// 422: the answer is larger than the tenant's `max_output_bytes`.
    #[error(
        "{file}: the answer would be {size} bytes; the tenant's `max_output_bytes` is {limit}"
    )]
    OutputTooLarge {
        file: String,
        size: usize,
        limit: usize,
    },
    /// 408: the body did not arrive in time.
    #[error("the request body did not arrive within {0:?}")]
    BodyTimeout(std::time::Duration),
    /// 429: the tenant already has `concurrency` requests in flight.
    #[error("this tenant has too many requests in flight; retry shortly")]
    Busy,
    /// 504: the request took longer than the tenant's `deadline`.
    #[error("the request took longer than {0:?}")]
    Timeout(std::time::Duration),
    /// 500: a bug in recado.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::UnknownIntegration(_) | ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Render { .. } | ApiError::OutputTooLarge { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Busy => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Upstream { source, .. } => match source {
                EnrichError::Timeout { .. } | EnrichError::Deadline(_) => {
                    StatusCode::GATEWAY_TIMEOUT
                }
                EnrichError::Refused { .. } | EnrichError::Template { .. } => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                _ => StatusCode::BAD_GATEWAY,
            },
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Unauthorized => "unauthorized",
            ApiError::UnknownIntegration(_) => "unknown_integration",
            ApiError::NoRoute(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Render {
                source: RenderError::Template { .. },
                ..
            } => "render_failed",
            ApiError::Render {
                source: RenderError::Output { .. },
                ..
            } => "invalid_output",
            ApiError::Render {
                source: RenderError::TooManyMessages { .. },
                ..
            }
            | ApiError::OutputTooLarge { .. } => "output_too_large",
            ApiError::Busy => "tenant_busy",
            ApiError::BodyTimeout(_) => "body_timeout",
            ApiError::Timeout(_) => "request_timeout",
            ApiError::Upstream { source, .. } => match source {
                EnrichError::Unreachable { .. } => "upstream_unreachable",
                EnrichError::Timeout { .. } => "upstream_timeout",
                EnrichError::Status { .. } => "upstream_status",
                EnrichError::NotJson { .. } => "upstream_not_json",
                EnrichError::TooLarge { .. } => "upstream_too_large",
                EnrichError::Refused { .. } => "upstream_refused",
                EnrichError::Template { .. } => "render_failed",
                EnrichError::Deadline(_) => "deadline_exceeded",
                EnrichError::Unavailable { .. } => "upstream_unavailable",
            },
            ApiError::Internal(_) => "internal",
        }
    }

    fn body(&self) -> ErrorBody<'_> {
        let upstream_status = match self {
            ApiError::Upstream {
                source: EnrichError::Status { status, .. },
                ..
            } => Some(*status),
            _ => None,
        };
        let call_path = match self {
            ApiError::Upstream { source, .. } => source.call().map(|c| format!("enrich.{c}")),
            _ => None,
        };
        let (path, integration, message) = match self {
            ApiError::InvalidRequest(e) => (
                Some(e.path.clone()).filter(|p| !p.is_empty()),
                None,
                e.message.clone(),
            ),
            ApiError::Render { file, source } => (
                Some(source.path().to_owned()),
                Some(file.as_str()),
                render_message(source),
            ),
            ApiError::Upstream { file, source } => {
                (call_path, Some(file.as_str()), source.to_string())
            }
            ApiError::OutputTooLarge { file, .. } => (None, Some(file.as_str()), self.to_string()),
            other => (None, None, other.to_string()),
        };
        ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message,
                path,
                integration,
                upstream_status,
            },
        }
    }
}

impl ApiError {
    /// One value of every kind of error, counting each `Render` and
    /// `Upstream` cause apart, since they answer different statuses and
    /// codes. The documentation's status table is checked against these
    /// (`tests/docs.rs`); a new variant does not compile until
    /// [`example_index`] knows it, and then fails here until it has an
    /// example.
    pub fn examples() -> Vec<ApiError> {
        use std::time::Duration;
        let file = || "demo/boleto.yaml".to_owned();
        let call = || "erp".to_owned();
        let render = |source| ApiError::Render {
            file: file(),
            source,
        };
        let upstream = |source| ApiError::Upstream {
            file: file(),
            source,
        };
        let out = vec![
            ApiError::InvalidRequest(RequestError {
                path: "contact.name".into(),
                message: "required field is missing".into(),
            }),
            ApiError::UnsupportedMediaType("text/plain".into()),
            ApiError::PayloadTooLarge { limit: 256 * 1024 },
            ApiError::Unauthorized,
            ApiError::UnknownIntegration("boleto".into()),
            ApiError::NoRoute("GET /".into()),
            ApiError::MethodNotAllowed,
            render(RenderError::Template {
                path: "messages[0].text".into(),
                detail: "undefined value".into(),
                place: Default::default(),
            }),
            render(RenderError::TooManyMessages { limit: 10 }),
            render(RenderError::Output {
                path: "messages[0]".into(),
                violation: crate::output::Violation {
                    field: "value".into(),
                    reason: "is empty".into(),
                },
            }),
            upstream(EnrichError::Unreachable {
                call: call(),
                detail: "connection refused".into(),
            }),
            upstream(EnrichError::Timeout {
                call: call(),
                timeout: Duration::from_secs(2),
            }),
            upstream(EnrichError::Status {
                call: call(),
                status: 503,
            }),
            upstream(EnrichError::NotJson { call: call() }),
            upstream(EnrichError::TooLarge {
                call: call(),
                limit: 1024,
            }),
            upstream(EnrichError::Refused {
                call: call(),
                origin: "http://169.254.169.254".into(),
            }),
            upstream(EnrichError::Template {
                call: call(),
                detail: "undefined value".into(),
                place: Default::default(),
            }),
            upstream(EnrichError::Deadline(Duration::from_secs(5))),
            upstream(EnrichError::Unavailable {
                call: call(),
                origin: "https://erp.example.com".into(),
            }),
            ApiError::OutputTooLarge {
                file: file(),
                size: 70_000,
                limit: 65_536,
            },
            ApiError::BodyTimeout(Duration::from_secs(10)),
            ApiError::Busy,
            ApiError::Timeout(Duration::from_secs(10)),
            ApiError::Internal("a bug".into()),
        ];
        let mut seen: Vec<usize> = out.iter().map(example_index).collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..EXAMPLE_KINDS).collect::<Vec<_>>(),
            "ApiError::examples() must hold exactly one value of every kind"
        );
        out
    }
}

/// How many kinds [`example_index`] tells apart.
const EXAMPLE_KINDS: usize = 24;

/// Numbers every kind of error, with no wildcard: a new variant of
/// `ApiError`, `RenderError` or `EnrichError` stops this compiling until it
/// gets a number (and [`ApiError::examples`] a value of it).
fn example_index(e: &ApiError) -> usize {
    match e {
        ApiError::InvalidRequest(_) => 0,
        ApiError::UnsupportedMediaType(_) => 1,
        ApiError::PayloadTooLarge { .. } => 2,
        ApiError::Unauthorized => 3,
        ApiError::UnknownIntegration(_) => 4,
        ApiError::NoRoute(_) => 5,
        ApiError::MethodNotAllowed => 6,
        ApiError::Render { source, .. } => match source {
            RenderError::Template { .. } => 7,
            RenderError::TooManyMessages { .. } => 8,
            RenderError::Output { .. } => 9,
        },
        ApiError::Upstream { source, .. } => match source {
            EnrichError::Unreachable { .. } => 10,
            EnrichError::Timeout { .. } => 11,
            EnrichError::Status { .. } => 12,
            EnrichError::NotJson { .. } => 13,
            EnrichError::TooLarge { .. } => 14,
            EnrichError::Refused { .. } => 15,
            EnrichError::Template { .. } => 16,
            EnrichError::Deadline(_) => 17,
            EnrichError::Unavailable { .. } => 23,
        },
        ApiError::OutputTooLarge { .. } => 18,
        ApiError::BodyTimeout(_) => 19,
        ApiError::Busy => 20,
        ApiError::Timeout(_) => 21,
        ApiError::Internal(_) => 22,
    }
}

fn render_message(e: &RenderError) -> String {
    match e {
        RenderError::Template {
            path,
            detail,
            place,
        } => format!("{detail} ({path}{place})"),
        RenderError::Output { violation, .. } => violation.to_string(),
        other => other.to_string(),
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'static str,
    message: String,
    /// The request field (`contact.name`), integration field
    /// (`messages[1].text`) or call (`enrich.customer`) at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    /// The integration file at fault (`demo/boleto.yaml`).
    #[serde(skip_serializing_if = "Option::is_none")]
    integration: Option<&'a str>,
    /// The HTTP status an upstream answered, when that was the fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_status: Option<u16>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body())
            .unwrap_or_else(|_| b"{\"error\":{\"code\":\"internal\"}}".to_vec());
        let mut resp = (self.status(), body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if matches!(self, ApiError::Busy) {
            // One second: a scheduled message is not urgent, and the flood
            // that filled the slots is usually short.
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}
