//! `/admin/gql`: the GraphQL subset clients send (`compute_session_list`,
//! `compute_session_nodes`, `compute_session`, `keypair`), answered with only the selected
//! fields under the query's aliases ([`crate::gql`]); `/admin/graphql` is refused.

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use uuid::Uuid;

use super::sessions::{resolve, services, Resolved, IMAGE};
use super::St;
use crate::problem::ProblemReply;
use crate::session::Status;
use crate::{lock, State};

/// `service_ports` as the GraphQL `JSONString` (a string holding JSON), null until started.
fn service_ports_json(r: &Resolved) -> Value {
    let sv = services(r);
    if sv.is_empty() {
        return if r.status == Status::Running {
            json!("[]")
        } else {
            Value::Null
        };
    }
    let list: Vec<Value> = sv
        .iter()
        .map(|s| {
            json!({"name": s.name, "protocol": s.protocol, "container_ports": [s.container_port],
                   "host_ports": [s.target.port()], "is_inference": false})
        })
        .collect();
    json!(Value::Array(list).to_string())
}

pub(super) async fn legacy_graphql() -> Response {
    ProblemReply::invalid_params("The legacy GraphQL endpoint is not supported; use /admin/gql.")
        .into_response()
}

/// Whether `field` occurs in the query as a whole word.
fn has_field(query: &str, field: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    query.match_indices(field).any(|(i, _)| {
        let before = query[..i].chars().next_back();
        let after = query[i + field.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

fn session_item(state: &State, r: &Resolved) -> Value {
    json!({
        "id": r.id.to_string(),
        "session_id": r.id.to_string(),
        "name": r.name,
        "priority": 10,
        "type": "interactive",
        "session_type": "interactive",
        "image": IMAGE,
        "architecture": "x86_64",
        "status": r.status.as_str(),
        "status_info": null,
        "status_data": null,
        "status_changed": r.status_changed.to_rfc3339(),
        "result": "UNDEFINED",
        "service_ports": service_ports_json(r),
        "created_at": r.created_at.to_rfc3339(),
        "terminated_at": r.terminated_at.map(|t| t.to_rfc3339()),
        "starts_at": null,
        "scheduled_at": r.created_at.to_rfc3339(),
        "access_key": state.user.access_key,
        "user_email": state.user.email,
        "user_id": state.user.user_id.to_string(),
        "domain_name": "default",
        "group_name": "default",
        "group_id": Uuid::nil().to_string(),
        "project_id": Uuid::nil().to_string(),
        "cluster_mode": "single-node",
        "cluster_size": 1,
        "mounts": [],
        "vfolder_mounts": [],
        "occupied_slots": "{\"cpu\": \"1\", \"mem\": \"1073741824\"}",
        "requested_slots": "{\"cpu\": \"1\", \"mem\": \"1073741824\"}",
        "resource_opts": "{}",
        "idle_checks": "{}",
        "inference_metrics": null,
        "agent": "i-sandbox",
        "agents": ["i-sandbox"],
        "containers": [{"container_id": r.id.simple().to_string(), "agent": "i-sandbox", "status": r.status.as_str()}],
        "kernels": [{"container_id": r.id.simple().to_string(), "agent_id": "i-sandbox", "status": r.status.as_str(), "cluster_role": "main"}],
        "main_kernel_role": "COMPUTE",
        "commit_status": null,
        "tag": null,
        "startup_command": null,
        "num_queries": 0,
        "last_stat": null,
    })
}

fn snapshots(state: &State) -> Vec<Resolved> {
    let ids: Vec<Uuid> = lock(&state.sessions).iter().map(|e| e.id).collect();
    ids.iter()
        .filter_map(|id| resolve(state, &id.to_string(), "").ok())
        .collect()
}

fn var_u64(vars: &Value, key: &str) -> Option<u64> {
    vars.get(key).and_then(Value::as_u64)
}

pub(super) async fn gql(AxState(state): AxState<St>, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return Json(
            json!({"data": null, "errors": [{"message": "Malformed GraphQL request body"}]}),
        )
        .into_response();
    };
    let query = req.get("query").and_then(Value::as_str).unwrap_or("");
    let vars = req.get("variables").cloned().unwrap_or(Value::Null);
    let mut data = serde_json::Map::new();

    if has_field(query, "keypair") {
        data.insert(
            "keypair".into(),
            json!({"user_id": state.user.email, "access_key": state.user.access_key,
                   "secret_key": state.user.secret_key, "is_active": true, "is_admin": false,
                   "resource_policy": "default", "concurrency_used": 0}),
        );
    }
    let all = snapshots(&state);
    let status_filter: Option<Vec<String>> = vars.get("status").and_then(Value::as_str).map(|s| {
        s.split(',')
            .map(|x| x.trim().to_ascii_uppercase())
            .collect()
    });
    if has_field(query, "compute_session_list") {
        let filtered: Vec<&Resolved> = all
            .iter()
            .filter(|r| {
                status_filter
                    .as_ref()
                    .is_none_or(|f| f.iter().any(|x| x == r.status.as_str()))
            })
            .collect();
        let limit = var_u64(&vars, "limit").unwrap_or(100) as usize;
        let offset = var_u64(&vars, "offset").unwrap_or(0) as usize;
        let items: Vec<Value> = filtered
            .iter()
            .skip(offset)
            .take(limit)
            .map(|r| session_item(&state, r))
            .collect();
        data.insert(
            "compute_session_list".into(),
            json!({"items": items, "total_count": filtered.len()}),
        );
    }
    if has_field(query, "compute_session_nodes") {
        let first_n = var_u64(&vars, "first").unwrap_or(100) as usize;
        let offset = var_u64(&vars, "offset").unwrap_or(0) as usize;
        let edges: Vec<Value> = all
            .iter()
            .skip(offset)
            .take(first_n)
            .map(|r| {
                use base64::Engine as _;
                let gid = base64::engine::general_purpose::STANDARD
                    .encode(format!("ComputeSessionNode:{}", r.id));
                let mut node = session_item(&state, r);
                node["row_id"] = json!(r.id.to_string());
                node["id"] = json!(gid);
                json!({"node": node, "cursor": gid})
            })
            .collect();
        data.insert(
            "compute_session_nodes".into(),
            json!({"edges": edges, "count": all.len()}),
        );
    }
    if has_field(query, "compute_session") {
        let id = vars
            .get("id")
            .or_else(|| vars.get("session_id"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let item = all
            .iter()
            .find(|r| r.id.to_string() == id || r.name == id)
            .map(|r| session_item(&state, r));
        data.insert("compute_session".into(), item.unwrap_or(Value::Null));
    }
    if data.is_empty() {
        return Json(
            json!({"data": null, "errors": [{"message": "bai-sandbox: unsupported query"}]}),
        )
        .into_response();
    }
    // Answer only the selected fields, in the query's order, under the query's aliases.
    let data = match crate::gql::parse(query) {
        Some(roots) => {
            let mut out = serde_json::Map::new();
            for f in &roots {
                if let Some(v) = data.get(&f.name) {
                    out.insert(f.key.clone(), crate::gql::project(v, &f.children));
                }
            }
            Value::Object(out)
        }
        None => Value::Object(data),
    };
    Json(json!({"data": data, "errors": null})).into_response()
}
