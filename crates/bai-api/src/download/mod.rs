//! Downloads from a session: one small file (the SSH key among them) or up to five files at
//! once; the answers are decoded by [`decode`].

mod decode;

use reqwest::Method;
use serde_json::json;

pub use decode::MAX_FILE_SIZE;

use crate::classify::header_str;
use crate::classify::Ctx;
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{DownloadStyle, DownloadedFile};
use crate::sensitive::Sensitive;
use crate::wire::Body;

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

impl Client {
    /// Downloads one file (≤ 1 MiB) from the session (`POST /session/{s}/download_single`).
    #[tracing::instrument(skip(self), err)]
    pub async fn download_single(&self, session: &str, path: &str) -> Result<Vec<u8>> {
        let prefix = self.prefix().await?;
        let ctx = Ctx {
            session: Some(session),
            file: Some(path),
            ..Ctx::default()
        };
        let (resp, url) = self
            .call(
                Method::POST,
                &[prefix, session, "download_single"],
                &[("file", path)],
                Body::Empty,
                ctx,
            )
            .await?;
        self.inner
            .wire
            .read_limited(resp, &url, MAX_FILE_SIZE, path, false)
            .await
    }

    /// Fetches the session's SSH private key (`id_container` in [`CONTAINER_HOME`]), cut to start at its
    /// first `-----`. `None` when the file does not exist (the user's own `.ssh` is mounted).
    #[tracing::instrument(skip(self), err)]
    pub async fn fetch_ssh_key(&self, session: &str) -> Result<Option<Sensitive<String>>> {
        let path = id_container_path();
        let data = match self.download_single(session, &path).await {
            Ok(d) => d,
            Err(e) if matches!(e.kind(), ErrorKind::FileNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
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
        let joined = files.join(", ");
        let ctx = Ctx {
            session: Some(session),
            file: Some(&joined),
            ..Ctx::default()
        };
        let segments = [prefix, session, "download"];
        let (resp, url) = match style {
            DownloadStyle::Query => {
                let q: Vec<(&str, &str)> = files.iter().map(|f| ("files", *f)).collect();
                self.call(Method::POST, &segments, &q, Body::Empty, ctx)
                    .await?
            }
            DownloadStyle::JsonBody => {
                self.call(
                    Method::POST,
                    &segments,
                    &[],
                    Body::Json(json!({ "files": files })),
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
            // A 200 without a single file is no download; never let it pass for success.
            return Err(Error::invalid_response(
                &url,
                "the download answer holds no files",
            ));
        }
        Ok(got)
    }
}
