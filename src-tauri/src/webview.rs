//! WebKitGTK settings that keep the app light: the UI is a few forms and lists, so it needs no
//! GPU compositing, WebGL, media, or back/forward page cache, and WebKit's caches can be those
//! of a document viewer. Measured under Xvfb with the installed release app (docs/benchmarks.md,
//! "Installed app"): compositing alone was about 115 MiB of the web process.
//!
//! `BAI_WEBVIEW_ACCELERATION=1` keeps WebKit's own defaults (for a display where software
//! rendering misbehaves).

use tauri::{Manager as _, Runtime};

/// Whether the user asked for WebKit's defaults instead.
fn keep_defaults(var: Option<String>) -> bool {
    matches!(
        var.as_deref().map(str::trim),
        Some("1" | "true" | "yes" | "on")
    )
}

/// Applies the settings to the main window's web view (Linux; elsewhere nothing to do).
pub fn tune<R: Runtime>(app: &tauri::App<R>) {
    if keep_defaults(std::env::var("BAI_WEBVIEW_ACCELERATION").ok()) {
        tracing::info!("BAI_WEBVIEW_ACCELERATION is set: WebKit's default rendering settings");
        return;
    }
    let Some(window) = app.get_webview_window("main") else {
        return;
    };
    let r = window.with_webview(|wv| {
        #[cfg(target_os = "linux")]
        {
            use webkit2gtk::{
                CacheModel, HardwareAccelerationPolicy, SettingsExt as _, WebContextExt as _,
                WebViewExt as _,
            };
            let view = wv.inner();
            if let Some(s) = view.settings() {
                s.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
                s.set_enable_webgl(false);
                s.set_enable_webaudio(false);
                s.set_enable_media(false);
                s.set_enable_page_cache(false);
                s.set_enable_back_forward_navigation_gestures(false);
            }
            if let Some(ctx) = view.context() {
                ctx.set_cache_model(CacheModel::DocumentViewer);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = wv;
    });
    if let Err(e) = r {
        tracing::warn!(error = %e, "could not tune the web view's settings");
    }
}

#[cfg(test)]
mod tests {
    use super::keep_defaults;

    #[test]
    fn only_an_explicit_yes_keeps_the_defaults() {
        for v in ["1", "true", "yes", "on", " 1 "] {
            assert!(keep_defaults(Some(v.to_owned())), "{v}");
        }
        for v in ["", "0", "false", "no", "off", "2"] {
            assert!(!keep_defaults(Some(v.to_owned())), "{v}");
        }
        assert!(!keep_defaults(None));
    }
}
