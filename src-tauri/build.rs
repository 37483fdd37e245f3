//! Runs tauri-build with the config at the repository top (`../tauri.conf.json`, as the design
//! asks) and this crate's capabilities; only the app commands listed here may be invoked.
//!
//! When the UI is not built yet (`ui/dist/index.html` missing, e.g. `cargo clippy --workspace`
//! on a fresh clone), a placeholder page in `OUT_DIR` stands in for it through `TAURI_CONFIG`,
//! so the crate still compiles; nothing is written into `ui/`.

use std::path::{Path, PathBuf};

/// The app commands the capabilities may allow (`allow-<command>`); any other is refused.
const COMMANDS: &[&str] = &[
    "app_info",
    "recent_servers",
    "forget_recent_server",
    "about",
    "open_log_folder",
    "restore_login",
    "login",
    "logout",
    "list_sessions",
    "get_settings",
    "set_settings",
    "open_ssh",
    "tunnel_info",
    "save_key",
    "save_key_to",
    "list_tunnels",
    "stop_tunnel",
    "restore_tunnels",
    "open_app",
    "account_keypair",
    "generate_keypair",
    "upload_keypair",
    "upload_keypair_from",
    "use_own_key",
    "use_own_key_from",
    "terminal_open",
    "terminal_input",
    "terminal_resize",
    "terminal_close",
    "files_home",
    "files_list",
    "files_mkdir",
    "files_rename",
    "files_delete",
    "files_upload",
    "files_download",
    "transfer_cancel",
    "transfer_list",
    "transfer_clear",
    "tray_menu",
    "tray_action",
];

fn placeholder_ui(out_dir: &Path) -> PathBuf {
    let dir = out_dir.join("placeholder-ui");
    std::fs::create_dir_all(&dir).expect("BUG: OUT_DIR is writable");
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><meta charset=\"utf-8\"><title>bai</title>\
         <p id=\"placeholder\">The bai UI is not built: run <code>npm --prefix ui ci &amp;&amp; npm --prefix ui run build</code>, then rebuild.</p>\n",
    )
    .expect("BUG: OUT_DIR is writable");
    dir
}

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("BUG: cargo always sets CARGO_MANIFEST_DIR"),
    );
    let out_dir =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("BUG: cargo always sets OUT_DIR"));
    let root = manifest_dir.join("..");
    // tauri-build reads tauri.conf.json (and resolves frontendDist/icons) from the current dir.
    std::env::set_current_dir(&root)
        .expect("BUG: the crate's parent directory is the repository root");
    println!("cargo:rerun-if-changed=../tauri.conf.json");
    println!("cargo:rerun-if-changed=capabilities");
    println!("cargo:rerun-if-changed=../icons");
    // generate_context! embeds the assets when the crate compiles: rebuild when they change.
    println!("cargo:rerun-if-changed=../ui/dist");

    if !root.join("ui/dist/index.html").is_file() && std::env::var_os("TAURI_CONFIG").is_none() {
        let dist = placeholder_ui(&out_dir);
        let patch = serde_json::json!({ "build": { "frontendDist": dist } }).to_string();
        println!("cargo:warning=ui/dist is not built; the app embeds a placeholder page (npm --prefix ui run build)");
        // For tauri-build (this process) and for generate_context! (the crate's rustc).
        std::env::set_var("TAURI_CONFIG", &patch);
        println!("cargo:rustc-env=TAURI_CONFIG={patch}");
    }

    let attributes = tauri_build::Attributes::new()
        .capabilities_path_pattern("src-tauri/capabilities/**/*")
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attributes) {
        panic!("tauri-build failed: {e:#}");
    }
}
