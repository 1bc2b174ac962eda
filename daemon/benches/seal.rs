//! Seal + open of a 1 KiB message (the trust layer's cost per message).
//!
//! Run: `cargo bench -p clawlinkd --bench seal`. Measures, separately and together: seal
//! (ephemeral X25519, HKDF, ChaCha20-Poly1305, Ed25519 sign, text encoding) and open (parse,
//! Ed25519 verify, X25519, HKDF, decrypt), with the store's checks left out.
//!
//! The group `primitives_on_core` times each building block alone, by CPU time on a core (see
//! `cpu_time`): Ed25519 sign and strict verify of the signed bytes of a 1 KiB envelope, X25519
//! key generation (an ephemeral key from the OS RNG and its public key), an X25519 DH,
//! ChaCha20-Poly1305 of 1 KiB, and the base64url text form of the envelope. Their sum is the
//! floor of an envelope design with a fresh ephemeral key and a signature per message.
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

/// Each primitive of a seal and an open, alone.
fn primitives(c: &mut Criterion) {
    use base64::Engine;
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use ed25519_dalek::Signer;
    let s = KeyPair::generate(0);
    let r = KeyPair::generate(0);
    let text = vec![b'x'; 1024];
    let Ok(env) = seal::seal(
        Draft {
            header: header(&s, &r),
            plaintext: &text,
        },
        &s,
        &r.public(),
    ) else {
        panic!("seal failed");
    };
    // What is signed: the context, the 128-byte header and the 1,040-byte ciphertext.
    let mut signed = clawlinkd::trust::envelope::SIG_CONTEXT.to_vec();
    signed.extend_from_slice(&env.signed_bytes());
    let sig = s.sign.sign(&signed);
    let vk = s.sign.verifying_key();
    assert!(vk.verify_strict(&signed, &sig).is_ok());
    let peer = x25519_dalek::PublicKey::from(r.public().seal);
    let aead = chacha20poly1305::ChaCha20Poly1305::new(&[7u8; 32].into());
    let nonce = [9u8; 12];
    let aad = [1u8; 128];
    let binary = env.to_bytes();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut g = c.benchmark_group("primitives_on_core");
    g.bench_function("ed25519_sign", |b| {
        b.iter_custom(|n| cpu_time::on_core(n, || s.sign.sign(&signed)))
    });
    g.bench_function("ed25519_verify_strict", |b| {
        b.iter_custom(|n| cpu_time::on_core(n, || vk.verify_strict(&signed, &sig).is_ok()))
    });
    g.bench_function("x25519_keygen", |b| {
        b.iter_custom(|n| {
            cpu_time::on_core(n, || {
                let e = x25519_dalek::EphemeralSecret::random_from_rng(rand::rngs::OsRng);
                x25519_dalek::PublicKey::from(&e).to_bytes()
            })
        })
    });
    g.bench_function("x25519_dh", |b| {
        b.iter_custom(|n| cpu_time::on_core(n, || r.seal.diffie_hellman(&peer).to_bytes()))
    });
    g.bench_function("chacha20poly1305_1KiB", |b| {
        b.iter_custom(|n| {
            cpu_time::on_core(n, || {
                aead.encrypt(
                    (&nonce).into(),
                    Payload {
                        msg: &text,
                        aad: &aad,
                    },
                )
                .map(|ct| ct.len())
            })
        })
    });
    g.bench_function("base64_envelope", |b| {
        b.iter_custom(|n| cpu_time::on_core(n, || b64.encode(&binary).len()))
    });
    g.finish();
}

criterion_group!(benches, bench, primitives);
criterion_main!(benches);
