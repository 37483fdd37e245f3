//! The stream routes: `/stream/<session|kernel>/<s>/apps` lists the service ports, and
//! `tcpproxy` (or `httpproxy`) upgrades to a WebSocket tunnel to one of them (protocol.md §4).
//! The webserver's `/func/stream/` bridge shares the pre-upgrade checks and the upgrade.

use axum::extract::{Path as UrlPath, Request, State as AxState};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::sessions::{first, query_pairs, resolve, services};
use super::St;
use crate::faults::TunnelFaults;
use crate::problem::ProblemReply;
use crate::tunnel::{self, Target};
use crate::ws;
use crate::State;

pub(super) async fn stream_apps(
    AxState(state): AxState<St>,
    UrlPath(s): UrlPath<String>,
    uri: Uri,
) -> Response {
    let r = match resolve(&state, &s, uri.path()) {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    let list: Vec<Value> = services(&r)
        .iter()
        .map(|s| json!({"name": s.name, "protocol": s.protocol, "ports": [s.container_port]}))
        .collect();
    Json(Value::Array(list)).into_response()
}

/// The pre-upgrade part of the tcpproxy: resolve session and app, pick the target.
pub(crate) fn prepare_tunnel(
    state: &State,
    s: &str,
    raw_query: Option<&str>,
    path: &str,
) -> Result<Target, ProblemReply> {
    let q = query_pairs(raw_query);
    // `service` was an alias of `app` up to 25.x; 26.x knows `app` only.
    let alias = state.generation.accepts_service_alias();
    let schema = state.generation.schema_checked_stream_params();
    let app = first(&q, "app")
        .or_else(|| first(&q, "service").filter(|_| alias))
        .filter(|a| schema || !a.is_empty())
        .ok_or_else(|| {
            if schema {
                ProblemReply::schema_invalid(schema_report(&q, "app", "missing", "Field required"))
            } else {
                ProblemReply::invalid_params("Missing parameter: app")
            }
        })?
        .to_owned();
    let port = match first(&q, "port").filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => match p.parse::<u32>() {
            Ok(p @ 1024..=65535) => u16::try_from(p).ok(),
            parsed if schema => {
                let (kind, says) = match parsed {
                    Err(_) => (
                        "int_parsing",
                        "Input should be a valid integer, unable to parse string as an integer",
                    ),
                    Ok(n) if n < 1024 => (
                        "greater_than_equal",
                        "Input should be greater than or equal to 1024",
                    ),
                    Ok(_) => (
                        "less_than_equal",
                        "Input should be less than or equal to 65535",
                    ),
                };
                return Err(ProblemReply::schema_invalid(schema_report(
                    &q, "port", kind, says,
                )));
            }
            _ => {
                return Err(ProblemReply::invalid_params(
                    "port must be between 1024 and 65535",
                ))
            }
        },
    };
    let r = resolve(state, s, path)?;
    let svc = services(&r)
        .into_iter()
        .find(|sv| sv.name == app)
        .ok_or_else(|| ProblemReply::no_app(s, &app))?;
    if let Some(p) = port {
        if p != svc.container_port {
            return Err(ProblemReply::invalid_params(format!(
                "Port {p} is not one of the service's container ports"
            )));
        }
    }
    Ok(Target {
        addr: svc.target,
        faults: TunnelFaults::merge(&state.faults, &r.faults),
        session: r.tunnels.clone(),
        sandbox: state.cancel.clone(),
    })
}

/// The `msg` of 26.x's refused `StreamProxyRequest`: `str()` of the schema error (pydantic's
/// report, as the real 26.9.6 sends it) for one bad `field`.
fn schema_report(q: &[(String, String)], field: &str, kind: &str, says: &str) -> String {
    let input = if kind == "missing" {
        let pairs: Vec<String> = q.iter().map(|(k, v)| format!("'{k}': '{v}'")).collect();
        (format!("{{{}}}", pairs.join(", ")), "dict")
    } else {
        (format!("'{}'", first(q, field).unwrap_or_default()), "str")
    };
    format!(
        "Schema validation failed. (1 validation error for StreamProxyRequest\n{field}\n  \
         {says} [type={kind}, input_value={}, input_type={}]\n    \
         For further information visit https://errors.pydantic.dev/2.13/v/{kind})",
        input.0, input.1
    )
}

/// Answers a checked upgrade (after the upgrade-delay fault) and runs the tunnel on the
/// connection once the 101 has been sent.
pub(crate) async fn upgrade(up: ws::Upgrade, target: Target) -> Response {
    if let Some(d) = target.faults.upgrade_delay {
        tokio::time::sleep(d).await;
    }
    let (response, on_upgrade) = up.into_parts();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(io) => tunnel::run(hyper_util::rt::TokioIo::new(io), target).await,
            Err(e) => tracing::debug!(error = %e, "tcpproxy: upgrade failed"),
        }
    });
    response
}

pub(super) async fn tcpproxy(
    AxState(state): AxState<St>,
    UrlPath(s): UrlPath<String>,
    mut req: Request,
) -> Response {
    let mut target = match prepare_tunnel(&state, &s, req.uri().query(), req.uri().path()) {
        Ok(t) => t,
        Err(p) => return p.into_response(),
    };
    // Only the webserver swallows closes; the manager itself always sends them.
    target.faults.swallow_close = false;
    match ws::accept(&mut req) {
        Ok(up) => upgrade(up, target).await,
        Err(e) => {
            tracing::debug!(error = %e, "tcpproxy: not a WebSocket upgrade");
            ProblemReply::invalid_params("Expected a WebSocket upgrade request").into_response()
        }
    }
}
