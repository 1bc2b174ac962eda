//! Receipt payloads (and the other decrypted payloads): never a panic; bounded when accepted.
#![no_main]
use clawlinkd::trust::payload::{InviteAcceptBody, KeyUpdateBody, ReceiptBody};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = ReceiptBody::parse(data) {
        assert_eq!(r.for_id.len(), 32);
        assert!(r.reason.map_or(0, |s| s.len()) <= clawlinkd::trust::payload::MAX_REASON);
    }
    let _ = KeyUpdateBody::parse(data);
    let _ = InviteAcceptBody::parse(data);
});
