//! Property tests: `~/.ssh/config` editing is exactly reversible, copied command lines give
//! the shell exactly the argv bai means, `ssh_config` values never span lines, and PPK export
//! never panics on any input.

use std::path::PathBuf;
use std::process::Command;

use bai_core::commands::{config_value, join_shell, HostKeyPin};
use bai_core::ssh_config::{add_include, has_include, remove_include, MainChange};
use bai_core::SshEndpoint;
use base64::Engine as _;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Config-file-like text: lines from a small vocabulary (Include lines, Host blocks, comments,
/// CRLF, blank lines, bai's own marker text) plus arbitrary characters, with or without a
/// final newline.
fn config_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("Host *".to_owned()),
        Just("  ServerAliveInterval 30".to_owned()),
        Just("Include ~/.ssh/other".to_owned()),
        Just("Include /h/.ssh/bai/config-other".to_owned()),
        Just("# Added by `bai config-ssh`; `bai config-ssh --remove` takes it out.".to_owned()),
        Just("Match all".to_owned()),
        Just(String::new()),
        "[ -~\t]{0,40}",
        any::<String>(),
    ];
    (
        proptest::collection::vec(
            (line, prop_oneof![Just("\n"), Just("\r\n"), Just("\r")]),
            0..8,
        ),
        "[ -~]{0,20}",
    )
        .prop_map(|(lines, tail)| {
            let mut s: String = lines.into_iter().map(|(l, nl)| l + nl).collect();
            s.push_str(&tail);
            s
        })
}

fn include_path() -> impl Strategy<Value = PathBuf> {
    prop_oneof![
        Just(PathBuf::from("/h/.ssh/bai/config")),
        Just(PathBuf::from("/home/a b/.ssh/bai/config-lab")),
        "/[a-zA-Z0-9 ._-]{1,20}/\\.ssh/bai/config".prop_map(PathBuf::from),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn remove_after_add_gives_the_file_back_byte_for_byte(
        original in config_text(),
        include in include_path(),
    ) {
        match add_include(Some(&original), &include) {
            Some(added) => {
                prop_assert!(has_include(&added, &include));
                prop_assert_eq!(add_include(Some(&added), &include), None);
                prop_assert_eq!(
                    remove_include(&added, &include),
                    MainChange::Write(original.clone())
                );
            }
            // Only when it is already included (by hand).
            None => prop_assert!(has_include(&original, &include)),
        }
    }

    #[test]
    fn a_created_file_is_removed_again(include in include_path()) {
        let created = add_include(None, &include).expect("created");
        prop_assert_eq!(remove_include(&created, &include), MainChange::Delete);
    }

    #[test]
    fn config_values_are_one_line_or_refused(s in any::<String>()) {
        if let Ok(v) = config_value(&s) {
            prop_assert!(!v.chars().any(char::is_control));
            prop_assert!(!v.is_empty());
        } else {
            prop_assert!(s.is_empty() || s.chars().any(char::is_control));
        }
    }

    #[test]
    fn ppk_export_never_panics_on_any_input(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        magic in any::<bool>(),
        label in prop_oneof![Just("OPENSSH PRIVATE KEY"), Just("RSA PRIVATE KEY")],
    ) {
        // Raw text, and the same bytes inside a PEM armour (deeper into the parsers).
        let _ = bai_core::ppk::to_ppk(&String::from_utf8_lossy(&bytes), "");
        let mut body = if magic { b"openssh-key-v1\0".to_vec() } else { Vec::new() };
        body.extend_from_slice(&bytes);
        let pem = format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            base64::engine::general_purpose::STANDARD.encode(&body)
        );
        let _ = bai_core::ppk::to_ppk(&pem, "c");
    }
}

/// Splits `line` with a real POSIX shell: the argv it would run.
fn sh_words(line: &str) -> Vec<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("printf '%s\\0' {line}"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("sh");
    assert!(out.status.success(), "sh failed on {line:?}");
    let mut v: Vec<String> = out
        .stdout
        .split(|&b| b == 0)
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    v.pop(); // after the last NUL
    v
}

/// Any string the shell can carry (no NUL).
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}",
        "[ -~]{0,16}",
        any::<String>().prop_map(|s| s.replace('\0', "")),
        Just("~".to_owned()),
        Just("=x".to_owned()),
        Just("$(touch /nonexistent/pwned)".to_owned()),
        Just("'\"\\`$".to_owned()),
    ]
}

fn endpoint() -> impl Strategy<Value = SshEndpoint> {
    (
        word(),
        word(),
        any::<u16>(),
        proptest::option::of(word()),
        proptest::option::of((word(), word())),
    )
        .prop_map(|(host, account, port, key, pin)| SshEndpoint {
            host,
            port,
            account,
            key: key.map(PathBuf::from),
            pin: pin.map(|(kh, alias)| HostKeyPin {
                known_hosts: PathBuf::from(kh),
                alias,
            }),
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Each case runs sh four times; keep the default count modest in debug builds.
        cases: ProptestConfig::default().cases.min(64),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn copied_command_lines_round_trip_through_sh(e in endpoint(), words in proptest::collection::vec(word(), 1..4)) {
        let mut ssh = vec!["ssh".to_owned()];
        ssh.extend(e.ssh_args(&[]));
        prop_assert_eq!(sh_words(&e.ssh_command_line()), ssh);
        let mut sftp = vec!["sftp".to_owned()];
        sftp.extend(e.sftp_args());
        prop_assert_eq!(sh_words(&e.sftp_command_line()), sftp);
        let mut scp = vec!["scp".to_owned()];
        scp.extend(e.scp_args(&[], &["LOCAL_FILE".into(), e.remote("~/")]));
        prop_assert_eq!(sh_words(&e.scp_command_line()), scp);
        let rsync_words = sh_words(&e.rsync_command_line());
        let mut rsync = vec!["rsync".to_owned(), "-av".to_owned()];
        rsync.extend(e.rsync_args(&["LOCAL_DIR/".into(), e.remote("~/LOCAL_DIR/")]));
        prop_assert_eq!(&rsync_words, &rsync);
        // The `-e` value is itself a command line.
        let mut inner = vec!["ssh".to_owned()];
        inner.extend(e.common_options());
        inner.extend(["-p".to_owned(), e.port.to_string()]);
        prop_assert_eq!(sh_words(&rsync_words[3]), inner);
        // And any words at all, the first one included.
        prop_assert_eq!(sh_words(&join_shell(&words)), words.clone());
    }
}
