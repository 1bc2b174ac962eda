//! The inbox's totals, kept on disk so that opening the inbox costs the same whatever it holds,
//! and the caps that bound what it may hold.
//!
//! ## Record
//!
//! ```text
//! inbox_meta   key: "counts"   value: JSON {"total":N,"unread":N,"bytes":N,"last_id":ID}
//! ```
//!
//! `bytes` is the sum of the stored (encoded) message records; `last_id` the highest message id
//! the record has seen. The record is written in the same sled transaction as every insert,
//! delete and read mark of [`super::inbox::Inbox`], so it is exactly as durable as the messages
//! it counts: a crash loses both or neither.
//!
//! ## Rebuild
//!
//! At open the record is trusted unless it is absent (a store written before it existed) or
//! stale: a message with an id above `last_id` means a clawlink without the record wrote to
//! this store. Then the messages are counted once, one at a time (each record is parsed for its
//! `read` flag only, nothing is kept), and the record is written. Either check is one key
//! lookup, so start-up memory and time do not grow with the inbox.
//!
//! ## Caps
//!
//! [`Caps`] bounds the number of messages and their total bytes (`[inbox] max_messages`,
//! `max_bytes`, or `--inbox-max-messages`, `--inbox-max-bytes`). A message that would go over
//! either is refused with [`super::StoreError::InboxFull`]; a redelivered duplicate is still
//! recognised (and acknowledged) when the inbox is full, since it takes no room.

use super::{decode, encode, Result};
use serde::{Deserialize, Serialize};

/// Key of the record in the `inbox_meta` tree.
pub(super) const KEY: &[u8] = b"counts";
/// Name of the tree, for errors.
pub(super) const TREE: &str = "inbox_meta";

/// Default message cap.
pub const DEFAULT_MAX_MESSAGES: u64 = 100_000;
/// Default byte cap: 256 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

/// The inbox's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Messages stored.
    pub total: u64,
    /// Messages not yet read.
    pub unread: u64,
    /// Bytes of the stored records.
    pub bytes: u64,
    /// Highest message id counted.
    pub last_id: u64,
}

impl Counts {
    /// After storing message `id` of `len` bytes (`read` if it is stored as read).
    pub fn added(self, id: u64, len: u64, read: bool) -> Counts {
        Counts {
            total: self.total + 1,
            unread: self.unread + u64::from(!read),
            bytes: self.bytes + len,
            last_id: self.last_id.max(id),
        }
    }

    /// After deleting a message of `len` bytes (`read` if it was read).
    pub fn removed(self, len: u64, read: bool) -> Counts {
        Counts {
            total: self.total.saturating_sub(1),
            unread: self.unread.saturating_sub(u64::from(!read)),
            bytes: self.bytes.saturating_sub(len),
            last_id: self.last_id,
        }
    }

    /// After marking an unread message read, its record going from `old` to `new` bytes.
    pub fn marked_read(self, old: u64, new: u64) -> Counts {
        Counts {
            unread: self.unread.saturating_sub(1),
            bytes: self.bytes.saturating_sub(old) + new,
            ..self
        }
    }
}

/// How much the inbox may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Most messages.
    pub max_messages: u64,
    /// Most bytes of stored records.
    pub max_bytes: u64,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            max_messages: DEFAULT_MAX_MESSAGES,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl Caps {
    /// The refusal for a new record of `len` bytes, if it does not fit.
    pub fn refusal(&self, c: &Counts, len: u64) -> Option<super::StoreError> {
        let fits = c.total < self.max_messages && c.bytes.saturating_add(len) <= self.max_bytes;
        (!fits).then_some(super::StoreError::InboxFull {
            total: c.total,
            bytes: c.bytes,
            max_messages: self.max_messages,
            max_bytes: self.max_bytes,
        })
    }

    /// Whether no more messages fit at all (the message cap is reached, or the bytes are).
    pub fn reached(&self, c: &Counts) -> bool {
        c.total >= self.max_messages || c.bytes >= self.max_bytes
    }
}

/// Only the field the rebuild needs; serde skips the rest without keeping it.
#[derive(Deserialize)]
struct ReadFlag {
    read: bool,
}

/// The record in `meta`, or the messages of `msgs` counted when it is absent or stale (then
/// the record is written).
pub(super) fn load_or_rebuild(meta: &sled::Tree, msgs: &sled::Tree) -> Result<Counts> {
    let newest = match msgs.last()? {
        Some((k, _)) => super::decode_u64(&k).unwrap_or(u64::MAX),
        None => 0,
    };
    if let Some(v) = meta.get(KEY)? {
        match decode::<Counts>(TREE, &v) {
            Ok(c) if newest <= c.last_id => return Ok(c),
            Ok(_) => tracing::warn!("inbox counts are older than the messages; counting again"),
            Err(e) => tracing::warn!(error = %e, "inbox counts unreadable; counting again"),
        }
    }
    let mut c = Counts::default();
    for item in msgs.iter() {
        let (k, v) = item?;
        let flag: ReadFlag = decode(super::inbox::TREE, &v)?;
        let id = super::decode_u64(&k).unwrap_or(0);
        c = c.added(id, v.len() as u64, flag.read);
    }
    meta.insert(KEY, encode(&c)?)?;
    tracing::info!(
        total = c.total,
        unread = c.unread,
        bytes = c.bytes,
        "inbox counted"
    );
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_fits_only_under_both_caps() {
        let caps = Caps {
            max_messages: 2,
            max_bytes: 100,
        };
        let c = Counts::default().added(1, 60, false);
        assert!(caps.refusal(&c, 40).is_none());
        assert!(caps.refusal(&c, 41).is_some());
        let c = c.added(2, 10, true);
        assert!(caps.refusal(&c, 1).is_some());
        assert!(caps.reached(&c));
        let c = c.removed(10, true);
        assert_eq!((c.total, c.unread, c.bytes, c.last_id), (1, 1, 60, 2));
        assert!(!caps.reached(&c));
        let c = c.marked_read(60, 61);
        assert_eq!((c.unread, c.bytes), (0, 61));
    }
}
