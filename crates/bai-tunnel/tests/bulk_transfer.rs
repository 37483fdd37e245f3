//! Large transfers through the tunnel with the real OpenSSH tools: `sftp` put+get, `scp` up+down
//! and `rsync` up+down of 256 MiB (override with `BAI_BULK_MIB`), checked by sha256.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bai_testkit::run_ok;
use bai_tunnel::{Options, TunnelHandle};
use common::*;
use tokio::process::Command;

fn size() -> u64 {
    let mib = std::env::var("BAI_BULK_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(256);
    mib * 1024 * 1024
}

struct Rig {
    env: Env,
    handle: TunnelHandle,
    dir: tempfile::TempDir,
    source: PathBuf,
    sha: String,
}

async fn rig(seed: u64) -> Rig {
    let env = Env::start().await;
    let (handle, _events) = env.tunnel("sshd", Options::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("source.bin");
    let source2 = source.clone();
    let sha = tokio::task::spawn_blocking(move || write_noise_file(&source2, size(), seed))
        .await
        .expect("generate data");
    Rig {
        env,
        handle,
        dir,
        source,
        sha,
    }
}

impl Rig {
    fn port(&self) -> u16 {
        self.handle.local_addr().port()
    }
    fn remote(&self, name: &str) -> PathBuf {
        self.env.session.home.join(name)
    }
    fn login(&self) -> String {
        self.target().login()
    }
    fn target(&self) -> SshTarget {
        self.env.target(self.port())
    }
    fn local(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    async fn check(&self, path: &Path) {
        let p = path.to_owned();
        let sha = tokio::task::spawn_blocking(move || sha256_file(&p))
            .await
            .expect("hash");
        assert_eq!(sha, self.sha, "{} differs from the source", path.display());
    }
    fn report(&self, what: &str, started: Instant) {
        let secs = started.elapsed().as_secs_f64();
        let mib = (2 * size()) as f64 / (1024.0 * 1024.0);
        eprintln!(
            "{what}: {mib:.0} MiB in {secs:.1} s ({:.0} MiB/s)",
            mib / secs
        );
        let stats = self.handle.stats().snapshot();
        assert_eq!(stats.failed, 0, "{:?}", stats.last_error);
        assert!(stats.bytes_up >= size() && stats.bytes_down >= size());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_put_and_get_keep_the_hash() {
    within(600, async {
        let rig = rig(1).await;
        let back = rig.local("back.bin");
        let batch = rig.local("batch");
        std::fs::write(
            &batch,
            format!(
                "put {} {}\nget {} {}\n",
                rig.source.display(),
                rig.remote("sftp.bin").display(),
                rig.remote("sftp.bin").display(),
                back.display()
            ),
        )
        .expect("batch file");
        let started = Instant::now();
        run_ok(rig.target().sftp(&batch)).await;
        rig.report("sftp put+get", started);
        rig.check(&rig.remote("sftp.bin")).await;
        rig.check(&back).await;
        rig.handle.stop_within(Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scp_up_and_down_keep_the_hash() {
    within(600, async {
        let rig = rig(2).await;
        let back = rig.local("back.bin");
        let remote = format!("{}:{}", rig.login(), rig.remote("scp.bin").display());
        let started = Instant::now();
        run_ok(rig.target().scp(false, &rig.source, &remote)).await;
        run_ok(rig.target().scp(false, &remote, &back)).await;
        rig.report("scp up+down", started);
        rig.check(&rig.remote("scp.bin")).await;
        rig.check(&back).await;
        rig.handle.stop_within(Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsync_up_and_down_keep_the_hash() {
    within(600, async {
        let rig = rig(3).await;
        let back = rig.local("back.bin");
        let remote = format!("{}:{}", rig.login(), rig.remote("rsync.bin").display());
        let shell = rig.target().rsync_shell();
        let started = Instant::now();
        let mut up = Command::new("rsync");
        up.arg("-a")
            .arg("-e")
            .arg(&shell)
            .arg(&rig.source)
            .arg(&remote);
        run_ok(up).await;
        let mut down = Command::new("rsync");
        down.arg("-a").arg("-e").arg(&shell).arg(&remote).arg(&back);
        run_ok(down).await;
        rig.report("rsync up+down", started);
        rig.check(&rig.remote("rsync.bin")).await;
        rig.check(&back).await;
        rig.handle.stop_within(Duration::from_secs(2)).await;
    })
    .await;
}
