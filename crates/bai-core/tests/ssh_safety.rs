//! Server-provided names never become ssh_config syntax; every value bai writes into
//! `ssh_config` is checked or quoted; entries read back through the real `ssh -G` (which
//! prints the effective configuration without connecting); symlinked `~/.ssh/config`; odd
//! profile names.

use std::path::{Path, PathBuf};
use std::process::Command;

use bai_core::commands::{
    config_path_value, config_value, is_safe_name, is_valid_account, safe_alias, HostKeyPin,
};
use bai_core::ssh_config::{
    host_alias, keys_dir, plan_remove, plan_write, render_include_file, HostEntry, SshConfigPaths,
};
use bai_core::SshEndpoint;
use bai_testkit::ssh_g;

/// Names a hostile server could give its sessions.
const HOSTILE: &[&str] = &[
    "x *",
    "*",
    "a\nMatch exec \"touch /tmp/bai-pwned\"",
    "a\r\nHost *",
    "$(touch /tmp/bai-pwned)",
    "`id`",
    "q'\"",
    "\x1b[31mred\x1b[0m",
    "-oProxyCommand=touch /tmp/bai-pwned",
    "a,b",
    "a#b",
    "a=b",
    "",
    "a b",
    "é",
    "a\tb",
    "a\0b",
];

fn pin(id: &str, known_hosts: &Path) -> HostKeyPin {
    HostKeyPin::new(known_hosts.to_path_buf(), id).expect("pin")
}

fn entry(session: &str, dir: &Path) -> HostEntry {
    HostEntry {
        alias: host_alias("default", session).expect("safe"),
        session: session.into(),
        account: "work".into(),
        identity_file: Some(dir.join("keys/default").join(session).join("id_container")),
        proxy_command: vec![
            "/opt/my bai/bai".into(),
            "proxy".into(),
            "--stdio".into(),
            session.into(),
        ],
        pin: pin(
            "0d4c1b2a-5e6f-4a1b-9c2d-3e4f5a6b7c8d",
            &dir.join("known_hosts"),
        ),
    }
}

fn g_value(g: &str, key: &str) -> Vec<String> {
    g.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key} ")))
        .map(str::to_owned)
        .collect()
}

fn assert_plain_text(s: &str) {
    assert!(
        !s.chars().any(|c| c.is_control() && c != '\n'),
        "control characters in {s:?}"
    );
}

#[test]
fn hostile_session_names_get_no_host_alias() {
    for name in HOSTILE {
        assert_eq!(host_alias("default", name), None, "{name:?}");
        assert_eq!(host_alias("lab", name), None, "{name:?}");
        assert!(
            is_safe_name(&safe_alias(&format!("bai-{name}"))),
            "{name:?}"
        );
    }
    // Different hostile names never share a mapped alias.
    let mapped: std::collections::HashSet<String> = HOSTILE
        .iter()
        .map(|n| safe_alias(&format!("bai-{n}")))
        .collect();
    assert_eq!(mapped.len(), HOSTILE.len());
    for ok in ["s1", "ibnFmWim-session", "a.b_c-d", "X9"] {
        assert_eq!(host_alias("default", ok), Some(format!("bai-{ok}")));
        assert_eq!(safe_alias(ok), ok);
    }
    // Even a profile name cannot smuggle syntax in (it is the user's, so it is mapped).
    assert_eq!(
        host_alias("a *\nMatch all", "s1").as_deref(),
        Some("bai-a___Match_all-s1")
    );
}

