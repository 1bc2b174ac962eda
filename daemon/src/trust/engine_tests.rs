//! Two [`Trust`] engines on real sled stores: the whole exchange without transports, and the
//! property that no single changed byte of a valid envelope is ever accepted.

use super::engine::{Opened, Trust, TrustError};
use super::envelope::{Envelope, Header, Kind};
use super::keys::{KeyPair, PeerId};
use super::payload::KeyUpdateBody;
use super::seal::{self, Draft};
use super::Refusal;
use crate::store::trust::TrustStore;
use crate::store::Db;
use proptest::prelude::*;

struct Peer {
    trust: Trust,
    _db: Db,
    _dir: tempfile::TempDir,
}

fn peer() -> anyhow::Result<Peer> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let db = Db::open(&data)?;
    let trust = Trust::load(data.join("identity.key"), TrustStore::open(&db)?)?;
    Ok(Peer {
        trust,
        _db: db,
        _dir: dir,
    })
}

fn refusal<T: std::fmt::Debug>(r: Result<T, TrustError>) -> Option<Refusal> {
    match r {
        Err(TrustError::Refused(r)) => Some(r.refusal),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A and B become friends: B accepts A's invite and A opens the accept.
fn befriend(a: &Peer, b: &Peer) -> anyhow::Result<()> {
    let (inv, _) = a.trust.invite(
        vec!["relay://127.0.0.1:1/a".into()],
        60_000,
        Some("bob".into()),
    )?;
    let (accept, addrs) = b.trust.accept(&inv, "alice", "bob-suggests", vec![])?;
    assert_eq!(addrs, vec!["relay://127.0.0.1:1/a".to_string()]);
    let Opened::FriendAdded { friend, receipt } = a.trust.open(&accept.text)? else {
        anyhow::bail!("not added");
    };
    assert_eq!(friend, "bob");
    let receipt = receipt.ok_or_else(|| anyhow::anyhow!("no receipt"))?;
    assert!(matches!(
        b.trust.open(&receipt.text)?,
        Opened::Receipt { .. }
    ));
    Ok(())
}

#[tokio::test]
async fn friends_exchange_messages_receipts_and_rotations() -> anyhow::Result<()> {
    let (a, b) = (peer()?, peer()?);
    befriend(&a, &b)?;
    let fa = b
        .trust
        .store()
        .friend("alice")?
        .ok_or_else(|| anyhow::anyhow!("alice"))?;
    let fb = a
        .trust
        .store()
        .friend("bob")?
        .ok_or_else(|| anyhow::anyhow!("bob"))?;
    assert!(fa.confirmed);
    let na = a
        .trust
        .safety_number(&super::engine::friend_keys(&fb).ok_or_else(|| anyhow::anyhow!("keys"))?);
    let nb = b
        .trust
        .safety_number(&super::engine::friend_keys(&fa).ok_or_else(|| anyhow::anyhow!("keys"))?);
    assert_eq!(na, nb);

    // A reply an agent wrote carries its hop count, signed; past the limit it is not sealed.
    let h = b.trust.seal_message_hops("alice", "agent reply", 3)?;
    assert!(matches!(
        a.trust.open(&h.text)?,
        Opened::Message { hops: 3, .. }
    ));
    assert!(b.trust.seal_message_hops("alice", "x", 9).is_err());

    let m = b.trust.seal_message("alice", "hello alice")?;
    let Opened::Message {
        friend,
        text,
        duplicate,
        ..
    } = a.trust.open(&m.text)?
    else {
        anyhow::bail!("not a message");
    };
    assert_eq!(
        (friend.as_str(), text.as_str(), duplicate),
        ("bob", "hello alice", false)
    );
    // The same bytes again (another path): a duplicate, answered again.
    assert!(matches!(
        a.trust.open(&m.text)?,
        Opened::Message {
            duplicate: true,
            ..
        }
    ));
    let receipt = a
        .trust
        .answer("bob", &m.id, super::payload::ReceiptStatus::Stored, None)?;
    b.trust.open(&receipt.text)?;
    let id = super::unhex::<16>(&m.id).ok_or_else(|| anyhow::anyhow!("id"))?;
    assert_eq!(
        b.trust.store().receipt(&id)?.map(|r| r.status),
        Some("stored".into())
    );

    // An endorsed rotation is applied at once; messages under the new key open.
    let updates = b.trust.rotate()?;
    assert_eq!(updates.len(), 1);
    assert!(matches!(
        a.trust.open(&updates[0].text)?,
        Opened::KeyUpdated { epoch: 1, .. }
    ));
    let m2 = b.trust.seal_message("alice", "after rotation")?;
    assert!(matches!(a.trust.open(&m2.text)?, Opened::Message { .. }));
    // A reply sealed before A learned nothing new still reaches B's current key.
    let back = a.trust.seal_message("bob", "hi bob")?;
    assert!(matches!(b.trust.open(&back.text)?, Opened::Message { .. }));
    Ok(())
}

/// B seals `n` messages to A (its "alice"), A opens each; their ids.
fn messages_b_to_a(a: &Peer, b: &Peer, tag: &str, n: usize) -> anyhow::Result<Vec<String>> {
    (0..n)
        .map(|i| {
            let m = b.trust.seal_message("alice", &format!("{tag} {i}"))?;
            assert!(matches!(a.trust.open(&m.text)?, Opened::Message { .. }));
            Ok(m.id)
        })
        .collect()
}

#[tokio::test]
async fn one_batched_receipt_answers_many_messages() -> anyhow::Result<()> {
    use super::payload::{ReceiptStatus, MAX_RECEIPT_IDS};
    let (a, b) = (peer()?, peer()?);
    befriend(&a, &b)?;
    let ids = messages_b_to_a(&a, &b, "burst", 5)?;
    let status_at_b = |id: &str| -> anyhow::Result<Option<String>> {
        let id = super::unhex::<16>(id).ok_or_else(|| anyhow::anyhow!("id"))?;
        Ok(b.trust.store().receipt(&id)?.map(|r| r.status))
    };
    // `delivered` for the first two, then one `stored` receipt for all five: the furthest
    // status is kept per id.
    let delivered = a
        .trust
        .answer_many("bob", &ids[..2], ReceiptStatus::Delivered, None)?;
    let stored = a
        .trust
        .answer_many("bob", &ids, ReceiptStatus::Stored, None)?;
    let Opened::Receipt { for_ids, .. } = b.trust.open(&delivered.text)? else {
        anyhow::bail!("not a receipt");
    };
    assert_eq!(for_ids, ids[..2].to_vec());
    let Opened::Receipt {
        for_ids, status, ..
    } = b.trust.open(&stored.text)?
    else {
        anyhow::bail!("not a receipt");
    };
    assert_eq!((for_ids, status), (ids.clone(), ReceiptStatus::Stored));
    for (i, id) in ids.iter().enumerate() {
        let want = if i < 2 { "delivered" } else { "stored" };
        assert_eq!(status_at_b(id)?.as_deref(), Some(want), "message {i}");
    }
    // What the wire refuses is not sealed: too many ids, none, or a malformed one.
    let many: Vec<String> = (0..=MAX_RECEIPT_IDS).map(|n| format!("{n:032x}")).collect();
    let twice = [ids[0].clone(), ids[0].to_ascii_uppercase()];
    for bad in [&many[..], &[], &["00".to_string()], &twice] {
        assert!(matches!(
            a.trust.answer_many("bob", bad, ReceiptStatus::Stored, None),
            Err(TrustError::Local(_))
        ));
    }
    Ok(())
}

/// Receipts are batched to a friend only once its hello said it reads them; before that (as
/// to a build from before batched receipts, which sends no hello) each id gets its own.
#[tokio::test]
async fn receipts_are_batched_only_for_a_friend_whose_hello_names_them() -> anyhow::Result<()> {
    use super::payload::{ReceiptStatus, FEATURE_RECEIPT_IDS};
    let (a, b) = (peer()?, peer()?);
    befriend(&a, &b)?;
    let ids = messages_b_to_a(&a, &b, "m", 3)?;
    assert!(!a.trust.reads_batches("bob")?, "no hello from B yet");
    let singles = a
        .trust
        .answer_batch("bob", &ids, ReceiptStatus::Stored, None)?;
    assert_eq!(singles.len(), 3, "one receipt per id before B's hello");
    for ((r, _), id) in singles.iter().zip(&ids) {
        let Opened::Receipt { for_ids, .. } = b.trust.open(&r.text)? else {
            anyhow::bail!("not a receipt");
        };
        assert_eq!(for_ids, std::slice::from_ref(id));
    }
    // B greets A once: a second hello for the same features is not made.
    let hello = b
        .trust
        .hello("alice", false)?
        .ok_or_else(|| anyhow::anyhow!("no hello"))?;
    assert!(b.trust.hello("alice", false)?.is_none(), "told once");
    assert!(
        b.trust.hello("alice", true)?.is_some(),
        "unless asked again"
    );
    let Opened::Hello {
        friend,
        features,
        first,
    } = a.trust.open(&hello.text)?
    else {
        anyhow::bail!("not a hello");
    };
    assert_eq!(friend, "bob");
    assert!(first, "B's first hello");
    assert!(features.iter().any(|f| f == FEATURE_RECEIPT_IDS));
    assert!(a.trust.reads_batches("bob")?);
    // The same hello again (a copy over another path) changes nothing and is not a first.
    assert!(matches!(
        a.trust.open(&hello.text)?,
        Opened::Hello { first: false, .. }
    ));
    let batched = a
        .trust
        .answer_batch("bob", &ids, ReceiptStatus::Delivered, None)?;
    assert_eq!(
        batched.len(),
        1,
        "one receipt for all once B said it reads them"
    );
    let Opened::Receipt { for_ids, .. } = b.trust.open(&batched[0].0.text)? else {
        anyhow::bail!("not a receipt");
    };
    assert_eq!(for_ids, ids);
    // Removing the friend forgets both what it said and what it was told.
    assert!(a.trust.store().remove_friend("bob")?);
    let bob = super::unhex::<16>(&b.trust.identity().id.to_string())
        .ok_or_else(|| anyhow::anyhow!("id"))?;
    assert_eq!(a.trust.store().features(&bob)?, None);
    assert!(a.trust.store().told(&bob)?.is_empty());
    Ok(())
}

#[tokio::test]
async fn unsigned_key_change_is_held_until_accepted() -> anyhow::Result<()> {
    let (a, b) = (peer()?, peer()?);
    befriend(&a, &b)?;
    let me_a = a.trust.identity();
    let me_b = b.trust.identity();
    // B "lost its keys": new keys under the same id, no endorsement by the old key.
    let lost = KeyPair::generate(7);
    let body = KeyUpdateBody::new(&me_b.id, &lost.public(), 7, None).to_bytes();
    let header = |kind| Header {
        kind,
        hops: 0,
        sender: me_b.id,
        sender_key: lost.public().key_id(),
        recipient: me_a.id,
        recipient_key: me_a.current.public().key_id(),
        id: rand::random(),
        ts_ms: crate::time::now_ms(),
        epk: [0; 32],
    };
    let msg = super::payload::MessageBody {
        text: "under the new key".into(),
    }
    .to_bytes();
    // A message under the unknown key first: held unverified, not shown.
    let early = seal::seal(
        Draft {
            header: header(Kind::Message),
            plaintext: &msg,
        },
        &lost,
        &me_a.current.public(),
    )?;
    assert!(matches!(
        a.trust.open(&early.to_text())?,
        Opened::Held { .. }
    ));
    let upd = seal::seal(
        Draft {
            header: header(Kind::KeyUpdate),
            plaintext: &body,
        },
        &lost,
        &me_a.current.public(),
    )?;
    assert!(matches!(a.trust.open(&upd.to_text())?, Opened::Held { .. }));
    let bob = a
        .trust
        .store()
        .friend("bob")?
        .ok_or_else(|| anyhow::anyhow!("bob"))?;
    assert!(bob.pending.is_some());
    assert_eq!(bob.epoch, 0);
    // Sending to bob is refused while the change is pending.
    assert!(a.trust.seal_message("bob", "x").is_err());
    let released = a.trust.accept_key("bob")?;
    assert_eq!(released.len(), 1);
    assert!(matches!(
        a.trust.open(&released[0])?,
        Opened::Message { .. }
    ));
    Ok(())
}

#[tokio::test]
async fn forged_wrong_recipient_replay_and_invites() -> anyhow::Result<()> {
    let (a, b, c) = (peer()?, peer()?, peer()?);
    befriend(&a, &b)?;
    let me_a = a.trust.identity();
    let me_b = b.trust.identity();
    // Forged: claims to be B under B's key id, signed by another key.
    let forger = KeyPair::generate(0);
    let forged = seal::seal(
        Draft {
            header: Header {
                kind: Kind::Message,
                hops: 0,
                sender: me_b.id,
                sender_key: me_b.current.public().key_id(),
                recipient: me_a.id,
                recipient_key: me_a.current.public().key_id(),
                id: [9; 16],
                ts_ms: crate::time::now_ms(),
                epk: [0; 32],
            },
            plaintext: br#"{"text":"forged"}"#,
        },
        &forger,
        &me_a.current.public(),
    )?;
    assert_eq!(
        refusal(a.trust.open(&forged.to_text())),
        Some(Refusal::BadSignature)
    );
    // Wrong recipient: B's message to A, opened by C.
    let m = b.trust.seal_message("alice", "for alice only")?;
    assert_eq!(
        refusal(c.trust.open(&m.text)),
        Some(Refusal::WrongRecipient)
    );
    // Replay: the same message id with other bytes (re-sealed by B with a reused id).
    a.trust.open(&m.text)?;
    let env = Envelope::from_text(&m.text)?;
    let again = seal::seal(
        Draft {
            header: env.header.clone(),
            plaintext: br#"{"text":"again"}"#,
        },
        &me_b.current,
        &me_a.current.public(),
    )?;
    assert_eq!(
        refusal(a.trust.open(&again.to_text())),
        Some(Refusal::Replay)
    );
    // Invites: used, tampered, expired.
    let (inv, _) = a.trust.invite(vec![], 60_000, None)?;
    let (acc_c, _) = c.trust.accept(&inv, "alice", "carol", vec![])?;
    assert!(matches!(
        a.trust.open(&acc_c.text)?,
        Opened::FriendAdded { .. }
    ));
    let d = peer()?;
    let (acc_d, _) = d.trust.accept(&inv, "alice", "dave", vec![])?;
    assert_eq!(
        refusal(a.trust.open(&acc_d.text)),
        Some(Refusal::InviteUsed)
    );
    assert_eq!(a.trust.store().friends()?.len(), 2);
    assert_eq!(
        refusal(c.trust.accept(&inv, "alice2", "carol", vec![])),
        Some(Refusal::InviteUsed)
    );
    let mut bad = inv.clone();
    bad.replace_range(20..21, if &inv[20..21] == "A" { "B" } else { "A" });
    assert!(d.trust.accept(&bad, "x", "dave", vec![]).is_err());
    let (short, _) = a.trust.invite(vec![], 0, None)?;
    assert_eq!(
        refusal(d.trust.accept(&short, "y", "dave", vec![])),
        Some(Refusal::InviteExpired)
    );
    assert!(d.trust.store().friend("x")?.is_none() && d.trust.store().friend("y")?.is_none());
    let (refused, accepted) = a.trust.counts();
    assert!(refused.contains(&("bad_signature", 1)) && refused.contains(&("replay", 1)));
    assert!(accepted >= 2);
    Ok(())
}

fn fixed_pair() -> (KeyPair, KeyPair, Envelope) {
    let s = KeyPair::generate(0);
    let r = KeyPair::generate(0);
    let env = seal::seal(
        Draft {
            header: Header {
                kind: Kind::Message,
                hops: 0,
                sender: PeerId([1; 16]),
                sender_key: s.public().key_id(),
                recipient: PeerId([2; 16]),
                recipient_key: r.public().key_id(),
                id: [3; 16],
                ts_ms: 1_700_000_000_000,
                epk: [0; 32],
            },
            plaintext: br#"{"text":"property"}"#,
        },
        &s,
        &r.public(),
    )
    .unwrap_or_else(|e| panic!("seal: {e}"));
    (s, r, env)
}

/// Full check of a binary envelope as a receiver does it (with the pinned sender and our key).
fn accepts(bytes: &[u8], s: &KeyPair, r: &KeyPair, original: &Envelope) -> bool {
    let Ok(env) = Envelope::from_bytes(bytes) else {
        return false;
    };
    env.header.recipient == original.header.recipient
        && env.header.sender == original.header.sender
        && env.header.sender_key == s.public().key_id()
        && env.header.recipient_key == r.public().key_id()
        && seal::verify(&env, &s.public()).is_ok()
        && seal::open(&env, r).is_ok()
}

#[test]
fn every_byte_flipped_is_refused() {
    let (s, r, env) = fixed_pair();
    let bytes = env.to_bytes();
    assert!(accepts(&bytes, &s, &r, &env));
    for i in 0..bytes.len() {
        for bit in [0, 7] {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            assert!(
                !accepts(&b, &s, &r, &env),
                "flip of bit {bit} in byte {i} accepted"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn any_changed_byte_is_refused(pos in any::<usize>(), xor in 1u8..=255) {
        let env = FIXED.with(|f| f.2.clone());
        let mut b = env.to_bytes();
        let i = pos % b.len();
        b[i] ^= xor;
        let ok = FIXED.with(|f| accepts(&b, &f.0, &f.1, &f.2));
        prop_assert!(!ok, "byte {} ^ {:#x} accepted", i, xor);
    }

    #[test]
    fn random_text_never_panics(s in ".{0,400}") {
        let _ = Envelope::from_text(&s);
        let _ = super::invite::Invite::from_text(&s, 0);
        let _ = super::payload::ReceiptBody::parse(s.as_bytes());
    }
}

thread_local! {
    static FIXED: (KeyPair, KeyPair, Envelope) = fixed_pair();
}
