//! `clawlink-load`: drives the real binaries end to end and prints throughput, latency
//! percentiles, and each process's CPU time and peak RSS as a table.
//!
//! Build release binaries first, then run from the same profile:
//!
//! ```sh
//! cargo build --release --workspace
//! cargo run --release -p clawlink-tests --bin clawlink-load -- webhook --messages 20000 --concurrency 32
//! cargo run --release -p clawlink-tests --bin clawlink-load -- webhook-vs-seed --messages 20000 --concurrency 32
//! cargo run --release -p clawlink-tests --bin clawlink-load -- idle
//! cargo run --release -p clawlink-tests --bin clawlink-load -- status --runs 200
//! cargo run --release -p clawlink-tests --bin clawlink-load -- nexus
//! cargo run --release -p clawlink-tests --bin clawlink-load -- relay-cluster --rate 1000 --secs 10
//! cargo run --release -p clawlink-tests --bin clawlink-load -- relay-scale --ids 1000000 --ws 20000
//! cargo run --release -p clawlink-tests --bin clawlink-load -- soak --duration-secs 3600 --rate 20
//! cargo run --release -p clawlink-tests --bin clawlink-load -- a2a-ingest --messages 5000
//! cargo run --release -p clawlink-tests --bin clawlink-load -- a2a-ask --runs 20 --answer-ms 1000
//! cargo run --release -p clawlink-tests --bin clawlink-load -- policy-ingest --messages 20000
//! cargo run --release -p clawlink-tests --bin clawlink-load -- policy-deliver --messages 20
//! cargo run --release -p clawlink-tests --bin clawlink-load -- hostile --connections 2000
//! ```
//!
//! Message count, size and concurrency are fixed by flags; message contents are deterministic.
//! `soak` runs all four roles (two agent daemons, relay server, Nexus server) under steady
//! traffic for an hour by default and samples RSS, fds and CPU of each over time.

mod a2a;
mod compat;
mod friends;
mod gateway;
mod hostile;
mod nexus;
mod policy;
mod relay;
mod relay_cluster;
mod relay_scale;
mod seed_side;
mod soak;
mod stats;
mod webhook;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "clawlink-load",
    about = "Load and latency figures for clawlink"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Webhook → durable inbox: concurrent POSTs, each acknowledged only after fsync.
    Webhook(webhook::Args),
    /// The webhook beside a seed-style Node listener: one Node client for both, then the Rust
    /// client of `webhook` for both.
    WebhookVsSeed(webhook::Args),
    /// `clawlink send` into a real OpenClaw gateway: warm daemon connection vs cold connect.
    Gateway(gateway::Args),
    /// Idle daemon memory after start.
    Idle,
    /// Relay → B's durable inbox: throughput, latency at 1,000 msg/s, idle WS clients.
    Relay(relay::Args),
    /// Relay at a fixed rate: sled on one node vs JetStream R3 behind two relay nodes.
    RelayCluster(relay_cluster::Args),
    /// Daemon → relay → daemon, plaintext vs sealed between friends, and the invite round trip.
    Friends(friends::Args),
    /// JetStream relay at scale: a million ids through the store, idle WebSockets on 2 nodes.
    RelayScale(relay_scale::Args),
    /// Holds idle relay WebSockets for `relay-scale` (a child process of it).
    #[command(hide = true)]
    WsHold(relay_scale::HoldArgs),
    /// Wall time of `clawlink status`, process start to exit.
    Status {
        #[arg(long, default_value_t = 200)]
        runs: usize,
    },
    /// Nexus server → daemon inbox: throughput, latency with/without long-poll, idle CPU.
    Nexus(nexus::Args),
    /// Hour-long steady traffic on webhook, relay and Nexus; RSS, fds and CPU over time.
    Soak(soak::Args),
    /// A2A `SendMessage` → durable inbox and task: throughput and latency.
    A2aIngest(a2a::IngestArgs),
    /// What `clawlink ask` adds over an A2A peer's own answer time.
    A2aAsk(a2a::AskArgs),
    /// Webhook ingest with the inbound policy and audit log on vs off, in one run.
    PolicyIngest(webhook::Args),
    /// Inbound message → model request for `deliver`, real gateway on a stub model.
    PolicyDeliver {
        #[arg(long, default_value_t = 20)]
        messages: usize,
    },
    /// Slowloris on the webhook, brute force on the relay: latency of legitimate requests, RSS.
    Hostile(hostile::Args),
    /// Friends across builds: this daemon beside another release's, sealed messages each way.
    Compat(compat::Args),
}

fn main() {
    let cli = Cli::parse();
    // Measure daemons as users run them: info-level logs, not the tests' debug.
    std::env::set_var("CLAWLINK_TEST_LOG", "info");
    match cli.scenario {
        Scenario::Webhook(a) => webhook::run(a),
        Scenario::WebhookVsSeed(a) => seed_side::run(a),
        Scenario::Gateway(a) => gateway::run(a),
        Scenario::Idle => webhook::idle(),
        Scenario::Relay(a) => relay::run(a),
        Scenario::RelayCluster(a) => relay_cluster::run(a),
        Scenario::Friends(a) => friends::run(a),
        Scenario::RelayScale(a) => relay_scale::run(a),
        Scenario::WsHold(a) => relay_scale::hold(a),
        Scenario::Status { runs } => webhook::status(runs),
        Scenario::Nexus(a) => nexus::run(a),
        Scenario::Soak(a) => soak::run(a),
        Scenario::A2aIngest(a) => a2a::ingest(a),
        Scenario::A2aAsk(a) => a2a::ask(a),
        Scenario::PolicyIngest(a) => policy::ingest(a),
        Scenario::PolicyDeliver { messages } => policy::deliver_latency(messages),
        Scenario::Hostile(a) => hostile::run(a),
        Scenario::Compat(a) => compat::run(a),
    }
}