#[test]
fn entries_with_hostile_values_are_refused_not_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    for bad in HOSTILE {
        let mut e = entry("s1", dir.path());
        e.alias = (*bad).to_owned();
        assert!(e.render().is_err(), "alias {bad:?}");
        let mut e = entry("s1", dir.path());
        e.session = (*bad).to_owned();
        assert!(e.render().is_err(), "session {bad:?}");
        let mut e = entry("s1", dir.path());
        e.account = (*bad).to_owned();
        assert!(e.render().is_err(), "account {bad:?}");
        assert!(
            HostKeyPin::new(dir.path().join("kh"), bad).is_err(),
            "id {bad:?}"
        );
    }
    for bad in ["/a\nMatch exec x", "/a\rb", "/a\x1bb", "/a${HOME}b"] {
        let mut e = entry("s1", dir.path());
        e.identity_file = Some(PathBuf::from(bad));
        assert!(e.render().is_err(), "identity {bad:?}");
        let mut e = entry("s1", dir.path());
        e.proxy_command.push((*bad).to_owned());
        if bad.contains(char::is_control) {
            assert!(e.render().is_err(), "proxy word {bad:?}");
        }
        assert!(
            HostKeyPin::new(PathBuf::from(bad), "id").is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn accounts_are_strict_user_names() {
    for ok in ["work", "_x", "a.b-c_d", "W0rk", &"a".repeat(32)] {
        assert!(is_valid_account(ok), "{ok:?}");
    }
    for bad in
        HOSTILE
            .iter()
            .copied()
            .chain(["-work", "0work", ".x", "root@x", "a/b", &"a".repeat(33)])
    {
        assert!(!is_valid_account(bad), "{bad:?}");
    }
}

/// bai's file changes nothing for other hosts, and its entries read back as written.
#[test]
fn entries_round_trip_through_ssh_g_and_leave_other_hosts_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("mkdir");
    // A few generated safe names (all of the alias alphabet), and awkward but legal paths.
    let names = [
        "s1",
        "A.b_c-9",
        "x.",
        "_",
        "0",
        "ibnFmWim-session",
        "a--b..c",
    ];
    let awkward = dir.path().join("my dir %d \"q\" #h 'x'");
    let mut entries = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let mut e = entry(n, if i % 2 == 0 { dir.path() } else { &awkward });
        e.proxy_command[0] = awkward.join("bai").display().to_string();
        entries.push(e);
    }
    let text = render_include_file("default", &entries).expect("render");
    assert_plain_text(&text);
    let cfg = dir.path().join("bai_config");
    std::fs::write(&cfg, &text).expect("write");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").expect("write");

    for other in ["github.com", "127.0.0.1", "bai-other", "s1"] {
        assert_eq!(
            ssh_g(other, &cfg, &home),
            ssh_g(other, &empty, &home),
            "bai's file changed the configuration of {other}"
        );
    }
    for e in &entries {
        let g = ssh_g(&e.alias, &cfg, &home);
        assert_eq!(g_value(&g, "hostname"), ["127.0.0.1"], "{g}");
        assert_eq!(g_value(&g, "user"), ["work"]);
        assert_eq!(g_value(&g, "hostkeyalias"), [e.pin.alias.as_str()]);
        assert_eq!(
            g_value(&g, "userknownhostsfile"),
            [e.pin.known_hosts.display().to_string()]
        );
        assert_eq!(g_value(&g, "stricthostkeychecking"), ["accept-new"]);
        // ssh -G shows IdentityFile before %-token expansion.
        let key = e.identity_file.as_ref().expect("key").display().to_string();
        assert!(
            g_value(&g, "identityfile").contains(&key.replace('%', "%%")),
            "{g}"
        );
        let proxy = g_value(&g, "proxycommand");
        assert_eq!(proxy.len(), 1, "{g}");
        // The ProxyCommand reaches the shell as exactly the words bai meant.
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\0' {}", proxy[0].replace("%%", "%")))
            .output()
            .expect("sh");
        let words: Vec<String> = out
            .stdout
            .split(|&b| b == 0)
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        assert_eq!(words, e.proxy_command);
    }
}

