//! The audit log of inbound decisions: an append-only, hash-chained file.
//!
//! `DATA_DIR/audit.jsonl`, one JSON record per line, never content:
//!
//! ```text
//! {"seq":1,"time":"2026-11-30T18:00:00.000Z","source":"relay","sender":"relay:alice",
//!  "verified":false,"level":"review","action":"held","session":null,"message":42,
//!  "content_sha256":"<hex>","prev":"<hex of record 0: 64 zeros>","hash":"<hex>"}
//! ```
//!
//! `hash` = sha256 of the record's canonical JSON without `hash` (fields in the order above),
//! and `prev` is the previous record's `hash`, so editing, removing or reordering any line
//! breaks the chain from there on.
//!
//! Why a file and not a sled tree: the log is meant to be read, shipped and checked by other
//! tools (`jq`, `sha256sum`), and it is written once and never rewritten. Cutting lines off
//! the end keeps the chain valid, so the last `(seq, hash)` is also kept in the store's `kv`
//! tree (`audit.head`) after each fsync of the file: [`AuditLog::verify`] requires the file to
//! reach that record with that hash. A crash between the file's fsync and the head update
//! leaves the file one batch ahead of the head, which verifies (the head's record is still
//! there and unchanged).
//!
//! Writes: [`AuditLog::append`] writes the line (O_APPEND) and advances the chain in memory;
//! [`AuditLog::sync`] fsyncs the file and records the head. Callers append a batch of
//! decisions, then sync once before acting on them.

use super::kv::Kv;
use super::{Db, Result, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The file name inside the data directory.
pub const FILE: &str = "audit.jsonl";
/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const HEAD_KEY: &str = "audit.head";

/// One decision as the caller describes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// `webhook`, `relay`, `nexus`, `friend`, `a2a`.
    pub source: String,
    /// The sender key (`relay:alice`).
    pub sender: String,
    /// Whether the transport verified the sender.
    pub verified: bool,
    /// The level applied.
    pub level: String,
    /// What was done: `held`, `blocked`, `notified`, `delivered`, `approved`, `rejected`, …
    pub action: String,
    /// The agent session the content went to, if any.
    pub session: Option<String>,
    /// The inbox id.
    pub message: u64,
    /// sha256 of the content (hex).
    pub content_sha256: String,
}

/// A record as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// 1, 2, 3, …
    pub seq: u64,
    /// RFC 3339.
    pub time: String,
    /// See [`Entry`].
    pub source: String,
    /// See [`Entry`].
    pub sender: String,
    /// See [`Entry`].
    pub verified: bool,
    /// See [`Entry`].
    pub level: String,
    /// See [`Entry`].
    pub action: String,
    /// See [`Entry`].
    pub session: Option<String>,
    /// See [`Entry`].
    pub message: u64,
    /// See [`Entry`].
    pub content_sha256: String,
    /// The previous record's hash.
    pub prev: String,
    /// This record's hash.
    #[serde(default)]
    pub hash: String,
}

impl Record {
    /// The hash this record must carry.
    pub fn compute_hash(&self) -> String {
        let mut unhashed = self.clone();
        unhashed.hash = String::new();
        let bytes = serde_json::to_vec(&unhashed).unwrap_or_default();
        hex(&Sha256::digest(bytes))
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of a text, hex.
pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: String,
}

struct Tail {
    file: File,
    seq: u64,
    hash: String,
    dirty: bool,
}

/// Handle to the log. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    path: PathBuf,
    kv: Kv,
    tail: Arc<Mutex<Tail>>,
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the whole chain checks.
    pub ok: bool,
    /// Records read.
    pub records: u64,
    /// The first problem, if any.
    pub problem: Option<String>,
}

fn io(path: &std::path::Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |error| StoreError::Io {
        path: path.to_path_buf(),
        error,
    }
}

impl AuditLog {
    /// Opens the log in the data directory, reading its last record to continue the chain.
    pub fn open(db: &Db) -> Result<AuditLog> {
        let path = db.dir().join(FILE);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(io(&path))?;
        let (seq, hash) = match read_records(&path)?.last() {
            Some(Ok(r)) => (r.seq, r.hash.clone()),
            Some(Err(e)) => {
                return Err(StoreError::Corrupt {
                    tree: "audit",
                    detail: format!(
                        "{}: {e}; `clawlink audit --verify` says more",
                        path.display()
                    ),
                })
            }
            None => (0, GENESIS.to_string()),
        };
        Ok(AuditLog {
            path,
            kv: Kv::open(db)?,
            tail: Arc::new(Mutex::new(Tail {
                file,
                seq,
                hash,
                dirty: false,
            })),
        })
    }

