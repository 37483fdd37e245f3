//! The demo sandbox that `make run` starts: `BAI_DEMO_SANDBOX_JSON` names a file holding the
//! first stdout line of `bai-sandbox --json` (endpoints, demo user, keys, sessions). When it
//! is set and no saved login exists, the app logs in to the demo user by itself.

use std::path::Path;

use bai_core::bai_api::Sensitive;
use serde::Deserialize;

/// The environment variable naming the sandbox's JSON file.
pub const DEMO_ENV: &str = "BAI_DEMO_SANDBOX_JSON";

/// The demo server and its user. The password never leaves the Rust side.
#[derive(Debug, Clone)]
pub struct DemoSandbox {
    /// The webserver URL (session mode).
    pub webserver: String,
    /// The demo user's email.
    pub email: String,
    /// The demo user's password.
    pub password: Sensitive<String>,
}

#[derive(Deserialize)]
struct Line {
    webserver: String,
    email: String,
    password: String,
}

impl DemoSandbox {
    /// Parses the sandbox's `--json` line.
    pub fn parse(text: &str) -> Result<DemoSandbox, String> {
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let l: Line = serde_json::from_str(first)
            .map_err(|e| format!("not the JSON line of `bai-sandbox --json`: {e}"))?;
        Ok(DemoSandbox {
            webserver: l.webserver,
            email: l.email,
            password: Sensitive::new(l.password),
        })
    }

    /// Reads and parses the file.
    pub fn load(path: &Path) -> Result<DemoSandbox, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The sandbox named by [`DEMO_ENV`], if set.
    pub fn from_env() -> Result<Option<DemoSandbox>, String> {
        match std::env::var_os(DEMO_ENV).filter(|v| !v.is_empty()) {
            Some(p) => Self::load(Path::new(&p)).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_sandbox_line_and_hides_the_password() {
        let d = DemoSandbox::parse(
            r#"{"webserver":"http://127.0.0.1:8090","manager":"http://127.0.0.1:8091","email":"demo@example.com","password":"pw-123","access_key":"AK","secret_key":"SK","sessions":[]}"#,
        )
        .expect("parses");
        assert_eq!(d.webserver, "http://127.0.0.1:8090");
        assert_eq!(d.email, "demo@example.com");
        assert_eq!(d.password.expose(), "pw-123");
        assert!(
            !format!("{d:?}").contains("pw-123"),
            "Debug must not show the password"
        );
        assert!(DemoSandbox::parse("hello").is_err());
    }
}
