//! Where the control socket, the data and the config live. Both binaries resolve paths here,
//! so `clawlink` always finds the socket a default-configured `clawlinkd` listens on.
//!
//! | what | order of precedence |
//! |---|---|
//! | socket | `--socket`, `$CLAWLINK_SOCKET`, `$XDG_RUNTIME_DIR/clawlink/clawlink.sock`, `/tmp/clawlink-<uid>/clawlink.sock` |
//! | data dir | `--data-dir`, `$CLAWLINK_DATA_DIR`, `$STATE_DIRECTORY` (systemd), `$XDG_STATE_HOME/clawlink`, `~/.local/state/clawlink` |
//! | config | `--config`, `$CLAWLINK_CONFIG`, `$XDG_CONFIG_HOME/clawlink/config.toml`, `~/.config/clawlink/config.toml` |
//!
//! Directories the daemon creates for itself are made 0700 and then checked: they must be
//! real directories (not symlinks), owned by the current user, and not readable by others.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Socket file name inside the runtime directory.
pub const SOCKET_NAME: &str = "clawlink.sock";

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn home() -> PathBuf {
    env_path("HOME").unwrap_or_else(|| PathBuf::from("/"))
}

/// The effective uid of this process.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The control socket path.
pub fn socket_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = env_path("CLAWLINK_SOCKET") {
        return p;
    }
    if let Some(dir) = env_path("XDG_RUNTIME_DIR") {
        return dir.join("clawlink").join(SOCKET_NAME);
    }
    std::env::temp_dir()
        .join(format!("clawlink-{}", euid()))
        .join(SOCKET_NAME)
}

/// The data directory.
pub fn data_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = env_path("CLAWLINK_DATA_DIR") {
        return p;
    }
    if let Some(list) = std::env::var_os("STATE_DIRECTORY").filter(|v| !v.is_empty()) {
        // systemd passes a colon-separated list when several are configured; ours is the first.
        if let Some(first) = list.to_string_lossy().split(':').next() {
            return PathBuf::from(first);
        }
    }
    if let Some(p) = env_path("XDG_STATE_HOME") {
        return p.join("clawlink");
    }
    home().join(".local/state/clawlink")
}

/// The config file path (which need not exist).
pub fn config_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = env_path("CLAWLINK_CONFIG") {
        return p;
    }
    if let Some(p) = env_path("XDG_CONFIG_HOME") {
        return p.join("clawlink/config.toml");
    }
    home().join(".config/clawlink/config.toml")
}

/// Errors making a private directory.
#[derive(Debug, thiserror::Error)]
pub enum PrivateDirError {
    /// Creating or inspecting it failed.
    #[error("{path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// It exists but is unsafe to use.
    #[error("{path}: {reason}; refusing to use it")]
    Unsafe {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Creates `dir` (and parents) with mode 0700 if missing, then checks that it is a directory,
/// not a symlink, owned by us, and has no group/other permissions (which it then tightens
/// only if we created it; an existing loose directory is an error).
pub fn ensure_private_dir(dir: &Path) -> Result<(), PrivateDirError> {
    let io_err = |source| PrivateDirError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let created = match fs::symlink_metadata(dir) {
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err)?;
            true
        }
        Err(e) => return Err(io_err(e)),
    };
    let meta = fs::symlink_metadata(dir).map_err(io_err)?;
    let unsafe_dir = |reason: &str| PrivateDirError::Unsafe {
        path: dir.to_path_buf(),
        reason: reason.to_string(),
    };
    if meta.file_type().is_symlink() {
        return Err(unsafe_dir("is a symlink"));
    }
    if !meta.is_dir() {
        return Err(unsafe_dir("is not a directory"));
    }
    if meta.uid() != euid() {
        return Err(unsafe_dir(&format!(
            "is owned by uid {}, not by us (uid {})",
            meta.uid(),
            euid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        if created {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err)?;
        } else {
            return Err(unsafe_dir(&format!(
                "has mode {:o}; it must not be accessible to group or others (chmod 700 it)",
                meta.mode() & 0o777
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dir_is_created_0700_and_loose_or_symlinked_ones_are_refused(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let base = std::env::temp_dir().join(format!("clawlink-paths-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let d = base.join("a/b");
        ensure_private_dir(&d)?;
        assert_eq!(fs::metadata(&d)?.mode() & 0o777, 0o700);
        let loose = base.join("loose");
        fs::create_dir(&loose)?;
        fs::set_permissions(&loose, fs::Permissions::from_mode(0o755))?;
        assert!(matches!(
            ensure_private_dir(&loose),
            Err(PrivateDirError::Unsafe { .. })
        ));
        let link = base.join("link");
        std::os::unix::fs::symlink(&d, &link)?;
        assert!(matches!(
            ensure_private_dir(&link),
            Err(PrivateDirError::Unsafe { .. })
        ));
        fs::remove_dir_all(&base)?;
        Ok(())
    }
}
