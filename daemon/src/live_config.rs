//! [`LiveConfig`]: the agent daemon's configuration, swapped as a whole on SIGHUP.
//!
//! Readers take a snapshot (`Arc<Config>`) and never hold the lock across an `.await`. It is
//! its own small handle so that workers (the local-agent delivery, transports) can follow a
//! reload without holding the daemon's whole shared state.

use crate::config::Config;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The current configuration and where it came from. Cheap to clone.
#[derive(Clone)]
pub struct LiveConfig {
    current: Arc<RwLock<Arc<Config>>>,
    path: Arc<PathBuf>,
}

impl LiveConfig {
    /// Starts with `config`, loaded from `path`.
    pub fn new(config: Config, path: &Path) -> LiveConfig {
        LiveConfig {
            current: Arc::new(RwLock::new(Arc::new(config))),
            path: Arc::new(path.to_path_buf()),
        }
    }

    /// A snapshot of the current configuration.
    pub fn get(&self) -> Arc<Config> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reloads from the file; a file that does not load leaves the configuration unchanged.
    /// Settings bound at start keep their running value and are logged as needing a restart
    /// ([`crate::config::reload`]).
    pub fn reload(&self) {
        match Config::load(&self.path, false) {
            Ok(new) => {
                let r = crate::config::reload::merge(&self.get(), new);
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(r.effective);
                if !r.restart_needed.is_empty() {
                    tracing::warn!(
                        "configuration changed but NOT applied until clawlinkd restarts: {}",
                        r.restart_needed.join(", ")
                    );
                }
                tracing::info!(config = %self.path.display(), applied = %r.applied.join(", "), "configuration reloaded");
            }
            Err(e) => tracing::error!("configuration NOT reloaded: {e:#}"),
        }
    }
}
