//! problem+json error answers, shaped like the manager's `BackendAIError` (protocol.md §7).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// One problem+json answer.
#[derive(Debug, Clone)]
pub(crate) struct ProblemReply {
    pub status: StatusCode,
    pub slug: &'static str,
    pub title: String,
    pub error_code: Option<&'static str>,
    pub msg: Option<String>,
    pub details: Option<String>,
    pub data: Option<Box<Value>>,
}

impl ProblemReply {
    pub fn new(status: u16, slug: &'static str, title: impl Into<String>) -> Self {
        ProblemReply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            slug,
            title: title.into(),
            error_code: None,
            msg: None,
            details: None,
            data: None,
        }
    }
    pub fn code(mut self, c: &'static str) -> Self {
        self.error_code = Some(c);
        self
    }
    pub fn msg(mut self, m: impl Into<String>) -> Self {
        self.msg = Some(m.into());
        self
    }
    pub fn details(mut self, d: impl Into<String>) -> Self {
        self.details = Some(d.into());
        self
    }

    pub fn type_url(&self) -> String {
        format!("https://api.backend.ai/probs/{}", self.slug)
    }

    pub fn body(&self) -> Value {
        let mut v = json!({"type": self.type_url(), "title": self.title});
        if let Some(c) = self.error_code {
            v["error_code"] = json!(c);
        }
        if let Some(m) = &self.msg {
            v["msg"] = json!(m);
        }
        if let Some(d) = &self.details {
            v["details"] = json!(d);
        }
        if let Some(d) = &self.data {
            v["data"] = (**d).clone();
        }
        v
    }

    // Constructors for the table in protocol.md §7.
    pub fn invalid_auth(msg: &str) -> Self {
        ProblemReply::new(
            400,
            "invalid-auth-params",
            "Missing or invalid authorization parameters.",
        )
        .code("user_auth_invalid-parameters")
        .msg(msg)
    }
    pub fn auth_failed(msg: &str) -> Self {
        ProblemReply::new(401, "auth-failed", "Credential/signature mismatch.")
            .code("user_auth_unauthorized")
            .msg(msg)
    }
    pub fn bad_version(msg: &str) -> Self {
        ProblemReply::new(400, "generic-bad-request", "Bad request.").msg(msg)
    }
    pub fn no_session() -> Self {
        ProblemReply::new(404, "object-not-found", "No such session.")
            .code("session_read_not-found")
    }
    pub fn no_app(s: &str, app: &str) -> Self {
        ProblemReply::new(404, "object-not-found", "No such app service.")
            .code("backendai_read_not-found")
            .msg(format!("{s}:{app}"))
    }
    pub fn invalid_params(msg: impl Into<String>) -> Self {
        ProblemReply::new(
            400,
            "invalid-api-params",
            "Missing or invalid API parameters.",
        )
        .msg(msg)
    }
    pub fn not_found_url() -> Self {
        ProblemReply::new(404, "url-not-found", "Unknown URL path.")
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        ProblemReply::new(500, "internal-server-error", "Internal server error.").msg(msg)
    }
    pub fn bad_gateway(details: impl Into<String>) -> Self {
        ProblemReply::new(502, "bad-gateway", "Bad gateway").details(details)
    }
    /// The answer of the fail-route fault.
    pub fn injected(status: u16) -> Self {
        let slug = match status {
            502 => "bad-gateway",
            503 => "service-unavailable",
            _ => "internal-server-error",
        };
        ProblemReply::new(status, slug, "Injected failure (bai-sandbox fault knob).")
    }
}

impl IntoResponse for ProblemReply {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            self.body().to_string(),
        )
            .into_response()
    }
}
