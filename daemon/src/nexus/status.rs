//! Nexus `status` rows: one per joined session, kind `nexus`, target the session id, with the
//! poller's state (`polling`, `long-poll`, `backoff`, `stopped`, `expired`, `removed`) and
//! `info: {server, agent_id, cursor, expires, members_pinned, signed, forged,
//! key_changes_held}`: `signed` and `forged` count the messages stored since the daemon
//! started whose member signature verified, and those stored as not from the member they
//! claim (see [`super::members`]); `key_changes_held` the announces of another key for a
//! pinned member.

use super::{lock, Live, Nexus};
use crate::status::StatusSource;
use clawlink::proto::ConnectionRow;

impl StatusSource for Nexus {
    fn rows(&self) -> Vec<ConnectionRow> {
        let live = lock(&self.live).clone();
        let Ok(list) = self.store.list() else {
            return Vec::new();
        };
        list.into_iter()
            .map(|s| {
                let l = live.get(&s.sid).cloned().unwrap_or_else(|| Live {
                    state: if s.state == "active" {
                        "stopped".into()
                    } else {
                        s.state.clone()
                    },
                    last_error: None,
                });
                let mut info = std::collections::BTreeMap::new();
                info.insert("server".into(), s.server.clone());
                info.insert("agent_id".into(), s.agent_id.clone());
                info.insert("cursor".into(), s.cursor.clone().unwrap_or_default());
                info.insert("expires".into(), s.expires_at.clone().unwrap_or_default());
                let counts = self.sig_counts(&s.sid);
                let (pinned, held) = self.member_counts(&s.sid);
                info.insert("members_pinned".into(), pinned.to_string());
                info.insert("signed".into(), counts.signed.to_string());
                info.insert("forged".into(), counts.forged.to_string());
                info.insert("key_changes_held".into(), held.to_string());
                ConnectionRow {
                    kind: "nexus".into(),
                    target: s.sid,
                    state: l.state,
                    last_error: l.last_error,
                    rtt_ms: None,
                    info,
                }
            })
            .collect()
    }
}
