//! `audit list|verify`: the hash-chained log of inbound decisions (`store::audit`).

use super::{json, store_err, Reply};
use crate::state::State;
use clawlink::proto::{AuditRecord, AuditRequest, AuditVerdict};

/// Default number of records listed.
const DEFAULT_LIMIT: usize = 100;

pub(super) fn handle(state: &State, r: AuditRequest) -> Reply {
    let log = &state.policy.audit;
    match r {
        AuditRequest::List { limit } => {
            let all = log.records().map_err(store_err)?;
            let limit = limit.unwrap_or(DEFAULT_LIMIT);
            let skip = all.len().saturating_sub(limit);
            let out: Vec<AuditRecord> = all
                .into_iter()
                .skip(skip)
                .filter_map(Result::ok)
                .map(|r| AuditRecord {
                    seq: r.seq,
                    time: r.time,
                    source: r.source,
                    sender: r.sender,
                    verified: r.verified,
                    level: r.level,
                    action: r.action,
                    session: r.session,
                    message: r.message,
                    content_sha256: r.content_sha256,
                    prev: r.prev,
                    hash: r.hash,
                })
                .collect();
            json(&out)
        }
        AuditRequest::Verify => {
            let v = log.verify().map_err(store_err)?;
            json(&AuditVerdict {
                ok: v.ok,
                records: v.records,
                problem: v.problem,
            })
        }
    }
}
