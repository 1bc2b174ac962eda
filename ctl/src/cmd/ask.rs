//! `ask --to CONTACT "question" [--timeout 120s]`: send to an A2A contact through the outbox,
//! wait for the peer's task to end, and print the answer.
//!
//! Exit codes: 0 answered (completed); 1 failed, rejected, canceled, auth-required,
//! input-required or not deliverable (the message says which, and the peer's reason);
//! 3 no outcome before the timeout (the message stays in the outbox or the task stays
//! followed, and the answer lands in the inbox when it comes).

use super::send::EXIT_QUEUED;
use super::{out, Ctx};
use clap::Args;
use clawlink::client::ClientError;
use clawlink::proto::{A2aRequest, AskParams, AskReply, Request};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args)]
pub struct AskArgs {
    /// An A2A contact (`clawlink contacts add --name NAME --a2a URL`).
    #[arg(long)]
    to: String,
    /// The question.
    question: String,
    /// Longest wait for the answer, e.g. 120s, 5m.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

pub fn ask(ctx: &Ctx, a: AskArgs) -> Result<ExitCode, ClientError> {
    let secs = a.timeout.as_secs().max(1);
    let req = Request::A2a(A2aRequest::Ask(AskParams {
        to: a.to.clone(),
        message: a.question,
        timeout_secs: Some(secs),
    }));
    let r: AskReply = ctx
        .connect()?
        .call(&req, Some(Duration::from_secs(secs + 60)))?;
    let code = match r.state.as_str() {
        "completed" => ExitCode::SUCCESS,
        "queued" | "submitted" | "working" | "unknown" => ExitCode::from(EXIT_QUEUED),
        _ => ExitCode::FAILURE,
    };
    if ctx.json {
        out::json(&r);
        return Ok(code);
    }
    match r.state.as_str() {
        "completed" => println!("{}", r.answer.as_deref().unwrap_or("")),
        "queued" => eprintln!(
            "no answer yet: the message is queued in the outbox (id {}); the answer will land in the inbox",
            r.id
        ),
        "submitted" | "working" | "unknown" => eprintln!(
            "no answer within {secs}s: {} has the task (state {}); the answer will land in the inbox",
            a.to, r.state
        ),
        s => eprintln!(
            "{} did not answer: task {} ({})",
            a.to,
            s,
            r.answer.as_deref().unwrap_or("no reason given")
        ),
    }
    if let Some(e) = &r.error {
        eprintln!("  {e}");
        if let Some(h) = &e.hint {
            eprintln!("  hint: {h}");
        }
    }
    Ok(code)
}
