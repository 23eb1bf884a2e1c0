//! Generic key commands: DEL EXISTS TYPE EXPIRE TTL SCAN RENAME ...

use super::{CmdResult, CommandSpec, Ctx, flags::*};
use crate::cmd;
use crate::protocol::Args;

const KS: &[&str] = &["keyspace"];

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("del", -2, WRITE, (1, -1, 1), KS, "generic", "1.0.0", "Deletes one or more keys.", del),
    cmd!("exists", -2, READONLY | FAST, (1, -1, 1), KS, "generic", "1.0.0", "Determines whether one or more keys exist.", exists),
];

fn del(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let db = ctx.db();
    let mut n = 0;
    for key in args.iter().skip(1) {
        let (h, mut s) = db.lock(key);
        if s.remove(h, key, ctx.now).is_some() {
            n += 1;
        }
    }
    ctx.dirty(n as u64);
    ctx.out.int(n);
    Ok(())
}

fn exists(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let db = ctx.db();
    let mut n = 0;
    for key in args.iter().skip(1) {
        let (h, mut s) = db.lock(key);
        if s.lookup(h, key, ctx.now).is_some() {
            n += 1;
        }
    }
    ctx.out.int(n);
    Ok(())
}
