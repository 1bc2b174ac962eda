//! Line framing with a size cap, shared by the blocking client and (as constants) the daemon.
//!
//! A frame is one line of UTF-8 JSON ended by `\n`. A line longer than [`MAX_FRAME`] is an
//! error: the reader stops consuming at the cap instead of buffering whatever the peer sends.

use std::io::{self, BufRead};
use std::time::Duration;

/// Largest request (and event) frame, newline excluded.
pub const MAX_FRAME: usize = 1024 * 1024;
/// Largest reply frame, newline excluded. Replies may list a whole inbox or outbox, so they
/// get more room than requests; the daemon answers `too_large` (and says how to narrow the
/// request) rather than send more, and the client stops reading at this cap.
pub const MAX_REPLY: usize = 64 * 1024 * 1024;
/// Time a client has to send its hello after connecting.
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(5);
/// Time after which a connection with no request in flight is closed by the daemon.
pub const IDLE_DEADLINE: Duration = Duration::from_secs(300);

/// Errors reading one frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer sent a line longer than the cap.
    #[error("frame larger than {max} bytes")]
    TooLarge {
        /// The cap that was exceeded.
        max: usize,
    },
    /// The line is not UTF-8.
    #[error("frame is not valid UTF-8")]
    NotUtf8,
    /// The underlying read failed or timed out.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads one line (without its `\n`). `Ok(None)` means the peer closed cleanly between frames.
pub fn read_frame<R: BufRead>(reader: &mut R, max: usize) -> Result<Option<String>, FrameError> {
    let mut line = Vec::new();
    loop {
        let available = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if available.is_empty() {
            if line.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-frame",
            )
            .into());
        }
        if let Some(pos) = available.iter().position(|b| *b == b'\n') {
            if line.len() + pos > max {
                return Err(FrameError::TooLarge { max });
            }
            line.extend_from_slice(&available[..pos]);
            reader.consume(pos + 1);
            break;
        }
        let n = available.len();
        if line.len() + n > max {
            return Err(FrameError::TooLarge { max });
        }
        line.extend_from_slice(available);
        reader.consume(n);
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| FrameError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn reads_lines_and_stops_at_the_cap() {
        let mut r = Cursor::new(b"{\"a\":1}\n{\"b\":2}\n".to_vec());
        assert_eq!(
            read_frame(&mut r, 64).ok().flatten().as_deref(),
            Some("{\"a\":1}")
        );
        assert_eq!(
            read_frame(&mut r, 64).ok().flatten().as_deref(),
            Some("{\"b\":2}")
        );
        assert!(matches!(read_frame(&mut r, 64), Ok(None)));
        let mut big = Cursor::new(vec![b'x'; 100]);
        assert!(matches!(
            read_frame(&mut big, 10),
            Err(FrameError::TooLarge { .. })
        ));
        let mut bad = Cursor::new(vec![0xff, 0xfe, b'\n']);
        assert!(matches!(read_frame(&mut bad, 10), Err(FrameError::NotUtf8)));
    }
}
