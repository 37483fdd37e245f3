//! Downloads from a session: one small file (the SSH key among them) or up to five files at
//! once; the answers are decoded by [`decode`].

mod decode;

use bai_problem::Problem;
use reqwest::StatusCode;
use serde_json::json;
use url::Url;

pub use decode::MAX_FILE_SIZE;

use crate::classify::header_str;
use crate::classify::Ctx;
use crate::client::Client;
use crate::dialect::other_download_method;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{DownloadStyle, DownloadedFile};
use crate::sensitive::Sensitive;
use crate::wire::Body;
use crate::wire::ERROR_BODY_LIMIT;

/// The most files one download call may ask for.
pub const MAX_DOWNLOAD_FILES: usize = 5;
/// A whole multipart download answer (five tars of ≤ 1 MiB plus framing).
const DOWNLOAD_BODY_LIMIT: u64 = 8 * 1024 * 1024;
/// The home directory of the container's login account: relative download paths start here.
pub const CONTAINER_HOME: &str = "/home/work";
/// The file name of the SSH key the agent writes into [`CONTAINER_HOME`].
pub const ID_CONTAINER: &str = "id_container";

/// The absolute path of the SSH key in the container (as the WebUI asks for it).
pub fn id_container_path() -> String {
    format!("{CONTAINER_HOME}/{ID_CONTAINER}")
}

/// Whether a refused download names the method, not the request: 405 (no route for it), or
/// 400 `deprecated` ("Use the HTTP POST method…", 23.09 … 25.x for GET).
fn refuses_method(status: StatusCode, body: &[u8]) -> bool {
    status == StatusCode::METHOD_NOT_ALLOWED
        || (status == StatusCode::BAD_REQUEST
            && Problem::parse(body)
                .and_then(|p| p.type_)
                .is_some_and(|t| t.ends_with("/deprecated")))
}

impl Client {
    /// A download call with the method of the server's generation ([`crate::Dialect`]): when
    /// the server refuses the method ([`refuses_method`]), the other one is tried and, if it
    /// works, remembered for this client.
    async fn download_call(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        body: impl Fn() -> Body,
        ctx: Ctx<'_>,
    ) -> Result<(reqwest::Response, Url)> {
        let chosen = self.dialect().await?.download_method();
        let remembered = self
            .inner
            .download_method
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let method = remembered.unwrap_or(chosen);
        let wire = &self.inner.wire;
        let (resp, url, sent) = self
            .send_call(method.clone(), segments, query, body())
            .await?;
        let status = resp.status();
        if status.is_success() {
            return Ok((wire.check(resp, &url, ctx, sent.as_ref()).await?, url));
        }
        let headers = resp.headers().clone();
        let error_body = wire
            .read_limited(resp, &url, ERROR_BODY_LIMIT, "error body", true)
            .await?;
        if !refuses_method(status, &error_body) {
            return Err(wire.classify(status, &headers, &error_body, &url, ctx, sent.is_some()));
        }
        let other = other_download_method(&method);
        tracing::debug!(%method, %other, status = status.as_u16(), "the server refused the download method: trying the other");
        let (resp, url) = self
            .call(other.clone(), segments, query, body(), ctx)
            .await?;
        *self
            .inner
            .download_method
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(other);
        Ok((resp, url))
    }

    /// Downloads one file (≤ 1 MiB) from the session (`download_single`, POST or GET as the
    /// server's generation wants).
    #[tracing::instrument(skip(self), err)]
    pub async fn download_single(&self, session: &str, path: &str) -> Result<Vec<u8>> {
        let prefix = self.prefix().await?;
        let target = self.session_ref(session).await?;
        let ctx = Ctx {
            session: Some(session),
            file: Some(path),
            ..Ctx::default()
        };
        let (resp, url) = self
            .download_call(
                &[prefix, &target, "download_single"],
                &[("file", path)],
                || Body::Empty,
                ctx,
            )
            .await?;
        self.inner
            .wire
            .read_limited(resp, &url, MAX_FILE_SIZE, path, false)
            .await
    }

    /// Fetches the session's SSH private key (`id_container` in [`CONTAINER_HOME`]), cut to start at its
    /// first `-----`. `None` when the file does not exist (the user's own `.ssh` is mounted) or
    /// is empty.
    #[tracing::instrument(skip(self), err)]
    pub async fn fetch_ssh_key(&self, session: &str) -> Result<Option<Sensitive<String>>> {
        let path = id_container_path();
        let data = match self.download_single(session, &path).await {
            Ok(d) => d,
            Err(e) if matches!(e.kind(), ErrorKind::FileNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        // An empty answer is no key file either: the real manager sends one when the agent
        // has nothing to give (its dummy agent always does).
        if data.is_empty() {
            return Ok(None);
        }
        let key = decode::strip_key(&data)
            .map_err(|e| Error::invalid_response(&self.inner.endpoint, format!("{path}: {e}")))?;
        Ok(Some(Sensitive::new(key)))
    }

    /// Downloads up to five files (paths relative to `/home/work`) as `(name, bytes)`.
    #[tracing::instrument(skip(self), err)]
    pub async fn download(
        &self,
        session: &str,
        files: &[&str],
        style: DownloadStyle,
    ) -> Result<Vec<DownloadedFile>> {
        if files.is_empty() || files.len() > MAX_DOWNLOAD_FILES {
            return Err(Error::invalid_input(format!(
                "download takes 1 to {MAX_DOWNLOAD_FILES} files, not {}",
                files.len()
            )));
        }
        let prefix = self.prefix().await?;
        let target = self.session_ref(session).await?;
        let joined = files.join(", ");
        let ctx = Ctx {
            session: Some(session),
            file: Some(&joined),
            ..Ctx::default()
        };
        let segments = [prefix, target.as_str(), "download"];
        let (resp, url) = match style {
            DownloadStyle::Query => {
                let q: Vec<(&str, &str)> = files.iter().map(|f| ("files", *f)).collect();
                self.download_call(&segments, &q, || Body::Empty, ctx)
                    .await?
            }
            DownloadStyle::JsonBody => {
                self.download_call(
                    &segments,
                    &[],
                    || Body::Json(json!({ "files": files })),
                    ctx,
                )
                .await?
            }
        };
        let content_type = header_str(resp.headers(), "content-type").to_owned();
        let body = self
            .inner
            .wire
            .read_limited(resp, &url, DOWNLOAD_BODY_LIMIT, "the download", false)
            .await?;
        let got = decode::decode_download(&content_type, &body)
            .map_err(|e| Error::invalid_response(&url, e))?;
        if got.is_empty() {
            // A 200 without a single file is no download; never let it pass for success. The
            // real manager answers so when the agent has no such file to give (its dummy agent
            // sends an empty part per file): the file is not there.
            return Err(ErrorKind::FileNotFound {
                session: session.to_owned(),
                path: joined,
            }
            .into());
        }
        Ok(got)
    }
}
