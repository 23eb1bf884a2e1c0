//! Server commands: INFO CONFIG COMMAND DBSIZE FLUSHALL SHUTDOWN ...

use super::{Action, CmdResult, CommandSpec, Ctx, flags::*};
use crate::cmd;
use crate::protocol::Args;

const NONE: &[&str] = &[];

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY | NO_PAUSE, (0, 0, 0), NONE, "server", "1.0.0", "Synchronously saves the database(s) to disk and shuts down the Redis server.", shutdown),
];

fn shutdown(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.conn.action = Some(Action::Shutdown);
    Ok(())
}
