//! The manager (API mode): HMAC authentication, GraphQL session list, stream apps and tcpproxy,
//! downloads and session info (protocol.md §2–§5, §7, §9). Responses are never compressed.
//!
//! This module holds the router and the root route; the routes live by concern:
//! - `auth`: the middleware (fail-route fault, version and HMAC checks) and `/auth/*` logins;
//! - `sessions`: resolving a session for a request, its service ports, and the session routes;
//! - `keypair`: `/auth/ssh-keypair` (the account's stored SSH keypair, [`crate::keypair`]);
//! - `ratelimit`: the `X-RateLimit-*` headers every answer carries (real 26.9.6);
//! - `graphql`: `/admin/gql` (session lists, keypair) and the refused legacy endpoint;
//! - `stream`: `/stream/.../apps` and the tcpproxy WebSocket upgrade;
//! - `downloads`: `download_single` and multi-file `download` (reads confined by
//!   [`crate::download`]).

mod auth;
mod downloads;
mod graphql;
mod keypair;
mod ratelimit;
mod sessions;
mod stream;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::problem::ProblemReply;
use crate::State;

pub(crate) use auth::authorize;
pub(crate) use ratelimit::RateWindow;
pub(crate) use stream::{prepare_tunnel, upgrade};

type St = Arc<State>;

pub(crate) fn router(state: St) -> Router {
    let session_routes = |prefix: &str| {
        Router::new()
            .route(
                &format!("/stream/{prefix}/{{s}}/apps"),
                get(stream::stream_apps),
            )
            .route(
                &format!("/stream/{prefix}/{{s}}/tcpproxy"),
                get(stream::tcpproxy),
            )
            .route(
                &format!("/stream/{prefix}/{{s}}/httpproxy"),
                get(stream::tcpproxy),
            )
            .route(&format!("/{prefix}/{{s}}"), get(sessions::session_info))
            .route(
                &format!("/{prefix}/{{s}}/direct-access-info"),
                get(sessions::direct_access_info),
            )
            .route(
                &format!("/{prefix}/{{s}}/download_single"),
                any(downloads::download_single),
            )
            .route(
                &format!("/{prefix}/{{s}}/download"),
                any(downloads::download),
            )
    };
    Router::new()
        .route("/", get(root))
        .route("/auth/authorize", post(auth::authorize_route))
        .route("/auth/logout", post(|| async { Json(json!({})) }))
        .route(
            "/auth/ssh-keypair",
            get(keypair::get_keypair)
                .patch(keypair::generate_keypair)
                .post(keypair::upload_keypair),
        )
        .route("/admin/gql", post(graphql::gql))
        .route("/admin/graphql", post(graphql::legacy_graphql))
        .merge(session_routes("session"))
        .merge(session_routes("kernel"))
        .fallback(|| async { ProblemReply::not_found_url() })
        .layer(middleware::from_fn_with_state(state.clone(), auth::guard))
        .layer(middleware::from_fn_with_state(state.clone(), error_bodies))
        .with_state(state)
}

/// Problem bodies as the emulated generation writes them: `error_code` exists only from 25.x
/// on, so older generations answer without it.
async fn error_bodies(AxState(state): AxState<St>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    if state.generation.has_error_code() {
        return resp;
    }
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/problem+json"));
    if !is_problem {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return ProblemReply::internal("problem body too large").into_response();
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if let Some(o) = v.as_object_mut() {
        o.remove("error_code");
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(v.to_string()))
}

/// The manager's root JSON.
pub(crate) fn root_json(state: &State) -> Value {
    json!({"version": state.server_version, "manager": state.generation.manager_version()})
}

async fn root(AxState(state): AxState<St>) -> Json<Value> {
    Json(root_json(&state))
}
