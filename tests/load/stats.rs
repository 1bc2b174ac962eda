//! Latency summaries and per-process resource readings from /proc.

use std::time::Duration;

/// p50/p99/max of a set of latencies.
pub struct Summary {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

pub fn summarize(mut v: Vec<Duration>) -> Summary {
    v.sort();
    let at = |q: f64| {
        v.get(((v.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    Summary {
        count: v.len(),
        p50: at(0.50),
        p99: at(0.99),
        max: v.last().copied().unwrap_or_default(),
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// CPU seconds (user+system) and peak/current RSS of a process.
pub struct ProcUsage {
    pub cpu_secs: f64,
    pub peak_rss_kib: u64,
    pub rss_kib: u64,
}

pub fn proc_usage(pid: u32) -> ProcUsage {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    let cpu_secs = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|x| x.parse().ok())
            .unwrap_or(0)
    };
    ProcUsage {
        cpu_secs,
        peak_rss_kib: kib("VmHWM:"),
        rss_kib: kib("VmRSS:"),
    }
}

/// Process group `pgid` as a whole: CPU summed over its live members, RSS summed, peak RSS of
/// its largest member (VmHWM is per process). Members that already exited are not counted.
pub fn group_usage(pgid: u32) -> ProcUsage {
    let mut total = ProcUsage {
        cpu_secs: 0.0,
        peak_rss_kib: 0,
        rss_kib: 0,
    };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return total;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // After the command name: state, ppid, pgrp.
        let pgrp = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(2))
            .and_then(|x| x.parse::<u32>().ok());
        if pgrp == Some(pgid) {
            let u = proc_usage(pid);
            total.cpu_secs += u.cpu_secs;
            total.rss_kib += u.rss_kib;
            total.peak_rss_kib = total.peak_rss_kib.max(u.peak_rss_kib);
        }
    }
    total
}

/// Prints a two-column table.
pub fn table(title: &str, rows: &[(&str, String)]) {
    println!("\n{title}");
    println!("| figure | value |\n|---|---|");
    for (k, v) in rows {
        println!("| {k} | {v} |");
    }
}

/// Open file descriptors of a process (entries of /proc/PID/fd; 0 if unreadable).
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}
