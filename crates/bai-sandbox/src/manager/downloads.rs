//! The download routes: `download_single` (one file, as is) and `download` (up to five files
//! or directories, each as a tar part of a `multipart/mixed` body). Container paths map into
//! the session home; the reads themselves are confined and streamed by [`crate::download`].

use std::path::{Component, Path, PathBuf};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State as AxState};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use uuid::Uuid;

use super::sessions::{first, query_pairs, resolve};
use super::St;
use crate::download::{self, file_not_found};
use crate::generation::VerbAnswer;
use crate::problem::ProblemReply;

/// Maps a container path (absolute under `/home/work`, or relative to it) into the session home.
fn container_path(home: &Path, p: &str) -> Result<PathBuf, ProblemReply> {
    let rel = if let Some(r) = p.strip_prefix("/home/work") {
        if !(r.is_empty() || r.starts_with('/')) {
            return Err(ProblemReply::internal("The path is outside /home/work."));
        }
        r.trim_start_matches('/')
    } else if p.starts_with('/') {
        return Err(ProblemReply::internal("The path is outside /home/work."));
    } else {
        p
    };
    let rel = Path::new(rel);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(ProblemReply::internal("The path is outside /home/work."));
    }
    Ok(home.join(rel))
}

fn body_json(body: &Bytes) -> Option<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    serde_json::from_slice(body).ok()
}

/// The emulated generation's answer to this method on a download route, when it does not
/// serve it: 405 (no route for the method) or 400 `deprecated` (23.09 … 25.x for GET).
fn refused_verb(state: &crate::State, method: &Method) -> Option<Response> {
    let post = match *method {
        Method::POST => true,
        Method::GET | Method::HEAD => false,
        _ => return Some(StatusCode::METHOD_NOT_ALLOWED.into_response()),
    };
    match state.generation.download_verb(post) {
        VerbAnswer::Serve => None,
        VerbAnswer::NotAllowed => Some(
            (
                StatusCode::METHOD_NOT_ALLOWED,
                [(header::ALLOW, if post { "GET" } else { "POST" })],
                "405: Method Not Allowed",
            )
                .into_response(),
        ),
        VerbAnswer::Deprecated => Some(
            ProblemReply::new(400, "deprecated", "This API is deprecated.")
                .msg("Use the HTTP POST method to invoke this API with parameters in the request body.")
                .into_response(),
        ),
    }
}

/// The JSON body, when this generation reads parameters from it (up to 25.x).
fn params_body(state: &crate::State, body: &Bytes) -> Option<Value> {
    state
        .generation
        .download_reads_body()
        .then(|| body_json(body))
        .flatten()
}

pub(super) async fn download_single(
    AxState(state): AxState<St>,
    UrlPath(s): UrlPath<String>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    if let Some(refused) = refused_verb(&state, &method) {
        return refused;
    }
    let r = match resolve(&state, &s, uri.path()) {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    let q = query_pairs(uri.query());
    let json_body = params_body(&state, &body);
    let file = first(&q, "file")
        .map(str::to_owned)
        .or_else(|| json_body.as_ref()?.get("file")?.as_str().map(str::to_owned));
    let Some(file) = file else {
        return ProblemReply::invalid_params("Missing parameter: file").into_response();
    };
    let path = match container_path(&r.home, &file) {
        Ok(p) => p,
        Err(p) => return p.into_response(),
    };
    let (home, limit) = (r.home.clone(), state.download_limit);
    let (file, size) =
        match tokio::task::spawn_blocking(move || download::open_single(&home, &path, limit)).await
        {
            Ok(Ok(f)) => f,
            Ok(Err(p)) => return p.into_response(),
            Err(_) => return file_not_found().into_response(),
        };
    let body = download::streamed_body(move |w| {
        std::io::copy(&mut download::exact(&file, size), w).map(drop)
    });
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        body,
    )
        .into_response()
}

pub(super) async fn download(
    AxState(state): AxState<St>,
    UrlPath(s): UrlPath<String>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    if let Some(refused) = refused_verb(&state, &method) {
        return refused;
    }
    let r = match resolve(&state, &s, uri.path()) {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    let mut files: Vec<String> = query_pairs(uri.query())
        .into_iter()
        .filter(|(k, _)| k == "files")
        .map(|(_, v)| v)
        .collect();
    if let Some(list) = params_body(&state, &body).and_then(|v| v.get("files").cloned()) {
        match list {
            Value::Array(a) => files.extend(a.iter().filter_map(|v| v.as_str().map(str::to_owned))),
            Value::String(s) => files.push(s),
            _ => {}
        }
    }
    if files.is_empty() {
        return ProblemReply::invalid_params("Missing parameter: files").into_response();
    }
    if files.len() > 5 {
        return ProblemReply::invalid_params("Too many files (at most 5).").into_response();
    }
    let mut paths = Vec::with_capacity(files.len());
    for f in &files {
        match container_path(&r.home, f) {
            Ok(p) => paths.push(p),
            Err(p) => return p.into_response(),
        }
    }
    // Every part is planned (opened, checked, measured) before a byte is sent, so that a
    // refusal is a problem response; the tars are then streamed as they are read.
    let (home, limit) = (r.home.clone(), state.download_limit);
    let plan = tokio::task::spawn_blocking(move || {
        paths
            .iter()
            .map(|p| download::plan_part(&home, p, limit))
            .collect::<Result<Vec<_>, _>>()
    });
    let parts = match plan.await {
        Ok(Ok(parts)) => parts,
        Ok(Err(p)) => return p.into_response(),
        Err(_) => return file_not_found().into_response(),
    };
    let boundary = Uuid::new_v4().simple().to_string();
    let part_head = |len: u64| {
        format!(
            "--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Encoding: identity\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    let end = format!("--{boundary}--\r\n");
    let total = parts
        .iter()
        .map(|p| part_head(p.len()).len() as u64 + p.len() + 2)
        .sum::<u64>()
        + end.len() as u64;
    let heads: Vec<String> = parts.iter().map(|p| part_head(p.len())).collect();
    let body = download::streamed_body(move |w| {
        use std::io::Write as _;
        for (part, head) in parts.iter().zip(&heads) {
            w.write_all(head.as_bytes())?;
            download::write_part(part, w)?;
            w.write_all(b"\r\n")?;
        }
        w.write_all(end.as_bytes())
    });
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                format!("multipart/mixed; boundary={boundary}"),
            ),
            (header::CONTENT_LENGTH, total.to_string()),
        ],
        body,
    )
        .into_response()
}
