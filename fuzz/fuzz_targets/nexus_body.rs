//! Nexus server request bodies through the server's own body extractor.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = Ok(axum::body::Bytes::copy_from_slice(data));
    let _ = clawlinkd::nexus_server::extract::json_body::<serde_json::Map<String, serde_json::Value>>(
        body,
    );
});
