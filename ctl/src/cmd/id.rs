//! `id` and `id rotate`: this daemon's clawlink identity.

use super::{out, Ctx};
use clap::Subcommand;
use clawlink::client::ClientError;
use clawlink::proto::{IdReply, IdRequest, Request, RotateReply};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum IdCmd {
    /// Make new keys; each friend gets a key update signed by the old key.
    Rotate,
}

pub fn id(ctx: &Ctx, cmd: Option<IdCmd>) -> Result<ExitCode, ClientError> {
    let mut client = ctx.connect()?;
    match cmd {
        None => {
            let r: IdReply = client.call(&Request::Id(IdRequest::Show), None)?;
            if ctx.json {
                out::json(&r);
            } else {
                println!("id         {}", r.id);
                println!("epoch      {}", r.epoch);
                println!("key id     {}", r.key_id);
                println!("sign key   {} (Ed25519)", r.sign_key);
                println!("seal key   {} (X25519)", r.seal_key);
                if r.addresses.is_empty() {
                    println!("addresses  none (register a relay id or join a Nexus session)");
                }
                for a in &r.addresses {
                    println!("address    {a}");
                }
            }
        }
        Some(IdCmd::Rotate) => {
            let r: RotateReply = client.call(&Request::Id(IdRequest::Rotate), None)?;
            out::done(
                ctx,
                &r,
                &format!(
                    "new keys at epoch {} (key id {}); key updates for {} friends",
                    r.epoch,
                    r.key_id,
                    r.updates.len()
                ),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
