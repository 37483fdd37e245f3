//! Sessions: the GraphQL endpoint, the paged session list (never trusting the server's
//! counts), and one session's info.

use reqwest::Method;
use serde_json::{json, Value};

use crate::classify::Ctx;
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{decode_service_ports, Session, SessionInfo, StatusFilter};
use crate::wire::Body;

/// The page size of `compute_session_list` (the server's maximum).
const PAGE_SIZE: usize = 100;
/// The most sessions [`Client::list_sessions`] accepts. The server's `total_count` is only a
/// claim: paging stops at the first empty page, and after this many sessions (or as many
/// pages as that takes) it is an error, whatever the server says, so a hostile or broken
/// server cannot keep it looping or allocating.
pub const MAX_LISTED_SESSIONS: usize = 10_000;
/// The most pages [`Client::list_sessions`] requests (enough for [`MAX_LISTED_SESSIONS`]).
const MAX_PAGES: usize = MAX_LISTED_SESSIONS / PAGE_SIZE;

/// Whether `e` is GraphQL refusing a field the schema does not have (graphene: `Cannot query
/// field "NAME" on type …`).
fn refuses_field(e: &Error, name: &str) -> bool {
    match e.kind() {
        ErrorKind::GraphQl { messages } => messages
            .iter()
            .any(|m| m.contains("Cannot query field") && m.contains(name)),
        _ => false,
    }
}

impl Client {
    /// Runs a GraphQL query and returns `data`; non-empty `errors` is an error.
    pub async fn graphql(&self, query: &str, variables: Value) -> Result<Value> {
        let path = self.dialect().await?.graphql_path();
        let body = json!({"query": query, "variables": variables});
        let v: Value = self
            .call_json(
                Method::POST,
                &["admin", path],
                &[],
                Body::Json(body),
                Ctx::default(),
            )
            .await?;
        if let Some(errors) = v.get("errors").and_then(Value::as_array) {
            if !errors.is_empty() {
                let messages = errors
                    .iter()
                    .map(|e| {
                        e.get("message")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .unwrap_or_else(|| e.to_string())
                    })
                    .collect();
                return Err(ErrorKind::GraphQl { messages }.into());
            }
        }
        Ok(v.get("data").cloned().unwrap_or(Value::Null))
    }

    /// Lists the caller's compute sessions (`compute_session_list`, 100 per page).
    ///
    /// Paging follows `total_count` but never trusts it: it stops at the first page without
    /// items, and a list that does not end within [`MAX_LISTED_SESSIONS`] sessions' worth of
    /// pages (or a page with more items than asked for) is an [`ErrorKind::InvalidResponse`].
    ///
    /// A server whose schema no longer has `compute_session_list` (GraphQL answers "Cannot
    /// query field …compute_session_list…") is asked through the relay connection
    /// `compute_session_nodes` instead (24.09 and newer have both), filtered here by status.
    #[tracing::instrument(skip(self), err)]
    pub async fn list_sessions(&self, filter: StatusFilter) -> Result<Vec<Session>> {
        match self.list_sessions_legacy(&filter).await {
            Err(e) if refuses_field(&e, "compute_session_list") => {
                tracing::debug!(
                    "no compute_session_list in the schema: using compute_session_nodes"
                );
                self.list_session_nodes(&filter).await
            }
            other => other,
        }
    }

    /// `compute_session_nodes` (relay), paged by `first`/`offset`, filtered here by status.
    async fn list_session_nodes(&self, filter: &StatusFilter) -> Result<Vec<Session>> {
        const QUERY: &str = "query($first:Int!, $offset:Int!) { \
            compute_session_nodes(first:$first, offset:$offset) { \
            edges { node { row_id name type status status_info created_at service_ports } } \
            count } }";
        let wanted: Vec<String> = filter.as_query().split(',').map(str::to_owned).collect();
        let mut out = Vec::new();
        let mut seen = 0usize;
        for _ in 0..MAX_PAGES {
            let data = self
                .graphql(QUERY, json!({"first": PAGE_SIZE, "offset": seen}))
                .await?;
            let conn = data.get("compute_session_nodes").ok_or_else(|| {
                Error::invalid_response(&self.inner.endpoint, "no compute_session_nodes in data")
            })?;
            let edges = conn
                .get("edges")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if edges.len() > PAGE_SIZE {
                return Err(Error::invalid_response(
                    &self.inner.endpoint,
                    format!(
                        "a session page holds {} edges, more than the {PAGE_SIZE} asked for",
                        edges.len()
                    ),
                ));
            }
            let total = conn.get("count").and_then(Value::as_u64).unwrap_or(0);
            for edge in edges {
                let mut node = edge.get("node").cloned().unwrap_or(Value::Null);
                if let Some(o) = node.as_object_mut() {
                    // The relay `id` is a global id; the session's UUID is `row_id`.
                    let row_id = o.get("row_id").cloned().unwrap_or(Value::Null);
                    o.insert("id".into(), row_id);
                }
                let session = parse_session(&node).map_err(|e| {
                    Error::invalid_response(&self.inner.endpoint, format!("bad session node: {e}"))
                })?;
                if wanted.contains(&session.status) {
                    out.push(session);
                }
            }
            seen += edges.len();
            if edges.is_empty() || u64::try_from(seen).map_or(true, |n| n >= total) {
                return Ok(out);
            }
        }
        Err(Error::invalid_response(
            &self.inner.endpoint,
            format!("the session list does not end within {MAX_PAGES} pages"),
        ))
    }

