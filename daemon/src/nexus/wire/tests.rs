use super::*;
use serde_json::json;

fn written<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serializable")
}

#[test]
fn server_answers_keep_their_wire_form() {
    let m = Message {
        agent_id: "a".into(),
        cursor: Some(Cursor::of(3)),
        expires_at: Some("e".into()),
        id: Some("m1".into()),
        json: None,
        sent_at: "s".into(),
        text: Some("hi".into()),
        verified: true,
    };
    let page = PollAnswer {
        members: None,
        messages: vec![m],
        next_cursor: Some(Cursor::of(3)),
    };
    assert_eq!(
        written(&page),
        r#"{"messages":[{"agentId":"a","cursor":"3","expiresAt":"e","id":"m1","sentAt":"s","text":"hi","verified":true}],"nextCursor":"3"}"#
    );
    let created = CreateAnswer {
        created_at: "c".into(),
        expires_at: Some("e".into()),
        max_agents: 2,
        session_id: Some("sid".into()),
        state: "active".into(),
        ttl: Some(60),
        ..Default::default()
    };
    assert_eq!(
        written(&created),
        r#"{"createdAt":"c","expiresAt":"e","maxAgents":2,"sessionId":"sid","state":"active","ttl":60}"#
    );
    let status = SessionStatus::default();
    assert!(written(&status).contains(r#""creatorAgentId":null"#));
    assert_eq!(written(&RenewRequest::default()), "{}");
    assert_eq!(
        written(&PairStatusAnswer {
            state: PairState::Expired
        }),
        r#"{"state":"expired"}"#
    );
}

#[test]
fn client_reads_other_servers_leniently() {
    let page: PollAnswer = serde_json::from_value(json!({
        "messages": [{"agentId": "a", "cursor": 7, "json": null, "verified": "yes"}, 3],
        "nextCursor": 7,
    }))
    .expect("page");
    assert_eq!(page.messages.len(), 1);
    let m = &page.messages[0];
    assert_eq!(m.cursor.as_ref().map(Cursor::text).as_deref(), Some("7"));
    assert_eq!(m.json, Some(serde_json::Value::Null));
    assert!(!m.verified && m.text.is_none());
    assert_eq!(page.next_cursor, Some(Cursor::Number(7)));
    let health: Health =
        serde_json::from_value(json!({"capabilities": {"longPoll": true}})).expect("health");
    assert!(health.capabilities.long_poll && health.capabilities.long_poll_max_wait.is_none());
    let e: ErrorBody = serde_json::from_value(json!({"error": "session_not_found"})).expect("e");
    assert_eq!(e.error, "session_not_found");
}
