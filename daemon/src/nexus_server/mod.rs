//! The `nexus-server` role (placeholder; being written).

use tokio_util::sync::CancellationToken;

/// Command-line options of `clawlinkd nexus-server`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: std::net::SocketAddr,
    /// Data directory (sessions and messages).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
}

/// Runs the Nexus server until `shutdown`.
pub async fn run(args: Args, shutdown: CancellationToken) -> anyhow::Result<()> {
    let _ = (args, shutdown);
    anyhow::bail!("nexus-server is not available yet")
}
