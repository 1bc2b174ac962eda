//! A small blocking client: connect, handshake, call, subscribe.
//!
//! Blocking on purpose: the CLI makes one or two calls and exits, and without an async
//! runtime it starts in about a millisecond.

use crate::frame::{read_frame, FrameError, HANDSHAKE_DEADLINE, MAX_FRAME, MAX_REPLY};
use crate::proto::{ApiError, Event, Hello, HelloOk, Request, Response, PROTOCOL_VERSION};
use interprocess::local_socket::traits::Stream as _;
use interprocess::local_socket::{prelude::*, GenericFilePath, Stream};
use serde::de::DeserializeOwned;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error("clawlinkd is not running (nothing answers on {path}).\nStart it with `clawlinkd` (or `systemctl --user start clawlinkd`), or point --socket / $CLAWLINK_SOCKET at a running daemon.")]
    DaemonDown {
        /// The socket tried.
        path: PathBuf,
    },
    /// The socket exists but we may not use it.
    #[error("permission denied on {path}: the daemon runs as another user")]
    PermissionDenied {
        /// The socket tried.
        path: PathBuf,
    },
    /// The daemon speaks another protocol version.
    #[error("version mismatch: {0}. Restart clawlinkd so that it matches this clawlink ({client})", client = env!("CARGO_PKG_VERSION"))]
    VersionMismatch(String),
    /// The daemon answered with an error.
    #[error("{0}")]
    Api(ApiError),
    /// The connection broke or sent garbage.
    #[error("control connection: {0}")]
    Protocol(String),
}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> Self {
        ClientError::Protocol(e.to_string())
    }
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Protocol(e.to_string())
    }
}

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The callback asked to stop.
    Stopped,
    /// The daemon announced its shutdown.
    Shutdown,
    /// The daemon closed the connection without a word (it crashed or was killed).
    Closed,
}

/// A connected, handshaken control connection.
pub struct Client {
    reader: BufReader<Stream>,
    daemon: String,
}

impl Client {
    /// Connects to the daemon at `path` and performs the version handshake.
    pub fn connect(path: &Path) -> Result<Self, ClientError> {
        let name = path.to_fs_name::<GenericFilePath>().map_err(|e| {
            ClientError::Protocol(format!("bad socket path {}: {e}", path.display()))
        })?;
        let stream = Stream::connect(name).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                ClientError::DaemonDown {
                    path: path.to_path_buf(),
                }
            }
            std::io::ErrorKind::PermissionDenied => ClientError::PermissionDenied {
                path: path.to_path_buf(),
            },
            _ => ClientError::Protocol(format!("connecting to {}: {e}", path.display())),
        })?;
        stream.set_recv_timeout(Some(HANDSHAKE_DEADLINE))?;
        let mut client = Client {
            reader: BufReader::new(stream),
            daemon: String::new(),
        };
        let closed = || {
            ClientError::Protocol(format!(
                "the daemon at {} closed the connection during the handshake: it only accepts its own user, or it is shutting down",
                path.display()
            ))
        };
        let hello = Hello {
            clawlink: PROTOCOL_VERSION,
            client: format!("clawlink {}", env!("CARGO_PKG_VERSION")),
        };
        client.write(&hello).map_err(|_| closed())?;
        let line = match read_frame(&mut client.reader, MAX_FRAME) {
            Ok(Some(line)) => line,
            Ok(None) => return Err(closed()),
            Err(FrameError::Io(e))
                if e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut =>
            {
                return Err(closed())
            }
            Err(e) => return Err(e.into()),
        };
        if let Ok(ok) = serde_json::from_str::<HelloOk>(&line) {
            if ok.clawlink != PROTOCOL_VERSION {
                return Err(ClientError::VersionMismatch(format!(
                    "daemon speaks protocol {}",
                    ok.clawlink
                )));
            }
            client.daemon = ok.daemon;
        } else {
            let resp: Response = serde_json::from_str(&line)
                .map_err(|e| ClientError::Protocol(format!("bad handshake reply: {e}")))?;
            let err = resp
                .error
                .unwrap_or_else(|| ApiError::new("protocol", "unexpected handshake reply"));
            if err.code == "version_mismatch" {
                return Err(ClientError::VersionMismatch(err.message));
            }
            return Err(ClientError::Api(err));
        }
        Ok(client)
    }

    /// The daemon's name and version from the handshake.
    pub fn daemon(&self) -> &str {
        &self.daemon
    }

    fn write<T: serde::Serialize>(&mut self, value: &T) -> Result<(), ClientError> {
        let mut line =
            serde_json::to_vec(value).map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push(b'\n');
        self.reader.get_mut().write_all(&line)?;
        Ok(())
    }

    /// Sends one request and waits up to `deadline` for its result (`None` waits forever).
    pub fn call_raw(
        &mut self,
        request: &Request,
        deadline: Option<Duration>,
    ) -> Result<serde_json::Value, ClientError> {
        self.reader.get_ref().set_recv_timeout(deadline)?;
        self.write(request)?;
        let line = read_frame(&mut self.reader, MAX_REPLY)?
            .ok_or_else(|| ClientError::Protocol("the daemon closed the connection".into()))?;
        let resp: Response = serde_json::from_str(&line)
            .map_err(|e| ClientError::Protocol(format!("bad reply: {e}")))?;
        if resp.ok {
            Ok(resp.result.unwrap_or(serde_json::Value::Null))
        } else {
            Err(ClientError::Api(resp.error.unwrap_or_else(|| {
                ApiError::new("unknown", "the daemon reported an error without details")
            })))
        }
    }

    /// Sends one request and decodes its result as `T`.
    pub fn call<T: DeserializeOwned>(
        &mut self,
        request: &Request,
        deadline: Option<Duration>,
    ) -> Result<T, ClientError> {
        let value = self.call_raw(request, deadline)?;
        serde_json::from_value(value)
            .map_err(|e| ClientError::Protocol(format!("unexpected result shape: {e}")))
    }

    /// Turns the connection into a subscription; `on_event` is called per event until it
    /// returns `false` or the daemon shuts down or closes; the answer says which.
    pub fn subscribe(
        mut self,
        request: &Request,
        mut on_event: impl FnMut(Event) -> bool,
    ) -> Result<Ended, ClientError> {
        self.call_raw(request, Some(HANDSHAKE_DEADLINE))?;
        self.reader.get_ref().set_recv_timeout(None)?;
        while let Some(line) = read_frame(&mut self.reader, MAX_FRAME)? {
            let event: Event = serde_json::from_str(&line)
                .map_err(|e| ClientError::Protocol(format!("bad event: {e}")))?;
            let shutdown = matches!(event, Event::Shutdown);
            if !on_event(event) {
                return Ok(Ended::Stopped);
            }
            if shutdown {
                return Ok(Ended::Shutdown);
            }
        }
        Ok(Ended::Closed)
    }
}
