//! Frames from an OpenClaw gateway (untrusted peer): parse never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = clawlinkd::gateway::frame::parse(text);
    }
});
