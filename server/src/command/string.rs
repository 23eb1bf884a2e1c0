//! String commands: GET SET and the rest of the string family.

use super::{CmdError, CmdResult, CommandSpec, Ctx, arg_i64, flags::*, is};
use crate::cmd;
use crate::protocol::Args;
use crate::store::{Ttl, Value};

const STR: &[&str] = &["string"];

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("get", 2, READONLY | FAST, (1, 1, 1), STR, "string", "1.0.0", "Returns the string value of a key.", get),
    cmd!("set", -3, WRITE | DENYOOM, (1, 1, 1), STR, "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", set),
];

/// Writes the string at `key` (or null) into the reply; WRONGTYPE for other types.
fn get(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let touch = ctx.touch();
    let dbs = ctx.shared.store.dbs();
    let (h, mut shard) = dbs[ctx.conn.db].lock(key);
    match shard.read(h, key, ctx.now, touch) {
        None => ctx.out.null(),
        Some(i) => match &shard.entry(i).value {
            Value::Str(s) => ctx.out.bulk(s.as_slice()),
            #[allow(unreachable_patterns)]
            _ => return Err(CmdError::WrongType),
        },
    }
    Ok(())
}

/// Expiry options shared by SET and GETEX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireOpt {
    None,
    Keep,
    Persist,
    At(u64),
}

/// Converts a relative or absolute time argument to an absolute ms expiry,
/// with Redis's "invalid expire time" checks.
pub fn expire_at(
    now: u64,
    value: &[u8],
    unit_ms: u64,
    absolute: bool,
    cmd: &str,
) -> Result<u64, CmdError> {
    let v = arg_i64(value)?;
    if v <= 0 {
        return Err(CmdError::InvalidExpire(cmd.into()));
    }
    let ms = (v as u64)
        .checked_mul(unit_ms)
        .filter(|&m| m <= i64::MAX as u64)
        .ok_or_else(|| CmdError::InvalidExpire(cmd.into()))?;
    if absolute {
        Ok(ms)
    } else {
        now.checked_add(ms)
            .filter(|&m| m <= i64::MAX as u64)
            .ok_or_else(|| CmdError::InvalidExpire(cmd.into()))
    }
}

fn set(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (key, val) = (args.get(1), args.get(2));
    let mut nx = false;
    let mut xx = false;
    let mut get = false;
    let mut exp = ExpireOpt::None;
    let mut i = 3;
    while i < args.len() {
        let a = args.get(i);
        let next = (i + 1 < args.len()).then(|| args.get(i + 1));
        let timed = |unit: u64, abs: bool| -> Result<ExpireOpt, CmdError> {
            match next {
                Some(v) => Ok(ExpireOpt::At(expire_at(ctx.now, v, unit, abs, "set")?)),
                None => Err(CmdError::Syntax),
            }
        };
        if is(a, "nx") && !xx {
            nx = true;
        } else if is(a, "xx") && !nx {
            xx = true;
        } else if is(a, "get") {
            get = true;
        } else if is(a, "keepttl") && exp == ExpireOpt::None {
            exp = ExpireOpt::Keep;
        } else if exp == ExpireOpt::None && next.is_some() && (is(a, "ex") || is(a, "px") || is(a, "exat") || is(a, "pxat")) {
            let (unit, abs) = if is(a, "ex") {
                (1000, false)
            } else if is(a, "px") {
                (1, false)
            } else if is(a, "exat") {
                (1000, true)
            } else {
                (1, true)
            };
            exp = timed(unit, abs)?;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let dbs = ctx.shared.store.dbs();
    let (h, mut shard) = dbs[ctx.conn.db].lock(key);
    let existing = shard.lookup(h, key, ctx.now);
    if get {
        match existing {
            Some(idx) => match &shard.entry(idx).value {
                Value::Str(s) => ctx.out.bulk(s.as_slice()),
                #[allow(unreachable_patterns)]
                _ => return Err(CmdError::WrongType),
            },
            None => ctx.out.null(),
        }
    }
    if (nx && existing.is_some()) || (xx && existing.is_none()) {
        if !get {
            ctx.out.null();
        }
        return Ok(());
    }
    let ttl = match exp {
        ExpireOpt::None | ExpireOpt::Persist => Ttl::At(0),
        ExpireOpt::Keep => Ttl::Keep,
        ExpireOpt::At(at) => Ttl::At(at),
    };
    shard.set(h, key, Value::str(val), ttl, ctx.now);
    drop(shard);
    ctx.dirty(1);
    if !get {
        ctx.out.ok();
    }
    Ok(())
}
