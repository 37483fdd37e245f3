//! What the WebDriver suites share (tests/webdriver.rs, tests/installed.rs): starting the app
//! through tauri-driver, waiting for elements, screenshots, logging in to a sandbox.
// Each suite uses a part of this module.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::path::PathBuf;
use std::time::Instant;

pub use std::time::Duration;

pub use bai_sandbox::{Config as SandboxConfig, Sandbox};
use bai_testkit::{sandbox, within};
use fantoccini::elements::Element;
use fantoccini::ClientBuilder;
pub use fantoccini::{Client, Locator};
use serde_json::json;

/// Upper bound for one whole test, in seconds.
pub const TEST_SECS: u64 = 120;
/// How long to wait for something to show up on screen.
pub const UI_TIMEOUT: Duration = Duration::from_secs(30);

pub type Res<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub struct Env {
    pub webdriver: String,
    pub bin: String,
}

pub fn env() -> Option<Env> {
    let webdriver = std::env::var("BAI_WEBDRIVER")
        .ok()
        .filter(|s| !s.is_empty());
    let bin = std::env::var("BAI_DESKTOP_BIN")
        .ok()
        .filter(|s| !s.is_empty());
    match (webdriver, bin) {
        (Some(webdriver), Some(bin)) => Some(Env { webdriver, bin }),
        _ => {
            eprintln!(
                "skipped: BAI_WEBDRIVER and BAI_DESKTOP_BIN are not set; run scripts/test-desktop.sh \
                 (it starts Xvfb, D-Bus and tauri-driver and builds the app)"
            );
            None
        }
    }
}

pub fn screenshot_dir() -> PathBuf {
    std::env::var_os("BAI_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots"))
}

pub async fn with_timeout(name: &str, f: impl Future<Output = Res>) {
    if let Err(e) = within(TEST_SECS, f).await {
        panic!("{name}: {e}");
    }
}

/// Starts the app (a new WebDriver session launches a new process).
pub async fn launch(env: &Env) -> Res<Client> {
    let caps = json!({
        "browserName": "wry",
        "tauri:options": { "application": env.bin },
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!("BUG: a json! object literal")
    };
    // Two rustls providers are compiled in (fantoccini's aws-lc-rs, the workspace's ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = ClientBuilder::rustls()?;
    b.capabilities(caps);
    Ok(b.connect(&env.webdriver).await?)
}

pub async fn shot(c: &Client, name: &str) -> Res {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir)?;
    // Without GPU compositing (src/webview.rs) WebKitWebDriver's snapshot waits for the next
    // paint, which a static page never makes: damage one pixel so that it comes.
    c.execute(
        "const d = document.createElement('div');
         d.style.cssText = 'position:fixed;left:0;top:0;width:1px;height:1px;background:rgba(0,0,0,0.01);pointer-events:none';
         document.body.appendChild(d);
         setTimeout(() => d.remove(), 50);",
        vec![],
    )
    .await?;
    let png = c.screenshot().await?;
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png)?;
    eprintln!("screenshot: {}", path.display());
    Ok(())
}

