//! `audit [--verify] [--limit N]`: the hash-chained log of inbound decisions.

use super::{out, Ctx};
use clap::Args;
use clawlink::client::ClientError;
use clawlink::proto::{AuditRecord, AuditRequest, AuditVerdict, Request};
use std::process::ExitCode;

#[derive(Args)]
pub struct AuditArgs {
    /// Check the whole chain; exit 1 when it was truncated or edited.
    #[arg(long)]
    verify: bool,
    /// Show at most this many of the newest records.
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

pub fn audit(ctx: &Ctx, a: AuditArgs) -> Result<ExitCode, ClientError> {
    let mut client = ctx.connect()?;
    if a.verify {
        let v: AuditVerdict = client.call(&Request::Audit(AuditRequest::Verify), None)?;
        let human = match &v.problem {
            None => format!("audit log intact: {} records", v.records),
            Some(p) => format!("audit log NOT intact: {p}"),
        };
        if ctx.json {
            out::json(&v);
        } else if v.ok {
            println!("{human}");
        } else {
            eprintln!("clawlink: {human}");
        }
        return Ok(if v.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let records: Vec<AuditRecord> = client.call(
        &Request::Audit(AuditRequest::List {
            limit: Some(a.limit),
        }),
        None,
    )?;
    if ctx.json {
        out::json(&records);
        return Ok(ExitCode::SUCCESS);
    }
    for r in &records {
        let v = if r.verified { "verified" } else { "unverified" };
        println!(
            "{:>6} {} {:<8} {:<10} {:<9} msg {:<6} {} ({v}) {}",
            r.seq,
            r.time,
            r.source,
            r.action,
            r.level,
            r.message,
            r.sender,
            r.session.as_deref().unwrap_or("-")
        );
    }
    Ok(ExitCode::SUCCESS)
}
