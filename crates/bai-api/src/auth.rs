//! Logging in to the webserver (session mode): login, login-check, logout, extending the web
//! session; and what a failed login means (wrong password, TOTP needed).

use bai_problem::{header as h, Problem};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use url::Url;

use crate::classify::Ctx;
use crate::classify::{header_str, wrong_url};
use crate::client::Client;
use crate::error::{redact, Error, ErrorKind, Result};
use crate::model::{AccountInfo, LoginCheck, LoginInfo};
use crate::sensitive::Sensitive;
use crate::wire::{session_from_cookies, Auth, Body, ERROR_BODY_LIMIT};

/// Why a login with `authenticated: false` failed, from the problem in its `data`.
///
/// By type first: `require-totp-registration` and `require-totp-authentication`. Then the
/// official CLI's own test (it retries with a code when `details` is "OTP not provided",
/// protocol.md §3), and for an untyped problem any text naming those types. Anything else
/// is a refused password.
fn login_failure(problem: &Problem, otp_given: bool) -> ErrorKind {
    let slug = problem
        .type_
        .as_deref()
        .and_then(|t| t.rsplit('/').next())
        .unwrap_or_default();
    let text = [
        &problem.title,
        &problem.msg,
        &problem.details,
        &problem.type_,
    ]
    .into_iter()
    .flatten()
    .map(|s| s.to_lowercase())
    .collect::<Vec<_>>()
    .join(" | ");
    let untyped = problem.type_.is_none() && problem.error_code.is_none();
    if slug == "require-totp-registration"
        || (untyped && text.contains("require-totp-registration"))
    {
        return ErrorKind::TotpRequired { registration: true };
    }
    let otp_not_provided = problem
        .message()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("otp not provided"))
        || (untyped && text.contains("otp not provided"));
    if slug == "require-totp-authentication"
        || (untyped && text.contains("require-totp-authentication"))
        || (!otp_given && otp_not_provided)
    {
        return ErrorKind::TotpRequired {
            registration: false,
        };
    }
    let detail = problem.to_string();
    ErrorKind::AuthFailed {
        detail: if detail.is_empty() {
            "wrong email or password".into()
        } else {
            detail
        },
    }
}

impl Client {
    /// A webserver call (`/server/…`), session mode only.
    async fn server_call(&self, name: &str, body: Body) -> Result<(reqwest::Response, Url)> {
        let (resp, url, sent) = self.server_send(name, body).await?;
        let resp = self
            .inner
            .wire
            .check(resp, &url, Ctx::default(), sent.as_ref())
            .await?;
        Ok((resp, url))
    }

    /// Sends a webserver call (`/server/…`) without checking the answer.
    async fn server_send(
        &self,
        name: &str,
        body: Body,
    ) -> Result<(reqwest::Response, Url, Option<Sensitive<String>>)> {
        let version = self.negotiate_version().await?;
        let url = self.build_url(&["server", name], &[]);
        let (resp, sent) = self
            .inner
            .wire
            .send(Method::POST, &url, body, Some(version), Auth::Yes)
            .await?;
        Ok((resp, url, sent))
    }

