//! Timeouts: every async test body runs under [`within`]; commands under [`CMD_TIMEOUT`].

use std::future::Future;
use std::time::Duration;

use tokio::sync::broadcast;

/// The standard limit of a whole test, in seconds (use another where a test needs it).
pub const TEST_SECS: u64 = 60;

/// The standard limit of one child command (a CLI call, an OpenSSH client).
pub const CMD_TIMEOUT: Duration = Duration::from_secs(40);

/// Runs `fut` under a timeout of `secs` seconds; panics when it runs out.
pub async fn within<T>(secs: u64, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("test timed out after {secs} s"))
}

/// Items of `rx` up to and including the first for which `last` holds (e.g. the `Closed`
/// event of one connection). Panics when the channel closes or lags first.
pub async fn recv_until<T: Clone>(
    rx: &mut broadcast::Receiver<T>,
    mut last: impl FnMut(&T) -> bool,
) -> Vec<T> {
    let mut out = Vec::new();
    loop {
        let item = rx.recv().await.expect("event stream");
        let done = last(&item);
        out.push(item);
        if done {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    #[should_panic(expected = "test timed out after 1 s")]
    async fn within_panics_when_the_time_runs_out() {
        within(1, tokio::time::sleep(Duration::from_secs(5))).await;
    }

    #[tokio::test]
    async fn recv_until_stops_at_the_first_match() {
        let (tx, mut rx) = broadcast::channel(8);
        for i in [1, 2, 3, 4] {
            tx.send(i).expect("send");
        }
        assert_eq!(within(5, recv_until(&mut rx, |i| *i == 3)).await, [1, 2, 3]);
    }
}
