//! `POST /message` bodies: never a panic; anything accepted has a sender and a text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = clawlinkd::inbound::webhook::parse_post(data) {
        assert!(!m.from.trim().is_empty() && m.from.len() <= 256);
        assert!(!m.message.is_empty());
    }
});