    async fn list_sessions_legacy(&self, filter: &StatusFilter) -> Result<Vec<Session>> {
        const QUERY: &str = "query($limit:Int!, $offset:Int!, $status:String) { \
            compute_session_list(limit:$limit, offset:$offset, status:$status) { \
            items { id name type image status status_info created_at group_name service_ports } \
            total_count } }";
        let status = filter.as_query();
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let data = self
                .graphql(
                    QUERY,
                    json!({"limit": PAGE_SIZE, "offset": out.len(), "status": status}),
                )
                .await?;
            let list = data.get("compute_session_list").ok_or_else(|| {
                Error::invalid_response(&self.inner.endpoint, "no compute_session_list in data")
            })?;
            let items = list
                .get("items")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if items.len() > PAGE_SIZE {
                return Err(Error::invalid_response(
                    &self.inner.endpoint,
                    format!(
                        "a session list page holds {} items, more than the {PAGE_SIZE} asked for",
                        items.len()
                    ),
                ));
            }
            let total = list.get("total_count").and_then(Value::as_u64).unwrap_or(0);
            for item in items {
                out.push(parse_session(item).map_err(|e| {
                    Error::invalid_response(&self.inner.endpoint, format!("bad session item: {e}"))
                })?);
            }
            if items.is_empty() || u64::try_from(out.len()).map_or(true, |n| n >= total) {
                return Ok(out);
            }
        }
        Err(Error::invalid_response(
            &self.inner.endpoint,
            format!(
                "the session list does not end within {MAX_PAGES} pages ({} sessions so far; \
                 bai lists at most {MAX_LISTED_SESSIONS})",
                out.len()
            ),
        ))
    }

    /// The session's info (`GET /session/{s}`).
    #[tracing::instrument(skip(self), err)]
    pub async fn session_info(&self, session: &str) -> Result<SessionInfo> {
        let prefix = self.prefix().await?;
        let target = self.session_ref(session).await?;
        let ctx = Ctx {
            session: Some(session),
            ..Ctx::default()
        };
        let raw: Value = self
            .call_json(Method::GET, &[prefix, &target], &[], Body::Empty, ctx)
            .await?;
        let status = raw
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(SessionInfo { status, raw })
    }
}

fn opt_str(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn parse_session(item: &Value) -> std::result::Result<Session, String> {
    let id = match item.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    Ok(Session {
        id,
        name: opt_str(item, "name").ok_or("no name")?,
        status: opt_str(item, "status").unwrap_or_default(),
        status_info: opt_str(item, "status_info"),
        image: opt_str(item, "image"),
        session_type: opt_str(item, "type"),
        created_at: opt_str(item, "created_at"),
        group_name: opt_str(item, "group_name"),
        service_ports: decode_service_ports(item.get("service_ports").unwrap_or(&Value::Null))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_session_items() {
        let s = parse_session(&json!({
            "id": "8f9a", "name": "s1", "status": "RUNNING", "type": "INTERACTIVE",
            "service_ports": "[{\"name\":\"sshd\",\"protocol\":\"tcp\",\"container_ports\":[2200],\"host_ports\":[30002]}]"
        }))
        .expect("session");
        assert!(s.has_app("sshd"));
        assert!(!s.has_app("ttyd"));
        assert!(s.is_running());
        assert_eq!(s.session_type.as_deref(), Some("INTERACTIVE"));
    }

    mod props {
        use proptest::prelude::*;
        use serde_json::{json, Value};

        use super::*;
        use crate::model::props::any_json;

        proptest! {
            #![proptest_config(ProptestConfig {
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            #[test]
            fn any_session_item_never_panics(v in any_json()) {
                let _ = parse_session(&v);
            }

            #[test]
            fn junk_service_ports_never_break_a_session_item(
                ports in any_json(),
                encode in any::<bool>(),
                id in any_json(),
            ) {
                let ports = if encode { Value::String(ports.to_string()) } else { ports };
                let item = json!({"id": id, "name": "s", "status": "RUNNING",
                                  "service_ports": ports});
                if let Ok(s) = parse_session(&item) {
                    prop_assert_eq!(s.name, "s");
                    for p in &s.service_ports {
                        prop_assert!(!p.name.is_empty());
                        prop_assert!(p.container_ports.iter().chain(&p.host_ports).all(|&n| n != 0));
                    }
                }
            }
        }
    }
}
