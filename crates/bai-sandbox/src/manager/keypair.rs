//! `/auth/ssh-keypair`: the caller's stored SSH keypair (`GET`), a new generated one
//! (`PATCH`), or an uploaded one (`POST {"pubkey","privkey"}`); see [`crate::keypair`] for the
//! rules. Keyed by the access key the request was signed with, so session mode (through the
//! webserver's `/func` relay, re-signed with the user's keypair) reaches the same store.

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::auth::Identity;
use super::St;
use crate::keypair;
use crate::lock;
use crate::problem::ProblemReply;

pub(super) async fn get_keypair(
    AxState(state): AxState<St>,
    Extension(id): Extension<Identity>,
) -> Response {
    let public = lock(&state.ssh_keypairs)
        .get(&id.access_key)
        .map(|k| k.public_key.clone());
    Json(json!({ "ssh_public_key": public })).into_response()
}

pub(super) async fn generate_keypair(
    AxState(state): AxState<St>,
    Extension(id): Extension<Identity>,
) -> Response {
    match keypair::generate().await {
        Ok(k) => {
            let body = json!({
                "ssh_public_key": k.public_key,
                "ssh_private_key": k.private_key,
            });
            lock(&state.ssh_keypairs).insert(id.access_key, k);
            Json(body).into_response()
        }
        Err(e) => ProblemReply::internal(e.to_string()).into_response(),
    }
}

pub(super) async fn upload_keypair(
    AxState(state): AxState<St>,
    Extension(id): Extension<Identity>,
    body: Bytes,
) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return ProblemReply::invalid_params("Malformed JSON body").into_response();
    };
    let field = |k: &str| v.get(k).and_then(Value::as_str);
    let (Some(pubkey), Some(privkey)) = (field("pubkey"), field("privkey")) else {
        return ProblemReply::invalid_params("pubkey and privkey are required").into_response();
    };
    match keypair::validate(pubkey, privkey).await {
        Ok(Ok(k)) => {
            // The manager answers with the pair it stored.
            let body = json!({
                "ssh_public_key": k.public_key,
                "ssh_private_key": k.private_key,
            });
            lock(&state.ssh_keypairs).insert(id.access_key, k);
            Json(body).into_response()
        }
        Ok(Err(problem)) => problem.into_response(),
        Err(e) => ProblemReply::internal(e.to_string()).into_response(),
    }
}
