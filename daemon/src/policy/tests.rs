use super::*;
use crate::store::Db;

fn msg(id: u64, source: &str, from: &str, meta: Value) -> InboxMessage {
    InboxMessage {
        id,
        source: source.into(),
        source_id: None,
        from: from.into(),
        message: format!("text {id}"),
        received_at: String::new(),
        read: false,
        meta: meta.as_object().cloned().unwrap_or_default(),
    }
}

#[tokio::test]
async fn routes_follow_levels_and_own_messages_go_nowhere() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let db = Db::open(&tmp.path().join("data"))?;
    let e = Engine::open(&db)?;
    let set = Settings::default();
    let held = e.decide(
        &msg(1, "relay", "bob", serde_json::json!({"to":"me"})),
        None,
        &set,
    )?;
    assert_eq!(held.route, Route::Hold);
    assert_eq!(e.store.held()?.len(), 1);
    let own = e.decide(
        &msg(2, "relay", "me", serde_json::json!({"to":"me"})),
        None,
        &set,
    )?;
    assert_eq!(own.route, Route::Own);
    let own = e.decide(
        &msg(
            3,
            "nexus",
            "me",
            serde_json::json!({"own":true,"session":"S"}),
        ),
        None,
        &set,
    )?;
    assert_eq!(own.route, Route::Own);
    let hook = e.decide(
        &msg(4, "webhook", "tames", serde_json::json!({})),
        None,
        &set,
    )?;
    assert_eq!(hook.route, Route::Notice);
    // A Nexus server's "verified" proves nothing; a friend's verified envelope does.
    let nx = e.decide(
        &msg(
            5,
            "nexus",
            "x",
            serde_json::json!({"verified":true,"session":"S"}),
        ),
        None,
        &set,
    )?;
    assert_eq!(nx.route, Route::Hold);
    let friend = e.decide(
        &msg(6, "friend", "carol", serde_json::json!({"verified":true})),
        None,
        &set,
    )?;
    match &friend.route {
        Route::Session {
            key,
            text,
            converse,
        } => {
            assert!(key.starts_with("hook:clawlink:friend-carol-"));
            assert!(text.contains("text 6") && text.contains("verified sender"));
            assert!(!converse);
        }
        r => panic!("{r:?}"),
    }
    e.record(
        &msg(6, "friend", "carol", serde_json::json!({})),
        &friend,
        "delivered",
    )?;
    e.audit.sync()?;
    assert!(e.audit.verify()?.ok);
    Ok(())
}

#[tokio::test]
async fn converse_drops_to_notify_at_the_exchange_cap_until_reset() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let db = Db::open(&tmp.path().join("data"))?;
    let e = Engine::open(&db)?;
    let set = Settings::default();
    e.store.set_rule("friend:bot", Level::Converse)?;
    let agent_written = |id| {
        msg(
            id,
            "friend",
            "bot",
            serde_json::json!({"hops": 1, "verified": true}),
        )
    };
    for id in 1..=set.limits.max_exchanges as u64 {
        let o = e.decide(&agent_written(id), None, &set)?;
        assert!(
            matches!(o.route, Route::Session { converse: true, .. }),
            "{id}: {o:?}"
        );
    }
    let o = e.decide(&agent_written(99), None, &set)?;
    assert_eq!(o.route, Route::Notice, "{:?}", o.decision);
    let o = e.decide(&agent_written(100), None, &set)?;
    assert_eq!(o.route, Route::Notice, "stays at notify");
    e.store.set_exchanges("friend:bot", 0)?;
    let o = e.decide(&agent_written(101), None, &set)?;
    assert!(
        matches!(o.route, Route::Session { .. }),
        "reset by the owner"
    );
    Ok(())
}

#[tokio::test]
async fn converse_is_deliver_for_senders_that_cannot_be_answered() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let db = Db::open(&tmp.path().join("data"))?;
    let e = Engine::open(&db)?;
    let set = Settings::default();
    e.store.set_rule("relay:bot", Level::Converse)?;
    e.store.set_rule("a2a:hermes", Level::Converse)?;
    let o = e.decide(&msg(1, "relay", "bot", serde_json::json!({})), None, &set)?;
    assert!(
        matches!(
            o.route,
            Route::Session {
                converse: false,
                ..
            }
        ),
        "{o:?}"
    );
    assert_eq!(o.decision.applied, Level::Deliver);
    assert!(o.decision.reason.contains("only friends and A2A peers"));
    let o = e.decide(&msg(2, "a2a", "hermes", serde_json::json!({})), None, &set)?;
    assert!(matches!(o.route, Route::Session { converse: true, .. }));
    Ok(())
}

#[tokio::test]
async fn over_the_rate_drops_to_notify() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let db = Db::open(&tmp.path().join("data"))?;
    let e = Engine::open(&db)?;
    let mut set = Settings::default();
    set.limits.rate_per_minute = 2;
    e.store.set_rule("relay:*", Level::Deliver)?;
    let routes: Vec<Route> = (1..=4)
        .map(|id| {
            e.decide(&msg(id, "relay", "fast", serde_json::json!({})), None, &set)
                .map(|o| o.route)
        })
        .collect::<Result<_>>()?;
    assert!(matches!(routes[1], Route::Session { .. }));
    assert_eq!(routes[2], Route::Notice);
    assert_eq!(routes[3], Route::Notice);
    Ok(())
}

#[test]
fn a_friend_with_a_reused_name_gets_a_session_of_its_own() {
    let m = |peer: &str| {
        msg(
            1,
            "friend",
            "carol",
            serde_json::json!({"verified": true, "peer": peer}),
        )
    };
    let (a, b) = (sender_of(&m("00aa")), sender_of(&m("00bb")));
    assert_eq!(a.key(), b.key(), "the policy names both friend:carol");
    let (ka, kb) = (frame::session_key(&a), frame::session_key(&b));
    assert!(ka.starts_with("hook:clawlink:friend-carol-"), "{ka}");
    assert_ne!(ka, kb, "but their agent sessions differ");
    assert_eq!(sender_of(&m("not hex!")).peer, None);
}
