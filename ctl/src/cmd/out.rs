//! Output helpers: JSON for machines, short lines for humans.

use serde::Serialize;

/// Prints `value` as pretty JSON on stdout.
pub fn json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("clawlink: cannot render JSON: {e}"),
    }
}

/// Prints one JSON line (for streams).
pub fn json_line<T: Serialize>(value: &T) {
    if let Ok(s) = serde_json::to_string(value) {
        println!("{s}");
    }
}

/// Prints `value` as JSON with `--json`, else `human`.
pub fn done<T: Serialize>(ctx: &super::Ctx, value: &T, human: &str) {
    if ctx.json {
        json(value);
    } else {
        println!("{human}");
    }
}

/// `3d 4h`, `5m 2s`, ...
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}
