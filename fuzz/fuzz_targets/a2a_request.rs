//! The A2A endpoint's JSON-RPC request parser on arbitrary bytes: it never panics, every
//! error carries a JSON-RPC code, and what it accepts respects the caps.
#![no_main]
use clawlinkd::a2a::rpc::{parse, Body, Call, MAX_BATCH, MAX_TEXT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let entries = match parse(data) {
        Ok(Body::Single(e)) => vec![e],
        Ok(Body::Batch(v)) => {
            assert!(!v.is_empty() && v.len() <= MAX_BATCH);
            v
        }
        Err(e) => {
            assert!((-32700..=-32000).contains(&e.code));
            return;
        }
    };
    for e in entries {
        match e.call {
            Ok(Call::Send(s)) => {
                assert!(!s.text.trim().is_empty() && s.text.len() <= MAX_TEXT);
                assert!(s.message.parts.iter().all(|p| !p.is_file()));
            }
            Ok(Call::Get { id, .. }) | Ok(Call::Cancel { id }) => assert!(!id.is_empty()),
            Err(err) => assert!((-32700..=-32000).contains(&err.code), "{err:?}"),
        }
    }
});
