//! String commands: GET SET and the rest of the string family.

use super::{CmdError, CmdResult, CommandSpec, Ctx, arg_i64, flags::*, is};
use crate::cmd;
use crate::notify;
use crate::protocol::Args;
use crate::store::{CompactBytes, Ttl, Value, hash_key};

const STR: &[&str] = &["string"];

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    cmd!("get", 2, READONLY | FAST, (1, 1, 1), STR, "string", "1.0.0", "Returns the string value of a key.", get),
    cmd!("set", -3, WRITE | DENYOOM, (1, 1, 1), STR, "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", set),
    cmd!("setnx", 3, WRITE | DENYOOM | FAST, (1, 1, 1), STR, "string", "1.0.0", "Set the string value of a key only when the key doesn't exist.", setnx),
    cmd!("setex", 4, WRITE | DENYOOM, (1, 1, 1), STR, "string", "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", setex),
    cmd!("psetex", 4, WRITE | DENYOOM, (1, 1, 1), STR, "string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", psetex),
    cmd!("mget", -2, READONLY | FAST, (1, -1, 1), STR, "string", "1.0.0", "Atomically returns the string values of one or more keys.", mget),
    cmd!("mset", -3, WRITE | DENYOOM, (1, -1, 2), STR, "string", "1.0.1", "Atomically creates or modifies the string values of one or more keys.", mset),
    cmd!("msetnx", -3, WRITE | DENYOOM, (1, -1, 2), STR, "string", "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.", msetnx),
    cmd!("getset", 3, WRITE | DENYOOM | FAST, (1, 1, 1), STR, "string", "1.0.0", "Returns the previous string value of a key after setting it to a new value.", getset),
    cmd!("getdel", 2, WRITE | FAST, (1, 1, 1), STR, "string", "6.2.0", "Returns the string value of a key after deleting the key.", getdel),
    cmd!("getex", -2, WRITE | FAST, (1, 1, 1), STR, "string", "6.2.0", "Returns the string value of a key after setting its expiration time.", getex),
    cmd!("append", 3, WRITE | DENYOOM | FAST, (1, 1, 1), STR, "string", "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.", append),
    cmd!("strlen", 2, READONLY | FAST, (1, 1, 1), STR, "string", "2.2.0", "Returns the length of a string value.", strlen),
    cmd!("incr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), STR, "string", "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", incr),
    cmd!("decr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), STR, "string", "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", decr),
    cmd!("incrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), STR, "string", "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", incrby),
    cmd!("decrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), STR, "string", "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", decrby),
    cmd!("incrbyfloat", 3, WRITE | DENYOOM | FAST, (1, 1, 1), STR, "string", "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", incrbyfloat),
    cmd!("getrange", 4, READONLY, (1, 1, 1), STR, "string", "2.4.0", "Returns a substring of the string stored at a key.", getrange),
    cmd!("setrange", 4, WRITE | DENYOOM, (1, 1, 1), STR, "string", "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", setrange),
    cmd!("substr", 4, READONLY, (1, 1, 1), STR, "string", "1.0.0", "Returns a substring from a string value.", getrange),
    cmd!("lcs", -3, READONLY, (1, 2, 1), STR, "string", "7.0.0", "Finds the longest common substring.", lcs),
];

/// The string held by a value, or WRONGTYPE.
fn str_of(v: &Value) -> Result<&CompactBytes, CmdError> {
    v.as_str().ok_or(CmdError::WrongType)
}

/// Largest string APPEND and SETRANGE may build (`proto-max-bulk-len`).
fn max_len(ctx: &Ctx<'_>) -> u64 {
    ctx.shared.config.read().proto_max_bulk_len
}

fn too_big() -> CmdError {
    CmdError::msg("string exceeds maximum allowed size (proto-max-bulk-len)")
}

/// Writes the string at `key` (or null) into the reply; WRONGTYPE for other types.
fn get(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let touch = ctx.touch();
    let dbs = ctx.shared.store.dbs();
    let (h, mut shard) = dbs[ctx.conn.db].lock(key);
    match shard.read(h, key, ctx.now, touch) {
        None => ctx.out.null(),
        Some(i) => ctx.out.bulk(str_of(&shard.entry(i).value)?.as_slice()),
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

/// Options of SET (`is_set`) or GETEX, parsed with the exact compatibility
/// rules of Redis's `parseExtendedStringArgumentsOrReply`: repeating the same
/// expiry option is allowed (the last wins), mixing two kinds is not.
#[derive(Debug, Default)]
struct StrOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// (unit in ms, absolute, raw argument) of the last EX/PX/EXAT/PXAT.
    expire: Option<(u64, bool, &'a [u8])>,
}

fn parse_str_opts<'a>(args: &Args<'a>, from: usize, is_set: bool) -> Result<StrOpts<'a>, CmdError> {
    let mut o = StrOpts::default();
    // Which of EX/PX/EXAT/PXAT was given, by (unit, absolute).
    let mut kind: Option<(u64, bool)> = None;
    let mut i = from;
    while i < args.len() {
        let a = args.get(i);
        let has_next = i + 1 < args.len();
        let timed = |unit: u64, abs: bool| -> bool {
            has_next && !o.keepttl && !o.persist && kind.is_none_or(|k| k == (unit, abs))
        };
        if is_set && is(a, "nx") && !o.xx {
            o.nx = true;
        } else if is_set && is(a, "xx") && !o.nx {
            o.xx = true;
        } else if is_set && is(a, "get") {
            o.get = true;
        } else if is_set && is(a, "keepttl") && kind.is_none() {
            o.keepttl = true;
        } else if !is_set && is(a, "persist") && kind.is_none() {
            o.persist = true;
        } else {
            let spec = if is(a, "ex") {
                Some((1000, false))
            } else if is(a, "px") {
                Some((1, false))
            } else if is(a, "exat") {
                Some((1000, true))
            } else if is(a, "pxat") {
                Some((1, true))
            } else {
                None
            };
            match spec {
                Some((unit, abs)) if timed(unit, abs) => {
                    kind = Some((unit, abs));
                    o.expire = Some((unit, abs, args.get(i + 1)));
                    i += 1;
                }
                _ => return Err(CmdError::Syntax),
            }
        }
        i += 1;
    }
    Ok(o)
}

fn set(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (key, val) = (args.get(1), args.get(2));
    let o = parse_str_opts(args, 3, true)?;
    let exp = match o.expire {
        Some((unit, abs, v)) => ExpireOpt::At(expire_at(ctx.now, v, unit, abs, "set")?),
        None if o.keepttl => ExpireOpt::Keep,
        None => ExpireOpt::None,
    };
    let touch = ctx.touch();
    let dbs = ctx.shared.store.dbs();
    let (h, mut shard) = dbs[ctx.conn.db].lock(key);
    let existing = if o.get {
        let found = shard.read(h, key, ctx.now, touch);
        match found {
            Some(idx) => ctx.out.bulk(str_of(&shard.entry(idx).value)?.as_slice()),
            None => ctx.out.null(),
        }
        found
    } else {
        shard.lookup(h, key, ctx.now)
    };
    if (o.nx && existing.is_some()) || (o.xx && existing.is_none()) {
        if !o.get {
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
    ctx.notify(notify::STRING, "set", key);
    if let ExpireOpt::At(at) = exp {
        ctx.notify(notify::GENERIC, "expire", key);
        if at <= ctx.now {
            // An absolute time in the past deletes the key, as Redis does.
            // Redis reports it as expired (by the next access); a time before
            // now already made the lookup expire it, and report it.
            if shard.remove(h, key, ctx.now).is_some() {
                ctx.notify(notify::EXPIRED, "expired", key);
            }
        }
    }
    drop(shard);
    ctx.dirty(1);
    if !o.get {
        ctx.out.ok();
    }
    Ok(())
}

fn setnx(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    if shard.lookup(h, key, ctx.now).is_some() {
        ctx.out.int(0);
        return Ok(());
    }
    shard.insert_new(h, key, Value::str(args.get(2)), 0, ctx.now);
    drop(shard);
    ctx.notify(notify::STRING, "set", key);
    ctx.dirty(1);
    ctx.out.int(1);
    Ok(())
}

/// SETEX and PSETEX: SET with a mandatory relative expiry.
fn set_with_expire(ctx: &mut Ctx<'_>, args: &Args<'_>, unit: u64, name: &str) -> CmdResult {
    let key = args.get(1);
    let at = expire_at(ctx.now, args.get(2), unit, false, name)?;
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    shard.set(h, key, Value::str(args.get(3)), Ttl::At(at), ctx.now);
    drop(shard);
    ctx.notify(notify::STRING, "set", key);
    ctx.notify(notify::GENERIC, "expire", key);
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}

fn setex(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    set_with_expire(ctx, args, 1000, "setex")
}

fn psetex(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    set_with_expire(ctx, args, 1, "psetex")
}

fn mget(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let touch = ctx.touch();
    let db = ctx.db();
    let hashes: Vec<u64> = args.iter().skip(1).map(hash_key).collect();
    let mut lock = db.lock_many(&hashes);
    ctx.out.array(hashes.len());
    for (key, &h) in args.iter().skip(1).zip(&hashes) {
        let shard = lock.shard(h);
        match shard.read(h, key, ctx.now, touch) {
            // MGET answers null for values of other types instead of failing.
            Some(i) => match shard.entry(i).value.as_str() {
                Some(s) => ctx.out.bulk(s.as_slice()),
                None => ctx.out.null(),
            },
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// MSET and MSETNX; with `nx`, nothing is written if any key exists.
fn mset_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, nx: bool) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::Arity(if nx { "msetnx" } else { "mset" }.into()));
    }
    let db = ctx.db();
    let pairs = (args.len() - 1) / 2;
    let hashes: Vec<u64> = (0..pairs).map(|p| hash_key(args.get(1 + 2 * p))).collect();
    let mut lock = db.lock_many(&hashes);
    if nx {
        for (p, &h) in hashes.iter().enumerate() {
            if lock
                .shard(h)
                .lookup(h, args.get(1 + 2 * p), ctx.now)
                .is_some()
            {
                ctx.out.int(0);
                return Ok(());
            }
        }
    }
    for (p, &h) in hashes.iter().enumerate() {
        let (key, val) = (args.get(1 + 2 * p), args.get(2 + 2 * p));
        lock.shard(h)
            .set(h, key, Value::str(val), Ttl::At(0), ctx.now);
        ctx.notify(notify::STRING, "set", key);
    }
    drop(lock);
    ctx.dirty(pairs as u64);
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

fn mset(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    mset_generic(ctx, args, false)
}

fn msetnx(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    mset_generic(ctx, args, true)
}

fn getset(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    match shard.read(h, key, ctx.now, touch) {
        Some(i) => ctx.out.bulk(str_of(&shard.entry(i).value)?.as_slice()),
        None => ctx.out.null(),
    }
    shard.set(h, key, Value::str(args.get(2)), Ttl::At(0), ctx.now);
    drop(shard);
    ctx.notify(notify::STRING, "set", key);
    ctx.dirty(1);
    Ok(())
}

fn getdel(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.read(h, key, ctx.now, touch) else {
        ctx.out.null();
        return Ok(());
    };
    ctx.out.bulk(str_of(&shard.entry(i).value)?.as_slice());
    shard.remove_at(h, i);
    drop(shard);
    ctx.notify(notify::GENERIC, "del", key);
    ctx.dirty(1);
    Ok(())
}

fn getex(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let o = parse_str_opts(args, 2, false)?;
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.read(h, key, ctx.now, touch) else {
        // Redis validates the expire time only once the key is found.
        ctx.out.null();
        return Ok(());
    };
    str_of(&shard.entry(i).value)?;
    let at = match o.expire {
        Some((unit, abs, v)) => Some(expire_at(ctx.now, v, unit, abs, "getex")?),
        None => None,
    };
    ctx.out.bulk(str_of(&shard.entry(i).value)?.as_slice());
    match at {
        Some(at) if at <= ctx.now => {
            shard.remove_at(h, i);
            ctx.notify(notify::GENERIC, "del", key);
            ctx.dirty(1);
        }
        Some(at) => {
            shard.set_expire(i, at);
            ctx.notify(notify::GENERIC, "expire", key);
            ctx.dirty(1);
        }
        None if o.persist && shard.entry(i).expire_at().is_some() => {
            shard.set_expire(i, 0);
            ctx.notify(notify::GENERIC, "persist", key);
            ctx.dirty(1);
        }
        None => {}
    }
    Ok(())
}

fn append(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (key, more) = (args.get(1), args.get(2));
    let max = max_len(ctx);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let len = match shard.lookup(h, key, ctx.now) {
        None => {
            shard.insert_new(h, key, Value::str(more), 0, ctx.now);
            more.len()
        }
        Some(i) => {
            let cur = str_of(&shard.entry(i).value)?.len();
            if (cur + more.len()) as u64 > max {
                return Err(too_big());
            }
            shard.value_mut(i, |v| {
                if let Some(s) = v.as_str_mut() {
                    s.extend(more);
                }
            });
            shard.set_encoding_flags(i, crate::store::ENC_RAW);
            cur + more.len()
        }
    };
    drop(shard);
    ctx.notify(notify::STRING, "append", key);
    ctx.dirty(1);
    ctx.out.int(len as i64);
    Ok(())
}

fn strlen(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let n = match shard.read(h, key, ctx.now, touch) {
        Some(i) => str_of(&shard.entry(i).value)?.len(),
        None => 0,
    };
    ctx.out.int(n as i64);
    Ok(())
}

/// Adds `by` to the integer at `key` (0 if missing), keeping its TTL.
fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], by: i64) -> CmdResult {
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let cur = match shard.lookup(h, key, ctx.now) {
        Some(i) => crate::util::parse_i64(str_of(&shard.entry(i).value)?.as_slice())
            .ok_or(CmdError::NotInteger)?,
        None => 0,
    };
    let new = cur.checked_add(by).ok_or(CmdError::Overflow)?;
    let mut buf = itoa::Buffer::new();
    shard.set(
        h,
        key,
        Value::str(buf.format(new).as_bytes()),
        Ttl::Keep,
        ctx.now,
    );
    drop(shard);
    ctx.notify(notify::STRING, "incrby", key);
    ctx.dirty(1);
    ctx.out.int(new);
    Ok(())
}

fn incr(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    incr_by(ctx, args.get(1), 1)
}

fn decr(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    incr_by(ctx, args.get(1), -1)
}

fn incrby(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let by = arg_i64(args.get(2))?;
    incr_by(ctx, args.get(1), by)
}

fn decrby(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let by = arg_i64(args.get(2))?;
    if by == i64::MIN {
        return Err(CmdError::msg("decrement would overflow"));
    }
    incr_by(ctx, args.get(1), -by)
}

/// Parses a float the way Redis's `string2ld` does for INCRBYFLOAT: no
/// surrounding spaces, no NaN, and no silent overflow or underflow.
fn parse_ld(b: &[u8]) -> Option<f64> {
    let v = crate::util::parse_f64(b)?;
    let lower = b.to_ascii_lowercase();
    let is_inf_literal = lower.ends_with(b"inf") || lower.ends_with(b"infinity");
    if v.is_infinite() && !is_inf_literal {
        return None;
    }
    Some(v)
}

fn incrbyfloat(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let cur = match shard.lookup(h, key, ctx.now) {
        Some(i) => parse_ld(str_of(&shard.entry(i).value)?.as_slice()).ok_or(CmdError::NotFloat)?,
        None => 0.0,
    };
    let by = parse_ld(args.get(2)).ok_or(CmdError::NotFloat)?;
    let new = cur + by;
    if !new.is_finite() {
        return Err(CmdError::msg("increment would produce NaN or Infinity"));
    }
    let s = crate::util::fmt_incrbyfloat(new);
    shard.set(h, key, Value::str(s.as_bytes()), Ttl::Keep, ctx.now);
    if let Some(i) = shard.lookup(h, key, ctx.now) {
        shard.set_encoding_flags(i, crate::store::ENC_NOINT);
    }
    drop(shard);
    ctx.notify(notify::STRING, "incrbyfloat", key);
    ctx.dirty(1);
    ctx.out.bulk(s.as_bytes());
    Ok(())
}

/// GETRANGE and SUBSTR, with Redis 7.0's index clamping.
fn getrange(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let mut start = arg_i64(args.get(2))?;
    let mut end = arg_i64(args.get(3))?;
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.read(h, key, ctx.now, touch) else {
        ctx.out.bulk(b"");
        return Ok(());
    };
    let s = str_of(&shard.entry(i).value)?.as_slice();
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        ctx.out.bulk(b"");
        return Ok(());
    }
    if start < 0 {
        start = len.saturating_add(start);
    }
    if end < 0 {
        end = len.saturating_add(end);
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        ctx.out.bulk(b"");
    } else {
        ctx.out.bulk(&s[start as usize..=end as usize]);
    }
    Ok(())
}

fn setrange(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (key, val) = (args.get(1), args.get(3));
    let offset = arg_i64(args.get(2))?;
    if offset < 0 {
        return Err(CmdError::msg("offset is out of range"));
    }
    let max = max_len(ctx);
    let fits = || (offset as u64).saturating_add(val.len() as u64) <= max;
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let len = match shard.lookup(h, key, ctx.now) {
        None => {
            if val.is_empty() {
                ctx.out.int(0);
                return Ok(());
            }
            if !fits() {
                return Err(too_big());
            }
            let end = offset as usize + val.len();
            let mut s = CompactBytes::default();
            s.resize(end)[offset as usize..].copy_from_slice(val);
            let i = shard.insert_new(h, key, Value::Str(s), 0, ctx.now);
            shard.set_encoding_flags(i, crate::store::ENC_RAW);
            end
        }
        Some(i) => {
            let cur = str_of(&shard.entry(i).value)?.len();
            if val.is_empty() {
                ctx.out.int(cur as i64);
                return Ok(());
            }
            if !fits() {
                return Err(too_big());
            }
            let end = offset as usize + val.len();
            let new_len = cur.max(end);
            shard.value_mut(i, |v| {
                if let Some(s) = v.as_str_mut() {
                    s.resize(new_len)[offset as usize..end].copy_from_slice(val);
                }
            });
            shard.set_encoding_flags(i, crate::store::ENC_RAW);
            new_len
        }
    };
    drop(shard);
    ctx.notify(notify::STRING, "setrange", key);
    ctx.dirty(1);
    ctx.out.int(len as i64);
    Ok(())
}

fn lcs(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (ka, kb) = (args.get(1), args.get(2));
    let touch = ctx.touch();
    let db = ctx.db();
    // Copy both strings out under the locks so the O(N*M) work runs unlocked.
    let (a, b) = {
        let (ha, hb) = (hash_key(ka), hash_key(kb));
        let mut lock = db.lock_many(&[ha, hb]);
        let mut fetch = |h: u64, k: &[u8]| -> Result<Vec<u8>, CmdError> {
            let shard = lock.shard(h);
            match shard.read(h, k, ctx.now, touch) {
                Some(i) => match shard.entry(i).value.as_str() {
                    Some(s) => Ok(s.as_slice().to_vec()),
                    None => Err(CmdError::msg(
                        "The specified keys must contain string values",
                    )),
                },
                None => Ok(Vec::new()),
            }
        };
        let a = fetch(ha, ka)?;
        let b = fetch(hb, kb)?;
        (a, b)
    };
    let (mut getlen, mut getidx, mut withmatchlen) = (false, false, false);
    let mut minmatchlen: u64 = 0;
    let mut j = 3;
    while j < args.len() {
        let opt = args.get(j);
        let more = args.len() - 1 - j;
        if is(opt, "idx") {
            getidx = true;
        } else if is(opt, "len") {
            getlen = true;
        } else if is(opt, "withmatchlen") {
            withmatchlen = true;
        } else if is(opt, "minmatchlen") && more > 0 {
            minmatchlen = arg_i64(args.get(j + 1))?.max(0) as u64;
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if getidx && getlen {
        return Err(CmdError::msg(
            "If you want both the length and indexes, please just use IDX.",
        ));
    }
    if a.len() as u64 >= u32::MAX as u64 - 1 || b.len() as u64 >= u32::MAX as u64 - 1 {
        return Err(CmdError::msg("String too long for LCS"));
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    if cells.saturating_mul(4) > max_len(ctx) {
        return Err(CmdError::msg(
            "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let w = blen + 1;
    let mut dp = vec![0u32; cells as usize];
    for i in 1..=alen {
        for j in 1..=blen {
            dp[i * w + j] = if a[i - 1] == b[j - 1] {
                dp[(i - 1) * w + j - 1] + 1
            } else {
                dp[(i - 1) * w + j].max(dp[i * w + j - 1])
            };
        }
    }
    let total = dp[alen * w + blen];
    if getlen {
        ctx.out.int(total as i64);
        return Ok(());
    }
    // Walk back from the end, as Redis does, collecting the LCS string and
    // the matching ranges (in the same order and with the same quirks).
    let mut result = vec![0u8; total as usize];
    let mut ranges: Vec<(usize, usize, usize, usize)> = Vec::new();
    let mut idx = total as usize;
    let (mut i, mut j) = (alen, blen);
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (alen, 0, 0, 0);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            if a_start == alen {
                a_start = i - 1;
                a_end = i - 1;
                b_start = j - 1;
                b_end = j - 1;
            } else if a_start == i && b_start == j {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if dp[(i - 1) * w + j] > dp[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != alen {
                emit = true;
            }
        }
        if emit {
            let match_len = a_end.wrapping_sub(a_start).wrapping_add(1);
            if minmatchlen == 0 || match_len as u64 >= minmatchlen {
                ranges.push((a_start, a_end, b_start, b_end));
            }
            a_start = alen;
        }
    }
    if !getidx {
        ctx.out.bulk(&result);
        return Ok(());
    }
    ctx.out.map(2);
    ctx.out.bulk(b"matches");
    ctx.out.array(ranges.len());
    for (a0, a1, b0, b1) in ranges {
        ctx.out.array(2 + withmatchlen as usize);
        ctx.out.array(2);
        ctx.out.int(a0 as i64);
        ctx.out.int(a1 as i64);
        ctx.out.array(2);
        ctx.out.int(b0 as i64);
        ctx.out.int(b1 as i64);
        if withmatchlen {
            ctx.out.int((a1 - a0 + 1) as i64);
        }
    }
    ctx.out.bulk(b"len");
    ctx.out.int(total as i64);
    Ok(())
}