    /// Logs in to the webserver (session mode). Over plain `http` the body is encrypted as
    /// the webserver's `decrypt_payload` expects. On success the login session id is kept
    /// (see [`Client::session_id`]).
    ///
    /// Fails with [`ErrorKind::TotpRequired`] when the account needs a one-time password and
    /// none (or a wrong one) was given, and [`ErrorKind::AuthFailed`] for a wrong password.
    #[tracing::instrument(skip(self, password, otp), fields(endpoint = %redact(&self.inner.endpoint)), err)]
    pub async fn login(
        &self,
        email: &str,
        password: &Sensitive<String>,
        otp: Option<&str>,
    ) -> Result<LoginInfo> {
        self.require_session_mode("login")?;
        let wire = &self.inner.wire;
        let version = self.negotiate_version().await?;
        let url = self.build_url(&["server", "login"], &[]);
        let mut creds = json!({"username": email, "password": password.expose()});
        if let Some(otp) = otp {
            creds["otp"] = json!(otp);
        }
        // Deliberately no session id: a second login in a logged-in web session is refused.
        let (resp, _) = wire
            .send(
                Method::POST,
                &url,
                Body::login(&url, creds),
                Some(version),
                Auth::No,
            )
            .await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = wire
            .read_limited(resp, &url, ERROR_BODY_LIMIT, "login answer", true)
            .await?;
        let parsed: Option<Value> = serde_json::from_slice(&body).ok();
        let authenticated = parsed
            .as_ref()
            .and_then(|v| v.get("authenticated"))
            .and_then(Value::as_bool);
        match authenticated {
            Some(true) if status.is_success() => {
                let account: AccountInfo = parsed
                    .as_ref()
                    .and_then(|v| v.get("data"))
                    .cloned()
                    .and_then(|d| serde_json::from_value(d).ok())
                    .unwrap_or_default();
                let header_id = header_str(&headers, h::SESSION_ID).trim().to_owned();
                let id = if header_id.is_empty() {
                    session_from_cookies(&headers).filter(|s| !s.is_empty())
                } else {
                    Some(header_id)
                };
                let Some(id) = id else {
                    return Err(Error::invalid_response(
                        &url,
                        "the login succeeded but the server sent no session id",
                    ));
                };
                self.set_session_id(Some(Sensitive::new(id)));
                tracing::info!(role = account.role.as_deref().unwrap_or(""), "logged in");
                Ok(LoginInfo { account })
            }
            Some(_) => {
                let problem: Problem = parsed
                    .as_ref()
                    .and_then(|v| v.get("data"))
                    .cloned()
                    .and_then(|d| serde_json::from_value(d).ok())
                    .unwrap_or_default();
                Err(login_failure(&problem, otp.is_some()).into())
            }
            None if status == StatusCode::UNAUTHORIZED => Err(ErrorKind::AuthFailed {
                detail: Problem::parse(&body)
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "wrong email or password".into()),
            }
            .into()),
            None => Err(if status.is_success() {
                wrong_url(&url, status, header_str(&headers, "content-type"), &body)
            } else {
                wire.classify(status, &headers, &body, &url, Ctx::default(), false)
            }),
        }
    }

    /// Asks the webserver whether the web session is logged in (session mode).
    ///
    /// When authenticated, the id in the answer's `session_id` becomes the current login id;
    /// when not, the stale local id is forgotten ([`Client::session_id`] is then `None`).
    #[tracing::instrument(skip(self), err)]
    pub async fn login_check(&self) -> Result<LoginCheck> {
        self.require_session_mode("login-check")?;
        let (resp, url) = self.server_call("login-check", Body::Empty).await?;
        let v: Value = self.inner.wire.read_json(resp, &url).await?;
        let authenticated = v
            .get("authenticated")
            .and_then(Value::as_bool)
            .ok_or_else(|| Error::invalid_response(&url, "no `authenticated` in login-check"))?;
        if authenticated {
            if let Some(id) = v.get("session_id").and_then(Value::as_str) {
                self.set_session_id(Some(Sensitive::new(id.to_owned())));
            }
        } else {
            // The saved id is dead (expired, logged out elsewhere): forget it.
            self.set_session_id(None);
        }
        let account = if authenticated {
            v.get("data")
                .cloned()
                .and_then(|d| serde_json::from_value(d).ok())
        } else {
            None
        };
        Ok(LoginCheck {
            authenticated,
            account,
        })
    }

    /// Logs out (session mode). The local session id is forgotten even if the call fails.
    #[tracing::instrument(skip(self), err)]
    pub async fn logout(&self) -> Result<()> {
        self.require_session_mode("logout")?;
        let r = self.server_call("logout", Body::Empty).await;
        self.set_session_id(None);
        r.map(|_| ())
    }

    /// Extends the web session (newer webservers). Returns the new expiry as sent (`None` when
    /// the answer carries no `expires`).
    ///
    /// A webserver without the route (23.09 and older answer 404 or 405) gives
    /// [`ErrorKind::NotSupported`]: the login still works until it expires, it just cannot be
    /// extended. It is an error rather than `Ok(None)` so a caller cannot mistake it for a
    /// successful extension.
    #[tracing::instrument(skip(self), err)]
    pub async fn extend_login_session(&self) -> Result<Option<String>> {
        self.require_session_mode("extend-login-session")?;
        let (resp, url, sent) = self
            .server_send("extend-login-session", Body::Empty)
            .await?;
        if matches!(
            resp.status(),
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
        ) {
            return Err(ErrorKind::NotSupported {
                feature: "extending the login session".into(),
                detail: format!("{} answered {}", redact(&url), resp.status().as_u16()),
            }
            .into());
        }
        let wire = &self.inner.wire;
        let resp = wire
            .check(resp, &url, Ctx::default(), sent.as_ref())
            .await?;
        let v: Value = wire.read_json(resp, &url).await?;
        Ok(v.get("expires").and_then(Value::as_str).map(str::to_owned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(v: Value) -> Problem {
        Problem::from_value(&v)
    }

    #[test]
    fn totp_by_type_whatever_the_wording() {
        let p = problem(
            json!({"type": "https://api.backend.ai/probs/require-totp-registration",
                               "title": "2FA einrichten"}),
        );
        assert!(matches!(
            login_failure(&p, false),
            ErrorKind::TotpRequired { registration: true }
        ));
        let p = problem(
            json!({"type": "https://api.backend.ai/probs/require-totp-authentication",
                               "title": "Code nötig"}),
        );
        assert!(matches!(
            login_failure(&p, true),
            ErrorKind::TotpRequired {
                registration: false
            }
        ));
    }

    #[test]
    fn otp_not_provided_as_the_official_cli_reads_it() {
        let p = problem(json!({"type": "https://api.backend.ai/probs/auth-failed",
                               "title": "Unauthorized", "details": "OTP not provided"}));
        assert!(matches!(
            login_failure(&p, false),
            ErrorKind::TotpRequired { .. }
        ));
        // With a code given, the same answer is a refused code.
        assert!(matches!(
            login_failure(&p, true),
            ErrorKind::AuthFailed { .. }
        ));
    }

    #[test]
    fn a_typed_auth_failure_is_not_reread_as_totp() {
        // The type says "auth failed"; a title that mentions the TOTP type does not change it.
        let p = problem(json!({"type": "https://api.backend.ai/probs/auth-failed",
                               "title": "see require-totp-authentication docs"}));
        assert!(matches!(
            login_failure(&p, false),
            ErrorKind::AuthFailed { .. }
        ));
        // Untyped: the text is all there is.
        let p = problem(json!({"title": "require-totp-authentication"}));
        assert!(matches!(
            login_failure(&p, false),
            ErrorKind::TotpRequired { .. }
        ));
        assert!(matches!(
            login_failure(&Problem::default(), false),
            ErrorKind::AuthFailed { detail } if detail == "wrong email or password"
        ));
    }
}
