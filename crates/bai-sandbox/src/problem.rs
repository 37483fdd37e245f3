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
    /// An unknown session as `generation` answers it: 26.x's repository layer says
    /// `entity-not-found` (real 26.9.6), older generations `object-not-found`.
    pub fn unknown_session(generation: crate::Generation) -> Self {
        if generation.entity_not_found() {
            ProblemReply::new(404, "entity-not-found", "Entity not found.")
                .code("session_read_not-found")
                .msg("No SessionRow matches the given key")
        } else {
            ProblemReply::no_session()
        }
    }
    /// 22.09's prefix lookup found more than one session (`TooManySessionsMatched`, a 404).
    pub fn too_many_sessions(matches: &[&crate::session::SessionEntry]) -> Self {
        let list: Vec<Value> = matches
            .iter()
            .map(|e| {
                json!({"session_id": e.id.to_string(), "session_name": e.name,
                       "status": e.status.as_str(), "created_at": e.created_at.to_rfc3339()})
            })
            .collect();
        let mut p = ProblemReply::new(
            404,
            "too-many-sessions-matched",
            "Too many sessions matched.",
        );
        p.data = Some(Box::new(json!({ "matches": list })));
        p
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
    /// 26.x's refusal of a request model (`InvalidAPIParameters` around pydantic's report).
    pub fn schema_invalid(msg: impl Into<String>) -> Self {
        ProblemReply::new(
            400,
            "generic-bad-request",
            "Invalid or Missing API Parameters.",
        )
        .code("api_parsing_invalid-parameters")
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
    /// The webserver's `ProxyTargetUnreachableError`: any refused upstream WebSocket (real
    /// 26.9.6: nothing of the manager's reason is passed on).
    pub fn proxy_unreachable() -> Self {
        ProblemReply::new(
            502,
            "bad-gateway",
            "The proxy target server is inaccessible.",
        )
        .code("api_request_unreachable")
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