#[test]
fn config_values_read_back_through_ssh_g() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("mkdir");
    for p in [
        "/plain/path",
        "/with space/k",
        "/q\"uote",
        "/back\\slash",
        "/pct%d%%",
        "/hash#x",
        "/single'q",
        "/uni/é",
        "/trail\\",
        "/a=b,c",
    ] {
        let v = config_path_value(Path::new(p)).expect("value");
        assert_plain_text(&v);
        let cfg = dir.path().join("cfg");
        std::fs::write(
            &cfg,
            format!("Host h\n  UserKnownHostsFile {v}\n  IdentityFile {v}\n"),
        )
        .expect("write");
        let g = ssh_g("h", &cfg, &home);
        assert_eq!(g_value(&g, "userknownhostsfile"), [p], "{p:?} as {v}");
        assert!(
            g_value(&g, "identityfile").contains(&p.replace('%', "%%")),
            "{p:?} as {v}: {g}"
        );
    }
    for bad in ["a\nb", "a\rb", "\x1b", ""] {
        assert!(config_value(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn vscode_snippet_never_writes_hostile_syntax() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("mkdir");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").expect("write");
    let kh = dir.path().join("known_hosts");
    for name in HOSTILE {
        let alias = format!("bai-{name}");
        for pinned in [false, true] {
            let mut e = SshEndpoint::loopback(2222, "work", Some(dir.path().join("id c")));
            if pinned {
                e = e.with_pin(pin("sid-1", &kh));
            }
            let s = e.vscode_snippet(&alias);
            assert_plain_text(&s);
            let mapped = safe_alias(&alias);
            assert!(s.starts_with(&format!("Host {mapped}\n")), "{s}");
            let cfg = dir.path().join("vscode");
            std::fs::write(&cfg, &s).expect("write");
            assert_eq!(
                ssh_g("github.com", &cfg, &home),
                ssh_g("github.com", &empty, &home),
                "{name:?}: {s}"
            );
            let g = ssh_g(&mapped, &cfg, &home);
            assert_eq!(g_value(&g, "port"), ["2222"]);
            let strict = if pinned { "accept-new" } else { "false" };
            assert_eq!(g_value(&g, "stricthostkeychecking"), [strict], "{s}");
            if pinned {
                assert_eq!(g_value(&g, "hostkeyalias"), ["sid-1"]);
            }
        }
        // A hostile account gives a comment, never a block.
        let e = SshEndpoint::loopback(2222, name, None);
        let s = e.vscode_snippet("bai-s1");
        assert!(s.starts_with("# bai: "), "{s}");
        assert_eq!(s.lines().count(), 1, "{s:?}");
        assert!(e.try_vscode_snippet("bai-s1").is_err());
        assert!(e.validate().is_err());
    }
}

#[test]
fn command_lines_keep_the_simple_form_by_default_and_pin_on_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kh = dir.path().join("my known_hosts");
    let e = SshEndpoint::loopback(9922, "work", Some("/k/id".into()));
    assert!(e
        .ssh_command_line()
        .starts_with("ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"));
    let p = e.clone().with_pin(pin("8c338aa0-1", &kh));
    let a = p.ssh_args(&[]);
    let has = |kv: &str| a.windows(2).any(|w| w[0] == "-o" && w[1] == kv);
    assert!(has("StrictHostKeyChecking=accept-new"), "{a:?}");
    assert!(
        has(&format!("UserKnownHostsFile=\"{}\"", kh.display())),
        "{a:?}"
    );
    assert!(has("HostKeyAlias=8c338aa0-1"), "{a:?}");
    assert!(has("NoHostAuthenticationForLocalhost=no"), "{a:?}");
    assert!(!a.iter().any(|w| w.contains("StrictHostKeyChecking=no")));
    assert!(p.ssh_command_line().contains("HostKeyAlias=8c338aa0-1"));
    let snippet = p.vscode_snippet("bai-s1");
    assert!(snippet.contains("  HostKeyAlias 8c338aa0-1\n"), "{snippet}");
    assert!(snippet.contains("  StrictHostKeyChecking accept-new\n"));
    // A pin that cannot be written fails closed.
    let mut bad = e.with_pin(pin("x", &kh));
    if let Some(pin) = bad.pin.as_mut() {
        pin.alias = "x *".into();
    }
    let a = bad.ssh_args(&[]);
    assert!(a.iter().any(|w| w == "StrictHostKeyChecking=yes"), "{a:?}");
    assert!(!a.iter().any(|w| w.contains("x *")), "{a:?}");
    assert!(bad.validate().is_err());
    assert_eq!(
        pin("8c338aa0-1", &kh).reset_command(),
        format!("ssh-keygen -R 8c338aa0-1 -f '{}'", kh.display())
    );
}

#[cfg(unix)]
#[test]
fn a_symlinked_ssh_config_stays_a_symlink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let dotfiles = dir.path().join("dotfiles");
    std::fs::create_dir_all(home.join(".ssh")).expect("mkdir");
    std::fs::create_dir_all(&dotfiles).expect("mkdir");
    let target = dotfiles.join("ssh_config");
    let original = "Host github.com\n  User git\n";
    std::fs::write(&target, original).expect("write");
    let paths = SshConfigPaths::for_home(&home, "default");
    // A relative link, as dotfile managers make them.
    std::os::unix::fs::symlink("../../dotfiles/ssh_config", &paths.main).expect("symlink");

    plan_write(&paths, "default", &[entry("s1", dir.path())])
        .expect("plan")
        .apply()
        .expect("apply");
    let meta = std::fs::symlink_metadata(&paths.main).expect("meta");
    assert!(meta.file_type().is_symlink(), "the link was replaced");
    let after = std::fs::read_to_string(&target).expect("target");
    assert!(
        after.contains("Include ") && after.ends_with(original),
        "{after}"
    );

    plan_remove(&paths).expect("plan").apply().expect("remove");
    assert!(std::fs::symlink_metadata(&paths.main)
        .expect("meta")
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&target).expect("target"), original);

    // A dangling link: the target gets created, the link stays.
    std::fs::remove_file(&target).expect("rm");
    plan_write(&paths, "default", &[entry("s1", dir.path())])
        .expect("plan")
        .apply()
        .expect("apply");
    assert!(std::fs::symlink_metadata(&paths.main)
        .expect("meta")
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(&target)
        .expect("target")
        .contains("Include "));
}

#[test]
fn odd_profile_names_stay_inside_the_keys_folder_and_ssh_bai() {
    let cfg = Path::new("/cfg");
    let home = Path::new("/h");
    for profile in ["../../x", "/etc", "..", ".", "", "a/../../b", "../", "a\nb"] {
        let k = keys_dir(cfg, profile);
        assert_eq!(
            k.parent(),
            Some(Path::new("/cfg/keys")),
            "{profile:?}: {k:?}"
        );
        let name = k.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(
            is_safe_name(name) && name != ".." && name != ".",
            "{profile:?}"
        );
        let p = SshConfigPaths::for_home(home, profile);
        assert_eq!(
            p.include.parent(),
            Some(Path::new("/h/.ssh/bai")),
            "{profile:?}"
        );
        assert_eq!(p.main, Path::new("/h/.ssh/config"));
    }
}
