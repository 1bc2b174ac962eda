//! The relay's `status` rows: one per identity, kind `relay`, target `RELAY/ID`, with the
//! connection state, the last error, and whether the relay acknowledges (`acks`).

use super::Relay;
use crate::status::StatusSource;
use clawlink::proto::ConnectionRow;
use std::collections::BTreeMap;

impl StatusSource for Relay {
    fn rows(&self) -> Vec<ConnectionRow> {
        let conns: Vec<_> = self.conns().values().cloned().collect();
        let mut rows: Vec<ConnectionRow> = conns
            .iter()
            .filter(|c| !c.cancel.is_cancelled() || !self.shutdown.is_cancelled())
            .map(|c| {
                let s = c.status();
                let mut info = BTreeMap::new();
                info.insert("name".to_string(), c.identity.name.clone());
                if let Some(a) = s.acks {
                    info.insert("acks".to_string(), a.to_string());
                }
                ConnectionRow {
                    kind: "relay".into(),
                    target: format!("{}/{}", c.identity.relay, c.identity.id),
                    state: s.state.to_string(),
                    last_error: s.last_error,
                    rtt_ms: None,
                    info,
                }
            })
            .collect();
        rows.sort_by(|a, b| a.target.cmp(&b.target));
        rows
    }
}