/// Polls `f` until it yields `Some`, or fails after [`UI_TIMEOUT`] naming `what`.
pub async fn until<T, F, Fut>(c: &Client, what: &str, mut f: F) -> Res<T>
where
    F: FnMut(Client) -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + UI_TIMEOUT;
    loop {
        if let Some(v) = f(c.clone()).await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            let _ = shot(
                c,
                &format!(
                    "timeout-{}",
                    what.replace(|ch: char| !ch.is_ascii_alphanumeric(), "_")
                ),
            )
            .await;
            let body = match c.find(Locator::Css("body")).await {
                Ok(b) => b.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            return Err(format!("timed out waiting for {what}; the page shows:\n{body}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clicks the copy button `button` and waits until the X11 clipboard holds exactly the text
/// the code block `code` shows (the app serves the clipboard, so poll briefly).
pub async fn assert_copies(c: &Client, button: &str, code: &str) -> Res {
    // WebDriver's rendered text drops trailing whitespace (the VS Code block ends in a newline),
    // so the exact text is the element's textContent, which must render as that rendered text.
    let rendered = el(c, code).await?.text().await?;
    let shown = c
        .execute(
            "return document.querySelector(arguments[0]).textContent;",
            vec![json!(code)],
        )
        .await?
        .as_str()
        .ok_or_else(|| format!("{code} has no textContent"))?
        .to_owned();
    assert!(!rendered.is_empty(), "{code} shows no text");
    assert_eq!(
        shown.trim_end(),
        rendered,
        "{code}: textContent vs rendered text"
    );
    el(c, button).await?.click().await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = String::new();
    loop {
        let out = tokio::process::Command::new("xclip")
            .args(["-o", "-selection", "clipboard"])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        if let Ok(Ok(out)) = tokio::time::timeout(Duration::from_secs(2), out).await {
            last = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && last == shown {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "clipboard after clicking {button}: {last:?}, but {code} shows {shown:?}"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn el(c: &Client, css: &str) -> Res<Element> {
    let css_owned = css.to_owned();
    until(c, css, move |c| {
        let css = css_owned.clone();
        async move { c.find(Locator::Css(&css)).await.ok() }
    })
    .await
}

pub async fn type_into(c: &Client, css: &str, text: &str) -> Res {
    let e = el(c, css).await?;
    // Backspaces rather than WebDriver's clear(): they fire the `input` events that Svelte's
    // bindings listen to.
    let current = e.prop("value").await?.unwrap_or_default();
    if !current.is_empty() {
        e.send_keys(&"\u{E003}".repeat(current.chars().count()))
            .await?;
    }
    if !text.is_empty() {
        e.send_keys(text).await?;
    }
    Ok(())
}

/// Starts the app, runs `f`, and always ends the WebDriver session (which stops the app),
/// so a failed test does not block the next one.
pub async fn with_app<F, Fut>(env: &Env, f: F) -> Res
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = Res>,
{
    let c = launch(env).await?;
    let r = f(c.clone()).await;
    if r.is_err() {
        let _ = shot(&c, "failure").await;
    }
    let _ = c.close().await;
    r
}

/// Waits for the login screen; logs out first if a saved login was restored.
pub async fn to_login_screen(c: &Client) -> Res {
    let which = until(c, "the login or main screen", |c| async move {
        if c.find(Locator::Id("login-button")).await.is_ok() {
            Some("login")
        } else if c.find(Locator::Id("logout")).await.is_ok() {
            Some("main")
        } else {
            None
        }
    })
    .await?;
    if which == "main" {
        el(c, "#logout").await?.click().await?;
        el(c, "#login-button").await?;
    }
    Ok(())
}

pub async fn set_remember(c: &Client, on: bool) -> Res {
    let cb = el(c, "#remember").await?;
    if cb.is_selected().await? != on {
        cb.click().await?;
    }
    Ok(())
}

pub async fn session_login(c: &Client, sb: &Sandbox, password: &str, remember: bool) -> Res {
    el(c, "#mode-session").await?.click().await?;
    type_into(c, "#endpoint", &sb.webserver_url()).await?;
    type_into(c, "#email", &sb.user().email).await?;
    type_into(c, "#password", password).await?;
    set_remember(c, remember).await?;
    el(c, "#login-button").await?.click().await?;
    Ok(())
}

pub fn row(name: &str) -> String {
    format!("[data-testid=session-row][data-session=\"{name}\"]")
}

pub async fn start_sandbox() -> Res<Sandbox> {
    let (sb, _) =
        sandbox::with_sessions(SandboxConfig::default(), sandbox::desktop_sessions()).await;
    Ok(sb)
}

/// Checks the two rows: s1 RUNNING with SSH, prep PREPARING without (and a tooltip).
pub async fn check_session_rows(c: &Client) -> Res {
    let s1 = el(c, &row("s1")).await?;
    let status = s1
        .find(Locator::Css("[data-testid=session-status]"))
        .await?
        .text()
        .await?;
    assert!(status.contains("RUNNING"), "s1 status: {status:?}");
    let ssh = s1.find(Locator::Css("[data-testid=ssh-button]")).await?;
    assert!(ssh.is_enabled().await?, "s1's SSH button is enabled");
    let avail = s1
        .find(Locator::Css("[data-testid=ssh-availability]"))
        .await?
        .text()
        .await?;
    assert!(avail.contains("Available"), "s1 availability: {avail:?}");

    let prep = el(c, &row("prep")).await?;
    let status = prep
        .find(Locator::Css("[data-testid=session-status]"))
        .await?
        .text()
        .await?;
    assert!(status.contains("PREPARING"), "prep status: {status:?}");
    let ssh = prep.find(Locator::Css("[data-testid=ssh-button]")).await?;
    assert!(!ssh.is_enabled().await?, "prep's SSH button is disabled");
    let tip = ssh.attr("title").await?.unwrap_or_default();
    assert!(
        tip.to_lowercase().contains("preparing"),
        "prep's tooltip: {tip:?}"
    );
    Ok(())
}

pub async fn logout(c: &Client) -> Res {
    el(c, "#logout").await?.click().await?;
    el(c, "#login-button").await?;
    Ok(())
}

/// Opens the SSH dialog of `session` and returns the port it shows.
pub async fn open_ssh_dialog(c: &Client, session: &str) -> Res<u16> {
    el(c, &row(session))
        .await?
        .find(Locator::Css("[data-testid=ssh-button]"))
        .await?
        .click()
        .await?;
    el(c, "#ssh-dialog").await?;
    let port = until(c, "the SSH port", |c| async move {
        let t = c
            .find(Locator::Id("ssh-port"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        t.trim().parse::<u16>().ok()
    })
    .await?;
    Ok(port)
}

pub async fn close_dialog(c: &Client) -> Res {
    el(c, "#ssh-dialog").await?.send_keys("\u{E00C}").await?;
    until(c, "the SSH dialog to close", |c| async move {
        c.find(Locator::Id("ssh-dialog"))
            .await
            .is_err()
            .then_some(())
    })
    .await
}

pub fn tunnel_row(name: &str) -> String {
    format!("[data-testid=tunnel-row][data-session=\"{name}\"]")
}

/// Calls a command from the web view (the test-only path variants); `Ok` with its answer, or
/// the error as text.
pub async fn invoke(c: &Client, cmd: &str, args: serde_json::Value) -> Res<serde_json::Value> {
    let r = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             window.__TAURI_INTERNALS__
               .invoke(arguments[0], arguments[1])
               .then(r => done({ok: r}), e => done({err: String(JSON.stringify(e))}));",
            vec![json!(cmd), args],
        )
        .await?;
    match r.get("err") {
        Some(e) => Err(format!("{cmd} failed: {e}").into()),
        None => Ok(r.get("ok").cloned().unwrap_or_default()),
    }
}

pub async fn text_content(c: &Client, css: &str) -> Res<String> {
    el(c, css).await?;
    let v = c
        .execute(
            "return document.querySelector(arguments[0]).textContent;",
            vec![json!(css)],
        )
        .await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

/// Reads the SSH identification line a fresh connection to `port` gets.
pub async fn ssh_banner(port: u16) -> Res<String> {
    use tokio::io::AsyncReadExt as _;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut buf = vec![0u8; 256];
    let mut got = 0;
    while !buf[..got].contains(&b'\n') && got < buf.len() {
        let n = tokio::time::timeout(UI_TIMEOUT, s.read(&mut buf[got..])).await??;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(String::from_utf8_lossy(&buf[..got]).trim_end().to_owned())
}
