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
    #[error("the body must be JSON (`Content-Type: application/json`), got `{0}`")]
    UnsupportedMediaType(String),
    /// 413: the body is larger than the limit.
    #[error("the body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 401: unknown clientId, missing token or wrong token; deliberately alike.
    #[error("missing or invalid token for this clientId")]
    Unauthorized,
    /// 404: the tenant has no integration with this name.
    #[error("no integration named `{0}` for this tenant")]
    UnknownIntegration(String),
    /// 404: the path is not a webhook.
    #[error("no route for {0}; webhooks are POST /hooks/{{integration}}")]
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

fn render_message(e: &RenderError) -> String {
    match e {
        RenderError::Template { detail, .. } => detail.clone(),
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
