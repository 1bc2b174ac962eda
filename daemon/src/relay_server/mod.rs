//! The `relay-server` role (placeholder; being written).

use tokio_util::sync::CancellationToken;

/// Command-line options of `clawlinkd relay-server`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3900")]
    pub listen: std::net::SocketAddr,
    /// Data directory (registrations and queued messages).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
}

/// Runs the relay server until `shutdown`.
pub async fn run(args: Args, shutdown: CancellationToken) -> anyhow::Result<()> {
    let _ = (args, shutdown);
    anyhow::bail!("relay-server is not available yet")
}
