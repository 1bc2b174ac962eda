//! The agent daemon role (being written).

use tokio_util::sync::CancellationToken;

/// Command-line options of the agent daemon.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file.
    #[arg(long, env = "CLAWLINK_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    /// Data directory.
    #[arg(long, env = "CLAWLINK_DATA_DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// Control socket path.
    #[arg(long, env = "CLAWLINK_SOCKET")]
    pub socket: Option<std::path::PathBuf>,
    /// Webhook listen address (overrides listen.addr), or "off".
    #[arg(long)]
    pub listen: Option<String>,
}

/// Runs the agent daemon until `shutdown`.
pub async fn run(args: Args, shutdown: CancellationToken, reload: tokio::sync::mpsc::UnboundedReceiver<()>) -> anyhow::Result<()> {
    let _ = (args, shutdown, reload);
    anyhow::bail!("not yet")
}
