use super::*;

fn entry(n: u64) -> Entry {
    Entry {
        source: "relay".into(),
        sender: "relay:alice".into(),
        verified: false,
        level: "review".into(),
        action: "held".into(),
        session: None,
        message: n,
        content_sha256: sha256_hex(&format!("secret text {n}")),
    }
}

async fn log_with(n: u64) -> anyhow::Result<(tempfile::TempDir, Db, AuditLog)> {
    let tmp = tempfile::tempdir()?;
    let db = Db::open(&tmp.path().join("data"))?;
    let log = AuditLog::open(&db)?;
    for i in 1..=n {
        log.append(entry(i))?;
    }
    log.sync()?;
    db.durable().await?;
    Ok((tmp, db, log))
}

fn rewrite(log: &AuditLog, f: impl FnOnce(&mut Vec<String>)) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(log.path())?;
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    f(&mut lines);
    let mut out = lines.join("\n");
    out.push('\n');
    std::fs::write(log.path(), out)?;
    Ok(())
}

#[tokio::test]
async fn an_intact_log_verifies_and_holds_no_content() -> anyhow::Result<()> {
    let (_tmp, db, log) = log_with(3).await?;
    assert_eq!(
        log.verify()?,
        Verdict {
            ok: true,
            records: 3,
            problem: None
        }
    );
    let text = std::fs::read_to_string(log.path())?;
    assert!(!text.contains("secret text"));
    drop(log);
    let again = AuditLog::open(&db)?;
    assert_eq!(
        again.append(entry(4))?.seq,
        4,
        "the chain continues after a reopen"
    );
    again.sync()?;
    assert!(again.verify()?.ok);
    Ok(())
}

#[tokio::test]
async fn truncation_edits_and_removals_fail() -> anyhow::Result<()> {
    let (_tmp, _db, log) = log_with(4).await?;
    rewrite(&log, |l| {
        l.pop();
    })?;
    let v = log.verify()?;
    assert!(
        !v.ok && v.problem.as_deref().unwrap_or("").contains("truncated"),
        "{v:?}"
    );

    let (_tmp, _db, log) = log_with(4).await?;
    rewrite(&log, |l| l[1] = l[1].replace("\"held\"", "\"delivered\""))?;
    let v = log.verify()?;
    assert!(
        !v.ok && v.problem.as_deref().unwrap_or("").contains("edited"),
        "{v:?}"
    );

    let (_tmp, _db, log) = log_with(4).await?;
    rewrite(&log, |l| {
        l.remove(1);
    })?;
    assert!(!log.verify()?.ok);

    let (_tmp, _db, log) = log_with(2).await?;
    rewrite(&log, |l| l[1].push_str("garbage"))?;
    assert!(!log.verify()?.ok);
    Ok(())
}
