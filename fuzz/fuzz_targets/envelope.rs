//! Envelope text: never a panic; anything parsed re-encodes to the same bytes.
#![no_main]
use clawlinkd::trust::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(env) = Envelope::from_text(&text) {
        assert_eq!(Envelope::from_text(&env.to_text()).as_ref(), Ok(&env));
        assert!(env.ciphertext.len() <= clawlinkd::trust::envelope::MAX_CIPHERTEXT);
    }
    if let Ok(env) = Envelope::from_bytes(data) {
        assert_eq!(env.to_bytes(), data);
    }
});
