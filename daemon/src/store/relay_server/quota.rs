//! Storage caps of the relay's queues, enforced in one place that every storage backend
//! calls: [`Quota::reserve`] before a message is written, [`Quota::release`] after one is
//! deleted. It only counts, in memory; a backend rebuilds it at start from what it holds
//! ([`Quota::restore`]).
//!
//! Caps (0 disables a byte cap):
//!
//! - `total_bytes`: everything queued on the relay → **507** "the relay is full";
//! - `recipient_count`, `recipient_bytes`: one recipient's queue → **429** "queue is full";
//! - `sender_share` (percent): the part of one recipient's count *and* bytes caps that one
//!   sender may hold → **429**. A sender flooding a victim fills its own share and stops there:
//!   every other sender still finds room.
//!
//! A message costs [`cost`] bytes: its text, sender id and name plus a fixed overhead for the
//! key and encoding. Memory is one entry per recipient with queued messages and one per
//! (recipient, sender) pair; entries are removed when they reach zero.

use std::collections::HashMap;
use std::sync::Mutex;

/// Fixed per-message overhead counted on top of the text (key, timestamps, JSON framing).
const OVERHEAD: u64 = 64;

/// The caps.
#[derive(Debug, Clone, Copy)]
pub struct QueueCaps {
    /// Most messages queued for one recipient.
    pub recipient_count: usize,
    /// Most bytes queued for one recipient (0: no cap).
    pub recipient_bytes: u64,
    /// Most bytes queued on the whole relay (0: no cap).
    pub total_bytes: u64,
    /// Percentage (1-100) of a recipient's caps one sender may hold.
    pub sender_share: u8,
}

impl Default for QueueCaps {
    fn default() -> Self {
        QueueCaps {
            recipient_count: 10_000,
            recipient_bytes: 64 << 20,
            total_bytes: 1 << 30,
            sender_share: 50,
        }
    }
}

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The relay holds `total_bytes`.
    #[error("the relay is full (it holds its maximum of queued bytes); try again later")]
    RelayFull,
    /// The recipient's queue holds its count or byte cap.
    #[error("the recipient's queue is full; try again after it has read its messages")]
    RecipientFull,
    /// This sender holds its share of the recipient's queue.
    #[error("you hold your share ({0}%) of the recipient's queue; try again after it has read your messages")]
    SenderShare(u8),
}

/// Bytes a message is counted as.
pub fn cost(from: &str, from_name: &str, message: &str) -> u64 {
    (from.len() + from_name.len() + message.len()) as u64 + OVERHEAD
}

#[derive(Default)]
struct Usage {
    count: usize,
    bytes: u64,
}

#[derive(Default)]
struct Recipient {
    all: Usage,
    senders: HashMap<String, Usage>,
}

#[derive(Default)]
struct Books {
    total: u64,
    recipients: HashMap<String, Recipient>,
}

/// The accounting, shared by every request.
pub struct Quota {
    caps: QueueCaps,
    books: Mutex<Books>,
}

fn over(used: u64, add: u64, cap: u64) -> bool {
    cap != 0 && used.saturating_add(add) > cap
}

impl Quota {
    /// Empty books with these caps.
    pub fn new(caps: QueueCaps) -> Quota {
        Quota {
            caps,
            books: Mutex::new(Books::default()),
        }
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a message already stored (start-up), without checking caps.
    pub fn restore(&self, to: &str, from: &str, bytes: u64) {
        let mut b = self.books();
        b.total += bytes;
        let r = b.recipients.entry(to.to_string()).or_default();
        r.all.count += 1;
        r.all.bytes += bytes;
        let s = r.senders.entry(from.to_string()).or_default();
        s.count += 1;
        s.bytes += bytes;
    }

    /// Reserves room for a message of `bytes` from `from` to `to`, or says why not.
    pub fn reserve(&self, to: &str, from: &str, bytes: u64) -> Result<(), Refusal> {
        let caps = self.caps;
        let mut b = self.books();
        if over(b.total, bytes, caps.total_bytes) {
            return Err(Refusal::RelayFull);
        }
        let r = b.recipients.entry(to.to_string()).or_default();
        if r.all.count >= caps.recipient_count || over(r.all.bytes, bytes, caps.recipient_bytes) {
            if r.all.count == 0 {
                b.recipients.remove(to);
            }
            return Err(Refusal::RecipientFull);
        }
        let share = u64::from(caps.sender_share.clamp(1, 100));
        let count_share = (caps.recipient_count as u64 * share / 100).max(1);
        let bytes_share = caps.recipient_bytes * share / 100;
        let s = r.senders.entry(from.to_string()).or_default();
        if s.count as u64 >= count_share || (bytes_share != 0 && over(s.bytes, bytes, bytes_share))
        {
            if s.count == 0 {
                r.senders.remove(from);
            }
            return Err(Refusal::SenderShare(caps.sender_share));
        }
        s.count += 1;
        s.bytes += bytes;
        r.all.count += 1;
        r.all.bytes += bytes;
        b.total += bytes;
        Ok(())
    }

    /// Gives back what [`Quota::reserve`] or [`Quota::restore`] took for one message.
    pub fn release(&self, to: &str, from: &str, bytes: u64) {
        let mut b = self.books();
        b.total = b.total.saturating_sub(bytes);
        let Some(r) = b.recipients.get_mut(to) else {
            return;
        };
        r.all.count = r.all.count.saturating_sub(1);
        r.all.bytes = r.all.bytes.saturating_sub(bytes);
        if let Some(s) = r.senders.get_mut(from) {
            s.count = s.count.saturating_sub(1);
            s.bytes = s.bytes.saturating_sub(bytes);
            if s.count == 0 {
                r.senders.remove(from);
            }
        }
        if r.all.count == 0 {
            b.recipients.remove(to);
        }
    }

    /// Messages queued for `to`.
    pub fn queued(&self, to: &str) -> usize {
        self.books().recipients.get(to).map_or(0, |r| r.all.count)
    }

    /// Bytes queued on the whole relay.
    pub fn total_bytes(&self) -> u64 {
        self.books().total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flooding_sender_leaves_room_for_others_and_caps_are_released() {
        let q = Quota::new(QueueCaps {
            recipient_count: 4,
            recipient_bytes: 0,
            total_bytes: 1000,
            sender_share: 50,
        });
        assert_eq!(q.reserve("v", "flood", 10), Ok(()));
        assert_eq!(q.reserve("v", "flood", 10), Ok(()));
        assert_eq!(q.reserve("v", "flood", 10), Err(Refusal::SenderShare(50)));
        assert_eq!(q.reserve("v", "friend", 10), Ok(()));
        assert_eq!(q.reserve("v", "other", 10), Ok(()));
        assert_eq!(q.reserve("v", "third", 10), Err(Refusal::RecipientFull));
        assert_eq!(q.reserve("w", "x", 961), Err(Refusal::RelayFull));
        q.release("v", "flood", 10);
        assert_eq!(q.reserve("v", "flood", 10), Ok(()));
        for s in ["flood", "flood", "friend", "other"] {
            q.release("v", s, 10);
        }
        assert_eq!((q.queued("v"), q.total_bytes()), (0, 0));
        assert!(q.books().recipients.is_empty(), "empty entries are dropped");
    }
}
