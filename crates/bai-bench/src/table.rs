//! The side-by-side table `make bench` prints and writes.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(crate) fn render(args: &Args, results: &[(Route, Figures)]) -> String {
    let direct = results
        .iter()
        .find(|(r, _)| *r == Route::Direct)
        .map(|(_, f)| f.clone())
        .unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| workload | {} |",
        results
            .iter()
            .map(|(r, _)| r.label())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(out, "|---|{}", "---|".repeat(results.len()));
    type Get = fn(&Figures) -> Option<f64>;
    // (label, getter, unit, show the ratio to direct)
    let rows: Vec<(String, Get, &str, bool)> = vec![
        (
            "iperf3 single stream up".into(),
            |f| f.up_gbps,
            "Gbit/s",
            true,
        ),
        (
            "iperf3 single stream down".into(),
            |f| f.down_gbps,
            "Gbit/s",
            true,
        ),
        (
            format!("connect + 32 B echo, median of {}", args.setups),
            |f| f.setup_median_us,
            "µs",
            true,
        ),
        (
            format!("connect + 32 B echo, p99 of {}", args.setups),
            |f| f.setup_p99_us,
            "µs",
            true,
        ),
        (
            format!("held at once, each echoing (of {})", args.held),
            |f| f.held_ok.map(|n| n as f64),
            "",
            false,
        ),
        (
            "proxy CPU per GiB (iperf3 both ways)".into(),
            |f| f.cpu_s_per_gib,
            "CPU s",
            false,
        ),
        (
            "proxy RSS with 100 connections".into(),
            |f| f.rss_mib_100,
            "MiB",
            false,
        ),
        (
            format!("scp {} MiB up", args.scp_mib),
            |f| f.scp_up_mbs,
            "MB/s",
            true,
        ),
        (
            format!("scp {} MiB down", args.scp_mib),
            |f| f.scp_down_mbs,
            "MB/s",
            true,
        ),
    ];
    for (label, get, unit, ratio) in rows {
        let _ = write!(out, "| {label} |");
        for (route, f) in results {
            let cell = match (get(f), get(&direct)) {
                (None, _) => "n/a".to_owned(),
                (Some(v), Some(d)) if ratio && *route != Route::Direct && d > 0.0 => {
                    format!("{} {unit} (×{:.2})", fmt_num(v), v / d)
                }
                (Some(v), _) => format!("{} {unit}", fmt_num(v)),
            };
            let _ = write!(out, " {} |", cell.trim_end());
        }
        let _ = writeln!(out);
    }
    for (route, f) in results {
        for n in &f.notes {
            let _ = writeln!(out, "\n- {}: {n}", route.label());
        }
    }
    out
}

pub(crate) fn fmt_num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
