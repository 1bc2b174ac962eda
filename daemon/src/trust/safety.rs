//! The safety number two friends compare out of band.
//!
//! Each side's fingerprint input is `sign || seal` (its current public keys). The two inputs
//! are put in byte order, so both sides compute the same thing:
//! `d = SHA-512("clawlink-safety-v1" || min(a, b) || max(a, b))`. The number is eight groups of
//! five digits: group `i` (0..8) is the big-endian integer of `d[5i..5i+5]` modulo 100000, zero padded.
//! Forty digits (about 133 bits) read aloud in under a minute, against Reef's 64 hex digits.
//! Any key change on either side changes the number.

use super::keys::PublicKeys;
use sha2::{Digest, Sha512};

/// The safety number of `a` and `b` (order does not matter), e.g. `"01234 56789 …"`.
pub fn safety_number(a: &PublicKeys, b: &PublicKeys) -> String {
    let mut x = [0u8; 64];
    x[..32].copy_from_slice(&a.sign);
    x[32..].copy_from_slice(&a.seal);
    let mut y = [0u8; 64];
    y[..32].copy_from_slice(&b.sign);
    y[32..].copy_from_slice(&b.seal);
    let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
    let d = Sha512::new()
        .chain_update(b"clawlink-safety-v1")
        .chain_update(lo)
        .chain_update(hi)
        .finalize();
    d.chunks_exact(5)
        .take(8)
        .map(|c| {
            let n = c.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b));
            format!("{:05}", n % 100_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::keys::KeyPair;

    #[test]
    fn same_on_both_sides_and_changes_with_a_key() {
        let a = KeyPair::generate(0).public();
        let b = KeyPair::generate(0).public();
        let n = safety_number(&a, &b);
        assert_eq!(n, safety_number(&b, &a));
        assert_eq!(n.len(), 8 * 5 + 7);
        assert!(n.chars().all(|c| c.is_ascii_digit() || c == ' '));
        let c = KeyPair::generate(1).public();
        assert_ne!(n, safety_number(&a, &c));
    }
}