    /// The file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Tail>> {
        self.tail.lock().map_err(|_| StoreError::Closed)
    }

    /// Appends one record (not yet durable: call [`AuditLog::sync`]).
    pub fn append(&self, e: Entry) -> Result<Record> {
        let mut t = self.lock()?;
        let mut r = Record {
            seq: t.seq + 1,
            time: crate::time::now_rfc3339(),
            source: e.source,
            sender: e.sender,
            verified: e.verified,
            level: e.level,
            action: e.action,
            session: e.session,
            message: e.message,
            content_sha256: e.content_sha256,
            prev: t.hash.clone(),
            hash: String::new(),
        };
        r.hash = r.compute_hash();
        let mut line = serde_json::to_vec(&r).map_err(|e| StoreError::Corrupt {
            tree: "audit",
            detail: e.to_string(),
        })?;
        line.push(b'\n');
        t.file.write_all(&line).map_err(io(&self.path))?;
        t.seq = r.seq;
        t.hash = r.hash.clone();
        t.dirty = true;
        Ok(r)
    }

    /// Fsyncs the file and records the head (durable after the next [`Db::durable`]).
    pub fn sync(&self) -> Result<()> {
        let mut t = self.lock()?;
        if !t.dirty {
            return Ok(());
        }
        t.file.sync_data().map_err(io(&self.path))?;
        self.kv.set(
            HEAD_KEY,
            &Head {
                seq: t.seq,
                hash: t.hash.clone(),
            },
        )?;
        t.dirty = false;
        Ok(())
    }

    /// Every record, oldest first (a line that does not parse is an error item).
    pub fn records(&self) -> Result<Vec<std::result::Result<Record, String>>> {
        let _t = self.lock()?;
        read_records(&self.path)
    }

    /// Checks the chain from the first record and that it reaches the recorded head.
    pub fn verify(&self) -> Result<Verdict> {
        let head: Option<Head> = self.kv.get(HEAD_KEY)?;
        let records = self.records()?;
        Ok(check(&records, head.map(|h| (h.seq, h.hash))))
    }
}

fn read_records(path: &std::path::Path) -> Result<Vec<std::result::Result<Record, String>>> {
    let file = File::open(path).map_err(io(path))?;
    let mut out = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io(path))?;
        out.push(
            serde_json::from_str::<Record>(&line)
                .map_err(|e| format!("line {}: not a record ({e})", n + 1)),
        );
    }
    Ok(out)
}

/// Checks records against each other and against the head `(seq, hash)`.
pub fn check(
    records: &[std::result::Result<Record, String>],
    head: Option<(u64, String)>,
) -> Verdict {
    let bad = |n: u64, p: String| Verdict {
        ok: false,
        records: n,
        problem: Some(p),
    };
    let mut prev = GENESIS.to_string();
    let mut at_head = head.as_ref().is_none_or(|h| h.0 == 0);
    for (i, r) in records.iter().enumerate() {
        let n = i as u64 + 1;
        let r = match r {
            Ok(r) => r,
            Err(e) => return bad(n, e.clone()),
        };
        if r.seq != n {
            return bad(
                n,
                format!("line {n} has seq {} (a record was removed or moved)", r.seq),
            );
        }
        if r.prev != prev {
            return bad(
                n,
                format!(
                    "record {n} does not follow record {}: the chain is broken",
                    n - 1
                ),
            );
        }
        if r.compute_hash() != r.hash {
            return bad(
                n,
                format!("record {n} was edited (its hash does not match)"),
            );
        }
        if let Some((hs, hh)) = &head {
            if *hs == n {
                if *hh != r.hash {
                    return bad(n, format!("record {n} is not the record the daemon wrote"));
                }
                at_head = true;
            }
        }
        prev = r.hash.clone();
    }
    let n = records.len() as u64;
    if !at_head {
        let seq = head.map(|h| h.0).unwrap_or(0);
        return bad(
            n,
            format!(
                "the log ends at record {n} but the daemon wrote up to {seq}: it was truncated"
            ),
        );
    }
    Verdict {
        ok: true,
        records: n,
        problem: None,
    }
}

#[cfg(test)]
mod tests;
