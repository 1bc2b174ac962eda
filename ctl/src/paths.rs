//! Where the control socket, the data and the config live. Both binaries resolve paths here,
//! so `clawlink` always finds the socket a default-configured `clawlinkd` listens on.
//!
//! | what | order of precedence |
//! |---|---|
//! | socket | `--socket`, `$CLAWLINK_SOCKET`, `$XDG_RUNTIME_DIR/clawlink/clawlink.sock`, `/tmp/clawlink-<uid>/clawlink.sock` |
//! | data dir | `--data-dir`, `$CLAWLINK_DATA_DIR`, `$STATE_DIRECTORY` (systemd), `$XDG_STATE_HOME/clawlink`, `~/.local/state/clawlink` |
//! | config | `--config`, `$CLAWLINK_CONFIG`, `$XDG_CONFIG_HOME/clawlink/config.toml`, `~/.config/clawlink/config.toml` |
//!
//! Directories the daemon uses (socket dir, data dir) are judged the way ssh judges the paths
//! to its keys ([`ensure_private_dir`]): a missing one is created 0700; an existing one must be a
//! directory owned by us that nobody else can write to (mode 0755 is fine: the socket is 0600,
//! every peer's uid is checked, and the daemon's umask 077 keeps every file it creates private),
//! and every directory above it must be owned by root or us and not writable by others unless
//! it is sticky (like `/tmp`). A symlink is followed and its target judged: systemd's
//! `DynamicUser=yes` makes `$STATE_DIRECTORY` a root-owned symlink into `/var/lib/private/`.

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

/// Creates `dir` (and parents) with mode 0700 if missing, then judges it as ssh judges paths:
/// the directory, or the target of a symlink owned by root or us, must be owned by us and not
/// writable by group or others; every directory above it must be owned by root or us and not
/// writable by others unless sticky. A directory we just created is tightened to 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<(), PrivateDirError> {
    let io_err = |source| PrivateDirError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let unsafe_dir = |reason: String| PrivateDirError::Unsafe {
        path: dir.to_path_buf(),
        reason,
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
    let link = fs::symlink_metadata(dir).map_err(io_err)?;
    if link.file_type().is_symlink() && !trusted_owner(link.uid()) {
        return Err(unsafe_dir(format!(
            "is a symlink owned by uid {}; only a symlink owned by root or by us (uid {}) is followed",
            link.uid(),
            euid()
        )));
    }
    let real = fs::canonicalize(dir).map_err(io_err)?;
    let meta = fs::metadata(&real).map_err(io_err)?;
    let shown = if real.as_path() == dir {
        String::new()
    } else {
        format!(" (resolved to {})", real.display())
    };
    if !meta.is_dir() {
        return Err(unsafe_dir(format!("is not a directory{shown}")));
    }
    if meta.uid() != euid() {
        return Err(unsafe_dir(format!(
            "is owned by uid {}, not by us (uid {}){shown}; chown it or choose another directory",
            meta.uid(),
            euid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        if created {
            fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).map_err(io_err)?;
        } else {
            return Err(unsafe_dir(format!(
                "has mode {:o}{shown}; others can write to it (chmod go-w it)",
                meta.mode() & 0o777
            )));
        }
    }
    if let Some(parent) = real.parent() {
        check_ancestors(parent).map_err(unsafe_dir)?;
    }
    if link.file_type().is_symlink() {
        // Whoever can write where the link lives could point it elsewhere.
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            let parent = fs::canonicalize(parent).map_err(io_err)?;
            check_ancestors(&parent).map_err(unsafe_dir)?;
        }
    }
    Ok(())
}

/// `start` and every directory above it: owned by root or us, and not writable by others
/// unless sticky (where only a file's owner may rename or remove it).
fn check_ancestors(start: &Path) -> Result<(), String> {
    for dir in start.ancestors() {
        let m = fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if !trusted_owner(m.uid()) {
            return Err(format!(
                "{} above it is owned by uid {}, who could replace it",
                dir.display(),
                m.uid()
            ));
        }
        if m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0 {
            return Err(format!(
                "{} above it has mode {:o}: others could replace it (chmod go-w it)",
                dir.display(),
                m.mode() & 0o777
            ));
        }
    }
    Ok(())
}

/// Root or us: the owners a path component may have (ssh's rule).
fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == euid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dir_is_judged_like_ssh_judges_paths() -> Result<(), Box<dyn std::error::Error>> {
        let base = std::env::temp_dir().join(format!("clawlink-paths-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let d = base.join("a/b");
        ensure_private_dir(&d)?;
        assert_eq!(fs::metadata(&d)?.mode() & 0o777, 0o700);
        let mode = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m));
        let readable = base.join("readable");
        fs::create_dir(&readable)?;
        mode(&readable, 0o755)?;
        ensure_private_dir(&readable)?;
        let writable = base.join("writable");
        fs::create_dir(&writable)?;
        mode(&writable, 0o775)?;
        assert!(matches!(
            ensure_private_dir(&writable),
            Err(PrivateDirError::Unsafe { .. })
        ));
        // systemd's DynamicUser layout: a 0700 `private/` holding the real dir, and a link to it.
        let private = base.join("private");
        fs::create_dir(&private)?;
        mode(&private, 0o700)?;
        fs::create_dir(private.join("state"))?;
        let link = base.join("state");
        std::os::unix::fs::symlink("private/state", &link)?;
        ensure_private_dir(&link)?;
        let loose_link = base.join("loose");
        std::os::unix::fs::symlink(&writable, &loose_link)?;
        assert!(matches!(
            ensure_private_dir(&loose_link),
            Err(PrivateDirError::Unsafe { .. })
        ));
        let open_parent = writable.join("sub");
        fs::create_dir(&open_parent)?;
        mode(&open_parent, 0o700)?;
        assert!(matches!(
            ensure_private_dir(&open_parent),
            Err(PrivateDirError::Unsafe { .. })
        ));
        fs::remove_dir_all(&base)?;
        Ok(())
    }
}
