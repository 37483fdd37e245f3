//! Sessions as the manager's routes see them: resolving the session a request names (by UUID,
//! or by name among live sessions, with its fail-route fault), its service ports, query-string
//! decoding, and the session info routes (`/session/<s>`, `direct-access-info`).

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::extract::{Path as UrlPath, State as AxState};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::St;
use crate::faults::Faults;
use crate::generation::Lookup;
use crate::problem::ProblemReply;
use crate::session::{SessionEntry, Status};
use crate::{lock, State};

/// The image every session reports.
pub(super) const IMAGE: &str = "cr.backend.ai/stable/python:3.11-ubuntu22.04";

/// A snapshot of a session for one request.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub id: Uuid,
    pub name: String,
    pub status: Status,
    pub home: PathBuf,
    pub sshd_port: Option<u16>,
    pub apps: Vec<(String, SocketAddr)>,
    pub web_apps: Vec<crate::WebApp>,
    pub faults: Faults,
    pub tunnels: CancellationToken,
    pub created_at: DateTime<Utc>,
    pub status_changed: DateTime<Utc>,
    pub terminated_at: Option<DateTime<Utc>>,
}

/// Resolves `s` as the emulated generation does ([`Lookup`]): by UUID or exact name among
/// live sessions (the newest also finds a terminated session by UUID), or, on 22.09, by
/// session-ID prefix, exact name, then name prefix, where more than one match is 404
/// `too-many-sessions-matched`. The 26.4.4 release candidates refuse a UUID in a stream path.
/// Then applies the session's fail-route fault to `path`.
pub(crate) fn resolve(state: &State, s: &str, path: &str) -> Result<Resolved, ProblemReply> {
    let sessions = lock(&state.sessions);
    let generation = state.generation;
    let by_id = Uuid::parse_str(s).ok();
    let e = match generation.lookup() {
        Lookup::Exact => {
            if by_id.is_some() && path.starts_with("/stream/") && generation.stream_refuses_uuid() {
                return Err(ProblemReply::no_session());
            }
            sessions
                .iter()
                .find(|e| Some(e.id) == by_id)
                .or_else(|| {
                    sessions
                        .iter()
                        .find(|e| e.name == s && !e.status.is_terminal())
                })
                .ok_or_else(|| ProblemReply::unknown_session(generation))?
        }
        Lookup::Prefix => {
            let live: Vec<&SessionEntry> = sessions
                .iter()
                .filter(|e| !e.status.is_terminal())
                .collect();
            let lower = s.to_ascii_lowercase();
            let tiers: [&dyn Fn(&SessionEntry) -> bool; 3] = [
                &|e| e.id.to_string().starts_with(&lower),
                &|e| e.name == s,
                &|e| e.name.starts_with(s),
            ];
            let mut found = None;
            for tier in tiers {
                let matched: Vec<&SessionEntry> =
                    live.iter().copied().filter(|e| tier(e)).collect();
                match matched.as_slice() {
                    [] => continue,
                    [one] => {
                        found = Some(*one);
                        break;
                    }
                    many => return Err(ProblemReply::too_many_sessions(many)),
                }
            }
            found.ok_or_else(|| ProblemReply::unknown_session(generation))?
        }
    };
    if let Some(status) = e.faults.failing_status(path) {
        return Err(ProblemReply::injected(status));
    }
    Ok(snapshot(e))
}

/// Every session (terminated ones too), as the GraphQL lists see them.
pub(crate) fn all_sessions(state: &State) -> Vec<Resolved> {
    lock(&state.sessions).iter().map(snapshot).collect()
}

fn snapshot(e: &SessionEntry) -> Resolved {
    Resolved {
        id: e.id,
        name: e.name.clone(),
        status: e.status,
        home: e.home.clone(),
        sshd_port: e.sshd.as_ref().map(|p| p.port),
        apps: e.apps.clone(),
        web_apps: e.web_apps.clone(),
        faults: e.faults.clone(),
        tunnels: e.tunnels.clone(),
        created_at: e.created_at,
        status_changed: e.status_changed,
        terminated_at: e.terminated_at,
    }
}

/// One service port of a session.
pub(super) struct Service {
    pub name: String,
    pub protocol: &'static str,
    pub container_port: u16,
    pub target: SocketAddr,
}

/// The session's service ports: none until RUNNING (with an sshd), then sshd, the built-in
/// apps (`crate::webapps`) and the extra apps.
pub(super) fn services(r: &Resolved) -> Vec<Service> {
    let Some(port) = r.sshd_port.filter(|_| r.status == Status::Running) else {
        return Vec::new();
    };
    let mut v = vec![Service {
        name: "sshd".into(),
        protocol: "tcp",
        container_port: 2200,
        target: SocketAddr::from(([127, 0, 0, 1], port)),
    }];
    v.extend(r.web_apps.iter().map(|a| Service {
        name: a.name.clone(),
        protocol: if a.protocol == "http" { "http" } else { "tcp" },
        container_port: a.container_port,
        target: a.addr,
    }));
    v.extend(r.apps.iter().map(|(name, addr)| Service {
        name: name.clone(),
        protocol: "tcp",
        container_port: addr.port(),
        target: *addr,
    }));
    v
}

/// Decodes `application/x-www-form-urlencoded` pairs of a raw query.
pub(crate) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    let hex = |c: u8| (c as char).to_digit(16);
                    match (hex(b[i + 1]), hex(b[i + 2])) {
                        (Some(h), Some(l)) => {
                            out.push((h * 16 + l) as u8);
                            i += 2;
                        }
                        _ => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    raw.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

pub(super) fn first<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

pub(super) async fn session_info(
    AxState(state): AxState<St>,
    UrlPath(s): UrlPath<String>,
    uri: Uri,
) -> Response {
    let r = match resolve(&state, &s, uri.path()) {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    let age_ms = (Utc::now() - r.created_at).num_milliseconds().max(0);
    Json(json!({
        "sessionId": r.id.to_string(),
        "sessionName": r.name,
        "domainName": "default",
        "groupId": Uuid::nil().to_string(),
        "userId": state.user.user_id.to_string(),
        "lang": IMAGE,
        "image": IMAGE,
        "architecture": "x86_64",
        "registry": "cr.backend.ai",
        "tag": null,
        "containerId": r.id.simple().to_string(),
        "occupiedSlots": {"cpu": "1", "mem": "1073741824"},
        "occupyingSlots": {"cpu": "1", "mem": "1073741824"},
        "requestedSlots": {"cpu": "1", "mem": "1073741824"},
        "occupiedShares": {},
        "environ": [],
        "resourceOpts": {},
        "status": r.status.as_str(),
        "statusInfo": null,
        "statusData": null,
        "age": age_ms,
        "creationTime": r.created_at.to_rfc3339(),
        "terminationTime": r.terminated_at.map(|t| t.to_rfc3339()),
        "numQueriesExecuted": 0,
        "lastStat": null,
        "idleChecks": {},
    }))
    .into_response()
}

pub(super) async fn direct_access_info(
    AxState(state): AxState<St>,
    UrlPath(s): UrlPath<String>,
    uri: Uri,
) -> Response {
    match resolve(&state, &s, uri.path()) {
        // Only SYSTEM (SFTP) sessions answer with ports; sandbox sessions are INTERACTIVE.
        Ok(_) => Json(json!({})).into_response(),
        Err(p) => p.into_response(),
    }
}
