//! The control socket's frame reader and request/hello parsers on arbitrary bytes.
#![no_main]
use clawlink::frame::{read_frame, FrameError};
use clawlink::proto::{Hello, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = std::io::Cursor::new(data);
    loop {
        match read_frame(&mut reader, 4096) {
            Ok(Some(line)) => {
                if let Ok(r) = serde_json::from_str::<Request>(&line) {
                    // Whatever parses must round-trip and name its method.
                    let _ = r.method();
                    let again = serde_json::to_string(&r).expect("a parsed request serializes");
                    serde_json::from_str::<Request>(&again).expect("and parses again");
                }
                let _ = serde_json::from_str::<Hello>(&line);
            }
            Ok(None) => break,
            Err(FrameError::TooLarge { .. })
            | Err(FrameError::NotUtf8)
            | Err(FrameError::Io(_)) => break,
        }
    }
});
