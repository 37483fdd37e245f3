//! The account's SSH keypair (part of the auth area): `GET`, `PATCH` and `POST
//! /auth/ssh-keypair` on the manager, through `/func` in session mode (modern-ssh.md §5,
//! protocol.md §6). The keypair is stored per access key and reaches **new** sessions only.
//!
//! A refused upload is [`ErrorKind::InvalidKey`](crate::ErrorKind::InvalidKey) (by the problem
//! type, in [`crate::classify`]); private keys travel as [`Sensitive`] and are never logged.

use reqwest::Method;
use serde_json::{json, Value};

use crate::classify::Ctx;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::sensitive::Sensitive;
use crate::wire::Body;

/// A keypair the server generated and stored (`PATCH /auth/ssh-keypair`).
#[derive(Debug, Clone)]
pub struct GeneratedKeypair {
    /// The OpenSSH public key line (`ssh-rsa AAAA…\n`).
    pub public_key: String,
    /// The private key (PEM `BEGIN RSA PRIVATE KEY`). The server shows it only this once.
    pub private_key: Sensitive<String>,
}

const PATH: [&str; 2] = ["auth", "ssh-keypair"];

impl Client {
    /// The account's stored SSH public key line, or `None` when the account has none (the
    /// server answers `"ssh_public_key": null` or an empty string).
    #[tracing::instrument(skip_all, err)]
    pub async fn ssh_keypair(&self) -> Result<Option<String>> {
        let (v, url) = self.keypair_call(Method::GET, Body::Empty).await?;
        match v.get("ssh_public_key") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Error::invalid_response(
                &url,
                "`ssh_public_key` is not a string",
            )),
        }
    }

    /// Makes the server generate and store a new keypair for the account (RSA 2048), replacing
    /// the stored one; sessions created from now on use it.
    #[tracing::instrument(skip_all, err)]
    pub async fn generate_ssh_keypair(&self) -> Result<GeneratedKeypair> {
        let (v, url) = self.keypair_call(Method::PATCH, Body::Empty).await?;
        let field = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
                .ok_or_else(|| Error::invalid_response(&url, format!("no `{k}` in the answer")))
        };
        Ok(GeneratedKeypair {
            public_key: field("ssh_public_key")?,
            private_key: Sensitive::new(field("ssh_private_key")?),
        })
    }

    /// Stores the account's keypair: an OpenSSH public key line and its private key (PEM or
    /// OpenSSH; RSA, ECDSA or Ed25519; not password-protected). Sessions created from now on
    /// use it.
    ///
    /// The server checks the pair; a refusal is
    /// [`ErrorKind::InvalidKey`](crate::ErrorKind::InvalidKey) with its reason.
    #[tracing::instrument(skip_all, err)]
    pub async fn upload_ssh_keypair(
        &self,
        public_key: &str,
        private_key: &Sensitive<String>,
    ) -> Result<()> {
        let body = json!({"pubkey": public_key, "privkey": private_key.expose()});
        self.keypair_call(Method::POST, Body::Json(body)).await?;
        Ok(())
    }

    async fn keypair_call(&self, method: Method, body: Body) -> Result<(Value, url::Url)> {
        let (resp, url) = self.call(method, &PATH, &[], body, Ctx::default()).await?;
        let v: Value = self.inner.wire.read_json(resp, &url).await?;
        if !v.is_object() {
            return Err(Error::invalid_response(
                &url,
                "the answer is not a JSON object",
            ));
        }
        Ok((v, url))
    }
}
