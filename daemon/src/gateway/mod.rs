//! The OpenClaw Gateway client (placeholder; being written).
