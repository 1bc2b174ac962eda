//! Receipt and hello payloads (and the other decrypted payloads): never a panic; bounded when
//! accepted.
#![no_main]
use clawlinkd::trust::payload::{
    HelloBody, InviteAcceptBody, KeyUpdateBody, ReceiptBody, MAX_FEATURE, MAX_FEATURES,
    MAX_REASON, MAX_RECEIPT_IDS,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = ReceiptBody::parse(data) {
        assert_eq!(r.for_id.len(), 32);
        assert!(r.reason.as_ref().map_or(0, |s| s.len()) <= MAX_REASON);
        // A batched receipt: `ids` never empty when present, every id 32 hex digits, at most
        // the cap in all, none twice (in any letter case).
        assert!(r.ids.as_ref().is_none_or(|ids| !ids.is_empty()));
        let ids: Vec<String> = r.all_ids().map(str::to_ascii_lowercase).collect();
        assert!(ids.len() <= MAX_RECEIPT_IDS);
        assert!(ids.iter().all(|id| id.len() == 32));
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        // What was accepted is written back in a form that parses to the same receipt.
        assert_eq!(ReceiptBody::parse(&r.to_bytes()), Ok(r));
    }
    if let Ok(h) = HelloBody::parse(data) {
        // A hello: bounded, distinct, plain names; written back to the same hello.
        assert!(h.features.len() <= MAX_FEATURES);
        assert!(h.features.iter().all(|f| (1..=MAX_FEATURE).contains(&f.len())));
        let distinct: std::collections::HashSet<&String> = h.features.iter().collect();
        assert_eq!(distinct.len(), h.features.len());
        assert_eq!(HelloBody::parse(&h.to_bytes()), Ok(h));
    }
    let _ = KeyUpdateBody::parse(data);
    let _ = InviteAcceptBody::parse(data);
});
