//! Seal + open of a 1 KiB message (the trust layer's cost per message).
//!
//! Run: `cargo bench -p clawlinkd --bench seal`. Measures, separately and together: seal
//! (ephemeral X25519, HKDF, ChaCha20-Poly1305, Ed25519 sign, text encoding) and open (parse,
//! Ed25519 verify, X25519, HKDF, decrypt), with the store's checks left out.
// criterion's macros generate public functions without docs.
#![allow(missing_docs)]

use clawlinkd::trust::envelope::{Envelope, Header, Kind};
use clawlinkd::trust::keys::{KeyPair, PeerId};
use clawlinkd::trust::seal::{self, Draft};
#[path = "cpu_time/mod.rs"]
mod cpu_time;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn header(s: &KeyPair, r: &KeyPair) -> Header {
    Header {
        kind: Kind::Message,
        hops: 0,
        sender: PeerId([1; 16]),
        sender_key: s.public().key_id(),
        recipient: PeerId([2; 16]),
        recipient_key: r.public().key_id(),
        id: [3; 16],
        ts_ms: 1_700_000_000_000,
        epk: [0; 32],
    }
}

fn bench(c: &mut Criterion) {
    let s = KeyPair::generate(0);
    let r = KeyPair::generate(0);
    let text = vec![b'x'; 1024];
    let seal_one = || {
        seal::seal(
            Draft {
                header: header(&s, &r),
                plaintext: &text,
            },
            &s,
            &r.public(),
        )
        .map(|e| e.to_text())
    };
    let open_one = |t: &str| -> Option<usize> {
        let env = Envelope::from_text(t).ok()?;
        seal::verify(&env, &s.public()).ok()?;
        seal::open(&env, &r).ok().map(|p| p.len())
    };
    let sealed = seal_one().unwrap_or_default();
    assert_eq!(open_one(&sealed), Some(1024));
    let mut g = c.benchmark_group("envelope_1KiB");
    g.throughput(Throughput::Bytes(1024));
    g.bench_function("seal", |b| b.iter(seal_one));
    g.bench_function("open", |b| b.iter(|| open_one(&sealed)));
    g.bench_function("seal_and_open", |b| {
        b.iter(|| seal_one().ok().and_then(|t| open_one(&t)))
    });
    g.finish();
    let mut g = c.benchmark_group("envelope_1KiB_on_core");
    g.bench_function("seal", |b| {
        b.iter_custom(|n| cpu_time::on_core(n, seal_one))
    });
    g.bench_function("open", |b| {
        b.iter_custom(|n| cpu_time::on_core(n, || open_one(&sealed)))
    });
    g.bench_function("seal_and_open", |b| {
        b.iter_custom(|n| cpu_time::on_core(n, || seal_one().ok().and_then(|t| open_one(&t))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
