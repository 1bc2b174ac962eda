//! Invite text: never a panic; an accepted invite verified its own signature and is unexpired.
#![no_main]
use clawlinkd::trust::invite::Invite;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(inv) = Invite::from_text(&text, 0) {
        assert!(inv.expires_ms > 0);
        assert!(inv.addresses.len() <= clawlinkd::trust::payload::MAX_ADDRESSES);
    }
});
