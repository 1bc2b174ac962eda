//! Inbound policy figures: ingest with policy and audit on vs off, and the time from an
//! inbound message to the model request for `deliver` with a warm gateway.

use crate::stats::{ms, proc_usage, summarize, table};
use crate::webhook::{post_all, Args};
use clawlink_tests::gateway::{hooks_config, Gateway};
use clawlink_tests::model::StubModel;
use clawlink_tests::{free_addr, wait_for, Daemon};
use std::time::{Duration, Instant};

/// Ingest throughput twice in one run: a daemon without a local agent (no policy work), and
/// one whose policy decides and audits every message (webhook level `review`: decided, held,
/// audited and fsynced, with no gateway call, so only the policy's own cost is added).
pub fn ingest(a: Args) {
    let off = Daemon::start();
    let pid = off.proc.as_ref().map(|p| p.pid()).unwrap_or(0);
    let b0 = proc_usage(pid);
    let (lat_off, t_off) = post_all(&off, &a);
    let cpu_off = proc_usage(pid).cpu_secs - b0.cpu_secs;

    let mut on = Daemon::new();
    on.write_config(&format!(
        "[local_gateway]\nurl = \"ws://{}\"\ntoken = \"unused\"\n\n[policy]\nwebhook = \"review\"\n",
        free_addr()
    ));
    on.spawn();
    let pid = on.proc.as_ref().map(|p| p.pid()).unwrap_or(0);
    let b1 = proc_usage(pid);
    let started = Instant::now();
    let (lat_on, t_on) = post_all(&on, &a);
    wait_for("every message decided", Duration::from_secs(600), || {
        let held = on.ctl_json(&["review"]).as_array().map_or(0, Vec::len);
        (held >= a.messages).then_some(())
    });
    let decided = started.elapsed();
    let cpu_on = proc_usage(pid).cpu_secs - b1.cpu_secs;
    let verify = on.ctl(&["audit", "--verify"]);
    assert!(verify.status.success(), "audit chain broken");
    let (s_off, s_on) = (summarize(lat_off), summarize(lat_on));
    let rate = |n: usize, t: Duration| format!("{:.0}", n as f64 / t.as_secs_f64());
    table(
        &format!(
            "webhook ingest, {} × {} B, {} concurrent posters: policy+audit off | on",
            a.messages, a.size, a.concurrency
        ),
        &[
            ("acknowledged msg/s, off", rate(a.messages, t_off)),
            ("acknowledged msg/s, on", rate(a.messages, t_on)),
            ("all decided+audited msg/s, on", rate(a.messages, decided)),
            (
                "latency p50 / p99, off",
                format!("{} / {}", ms(s_off.p50), ms(s_off.p99)),
            ),
            (
                "latency p50 / p99, on",
                format!("{} / {}", ms(s_on.p50), ms(s_on.p99)),
            ),
            (
                "clawlinkd CPU (s), off / on",
                format!("{cpu_off:.2} / {cpu_on:.2}"),
            ),
        ],
    );
}

/// Inbound POST → the model request at the stub, for `deliver`, one message at a time, after
/// one warm-up message (gateway, agent session and daemon connections all warm).
pub fn deliver_latency(n: usize) {
    let model = StubModel::start();
    let token = "clawlink-load-hook-token-2b7d";
    let mut extra = model.gateway_config();
    extra["hooks"] = hooks_config(token)["hooks"].clone();
    let gw = Gateway::start_configured(extra);
    let mut d = Daemon::new();
    d.write_config(&format!(
        "[local_gateway]\nurl = \"{}\"\ntoken = \"{}\"\n\n[policy]\nhooks_token = \"{token}\"\nwebhook = \"deliver\"\nrate_per_minute = 1000\n",
        gw.url, gw.token
    ));
    d.spawn();
    let mut lat = Vec::new();
    for i in 0..=n {
        let tag = format!("latency-probe-{i}-{}", std::process::id());
        let t = Instant::now();
        let r = d.post_message(&serde_json::json!({"from": "bench", "message": tag}));
        assert!(r.status().is_success());
        wait_for("the model request", Duration::from_secs(300), || {
            model
                .chats()
                .iter()
                .any(|c| {
                    c.texts()
                        .last()
                        .is_some_and(|_| c.user_text().contains(&tag))
                })
                .then_some(())
        });
        if i > 0 {
            lat.push(t.elapsed());
        }
    }
    let s = summarize(lat);
    table(
        &format!(
            "inbound webhook → model request, deliver, warm gateway ({n} messages, one at a time)"
        ),
        &[("p50", ms(s.p50)), ("p99", ms(s.p99)), ("max", ms(s.max))],
    );
}
