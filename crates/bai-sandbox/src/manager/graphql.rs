//! `/admin/gql`: the GraphQL subset clients send (`compute_session_list`,
//! `compute_session_nodes`, `compute_session`, `keypair`), answered with only the selected
//! fields under the query's aliases ([`crate::gql`]); `/admin/graphql` is refused.

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use uuid::Uuid;

use super::sessions::{all_sessions, services, Resolved, IMAGE};
use super::St;
use crate::generation::Generation;
use crate::problem::ProblemReply;
use crate::session::Status;
use crate::State;

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

/// What the emulated generation's schema refuses in `query`: a root field it does not have
/// yet (`compute_session_nodes` before 24.09) or a `ComputeSession` field added later.
fn schema_error(generation: Generation, query: &str) -> Option<String> {
    let roots = crate::gql::parse(query)?;
    let child = |f: &crate::gql::Field, name: &str| -> Vec<crate::gql::Field> {
        f.children
            .iter()
            .filter(|c| c.name == name)
            .flat_map(|c| c.children.clone())
            .collect()
    };
    for root in &roots {
        let items = match root.name.as_str() {
            "compute_session_nodes" if !generation.has_compute_session_nodes() => {
                return Some(format!(
                    "Cannot query field \"{}\" on type \"Queries\".",
                    root.name
                ));
            }
            "compute_session_nodes" => child(root, "edges")
                .iter()
                .filter(|c| c.name == "node")
                .flat_map(|c| c.children.clone())
                .collect(),
            "compute_session_list" => child(root, "items"),
            "compute_session" => root.children.clone(),
            _ => continue,
        };
        if let Some(f) = items.iter().find(|f| {
            generation
                .missing_session_fields()
                .contains(&f.name.as_str())
        }) {
            return Some(format!(
                "Cannot query field \"{}\" on type \"ComputeSession\".",
                f.name
            ));
        }
    }
    None
}

fn snapshots(state: &State) -> Vec<Resolved> {
    all_sessions(state)
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
    if let Some(message) = schema_error(state.generation, query) {
        // A validation error, as graphene answers it: 200, no data.
        return Json(json!({"data": null, "errors": [{"message": message}]})).into_response();
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn schema_refuses_what_the_generation_lacks() {
        let nodes = "query { compute_session_nodes(first: 1) { edges { node { name } } } }";
        assert!(schema_error(Generation::G24_03, nodes).is_some());
        assert!(schema_error(Generation::G24_09, nodes).is_none());
        let priority = "{ compute_session_list(limit:1, offset:0) { items { name priority } } }";
        assert!(
            schema_error(Generation::G24_03, priority).is_some_and(|m| m.contains("\"priority\""))
        );
        assert!(schema_error(Generation::G24_09, priority).is_none());
        let old = "{ compute_session_list(limit:1, offset:0) { items { id name status service_ports created_at group_name type image status_info } } }";
        for g in Generation::ALL {
            assert!(schema_error(g, old).is_none(), "{g}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn any_query_text_never_panics(q in ".{0,200}", nested in "[{}a-z_ ()]{0,80}") {
            for g in Generation::ALL {
                let _ = schema_error(g, &q);
                let _ = schema_error(g, &format!("{{ compute_session_nodes {{ edges {{ node {nested} }} }} }}"));
            }
        }
    }
}
