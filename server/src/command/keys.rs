//! Generic key commands: DEL EXISTS TYPE EXPIRE TTL SCAN RENAME COPY MOVE
//! OBJECT, and the whole-database ones (DBSIZE FLUSHDB FLUSHALL SWAPDB).

use super::{CmdError, CmdResult, CommandSpec, Ctx, arg_db, arg_i64, container_help, flags::*, is};
use crate::cmd;
use crate::notify;
use crate::protocol::Args;
use crate::store::{Keyspace, Shard, Ttl, Value, hash_key};
use crate::util::glob_match;
use parking_lot::MutexGuard;
use std::sync::Arc;

const KS: &[&str] = &["keyspace"];
const KS_DANGEROUS: &[&str] = &["keyspace", "dangerous"];
const NONE: &[&str] = &[];

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    cmd!("del", -2, WRITE, (1, -1, 1), KS, "generic", "1.0.0", "Deletes one or more keys.", del),
    cmd!("unlink", -2, WRITE | FAST, (1, -1, 1), KS, "generic", "4.0.0", "Asynchronously deletes one or more keys.", del),
    cmd!("exists", -2, READONLY | FAST, (1, -1, 1), KS, "generic", "1.0.0", "Determines whether one or more keys exist.", exists),
    cmd!("type", 2, READONLY | FAST, (1, 1, 1), KS, "generic", "1.0.0", "Determines the type of value stored at a key.", type_cmd),
    cmd!("expire", -3, WRITE | FAST, (1, 1, 1), KS, "generic", "1.0.0", "Sets the expiration time of a key in seconds.", expire),
    cmd!("pexpire", -3, WRITE | FAST, (1, 1, 1), KS, "generic", "2.6.0", "Sets the expiration time of a key in milliseconds.", pexpire),
    cmd!("expireat", -3, WRITE | FAST, (1, 1, 1), KS, "generic", "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", expireat),
    cmd!("pexpireat", -3, WRITE | FAST, (1, 1, 1), KS, "generic", "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", pexpireat),
    cmd!("ttl", 2, READONLY | FAST, (1, 1, 1), KS, "generic", "1.0.0", "Returns the expiration time in seconds of a key.", ttl),
    cmd!("pttl", 2, READONLY | FAST, (1, 1, 1), KS, "generic", "2.6.0", "Returns the expiration time in milliseconds of a key.", pttl),
    cmd!("expiretime", 2, READONLY | FAST, (1, 1, 1), KS, "generic", "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", expiretime),
    cmd!("pexpiretime", 2, READONLY | FAST, (1, 1, 1), KS, "generic", "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", pexpiretime),
    cmd!("persist", 2, WRITE | FAST, (1, 1, 1), KS, "generic", "2.2.0", "Removes the expiration time of a key.", persist),
    cmd!("keys", 2, READONLY, (0, 0, 0), KS_DANGEROUS, "generic", "1.0.0", "Returns all key names that match a pattern.", keys),
    cmd!("scan", -2, READONLY, (0, 0, 0), KS, "generic", "2.8.0", "Iterates over the key names in the database.", scan),
    cmd!("randomkey", 1, READONLY, (0, 0, 0), KS, "generic", "1.0.0", "Returns a random key name from the database.", randomkey),
    cmd!("rename", 3, WRITE, (1, 2, 1), KS, "generic", "1.0.0", "Renames a key and overwrites the destination.", rename),
    cmd!("renamenx", 3, WRITE | FAST, (1, 2, 1), KS, "generic", "1.0.0", "Renames a key only when the target key name doesn't exist.", renamenx),
    cmd!("copy", -3, WRITE | DENYOOM, (1, 2, 1), KS, "generic", "6.2.0", "Copies the value of a key to a new key.", copy),
    cmd!("touch", -2, READONLY | FAST, (1, -1, 1), KS, "generic", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", touch),
    cmd!("move", 3, WRITE | FAST, (1, 1, 1), KS, "generic", "1.0.0", "Moves a key to another database.", move_cmd),
    CommandSpec {
        subcommands: OBJECT_SUBS,
        ..cmd!("object", -2, 0, (0, 0, 0), NONE, "generic", "2.2.3", "A container for object introspection commands.", object_container)
    },
    cmd!("dbsize", 1, READONLY | FAST, (0, 0, 0), KS, "server", "1.0.0", "Returns the number of keys in the database.", dbsize),
    cmd!("flushdb", -1, WRITE, (0, 0, 0), KS_DANGEROUS, "server", "1.0.0", "Remove all keys from the current database.", flushdb),
    cmd!("flushall", -1, WRITE, (0, 0, 0), KS_DANGEROUS, "server", "1.0.0", "Removes all keys from all databases.", flushall),
    cmd!("swapdb", 3, WRITE | FAST, (0, 0, 0), KS_DANGEROUS, "server", "4.0.0", "Swaps two Redis databases.", swapdb),
];

#[rustfmt::skip]
static OBJECT_SUBS: &[CommandSpec] = &[
    cmd!("object|encoding", 3, READONLY, (2, 2, 1), KS, "generic", "2.2.3", "Returns the internal encoding of a Redis object.", object_encoding),
    cmd!("object|freq", 3, READONLY, (2, 2, 1), KS, "generic", "4.0.0", "Returns the logarithmic access frequency counter of a Redis object.", object_freq),
    cmd!("object|idletime", 3, READONLY, (2, 2, 1), KS, "generic", "2.2.3", "Returns the time since the last access to a Redis object.", object_idletime),
    cmd!("object|refcount", 3, READONLY, (2, 2, 1), KS, "generic", "2.2.3", "Returns the reference count of a value of a key.", object_refcount),
    cmd!("object|help", 2, LOADING | STALE, (0, 0, 0), KS, "generic", "6.2.0", "Returns helpful text about the different subcommands.", object_container),
];

fn same_object() -> CmdError {
    CmdError::msg("source and destination objects are the same")
}

/// Locks the shard of `ka` in `a` and of `kb` in `b` (two different
/// databases). Locks are taken in the order of the keyspaces' addresses,
/// which SWAPDB never changes, so two cross-database commands cannot
/// deadlock even when a swap happens between their snapshots.
fn lock_two<'a>(
    a: &'a Arc<Keyspace>,
    ka: &[u8],
    b: &'a Arc<Keyspace>,
    kb: &[u8],
) -> ((u64, MutexGuard<'a, Shard>), (u64, MutexGuard<'a, Shard>)) {
    if Arc::as_ptr(a) < Arc::as_ptr(b) {
        let ga = a.lock(ka);
        let gb = b.lock(kb);
        (ga, gb)
    } else {
        let gb = b.lock(kb);
        let ga = a.lock(ka);
        (ga, gb)
    }
}

/// DEL and UNLINK (values are freed inline; there is no lazy-free thread).
fn del(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let db = ctx.db();
    let mut n = 0;
    for key in args.iter().skip(1) {
        let (h, mut s) = db.lock(key);
        if s.remove(h, key, ctx.now).is_some() {
            drop(s);
            ctx.notify(notify::GENERIC, "del", key);
            n += 1;
        }
    }
    ctx.dirty(n as u64);
    ctx.out.int(n);
    Ok(())
}

/// Counts existing keys; a key named twice counts twice, as in Redis.
fn exists(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let db = ctx.db();
    let mut n = 0;
    for key in args.iter().skip(1) {
        let (h, mut s) = db.lock(key);
        if s.read(h, key, ctx.now, false).is_some() {
            n += 1;
        }
    }
    ctx.out.int(n);
    Ok(())
}

fn type_cmd(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let db = ctx.db();
    let (h, mut s) = db.lock(key);
    let name = match s.read(h, key, ctx.now, false) {
        Some(i) => s.entry(i).value.type_name(),
        None => "none",
    };
    ctx.out.simple(name);
    Ok(())
}

/// EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT with NX/XX/GT/LT, following
/// Redis's `expireGenericCommand` step by step (options, then the number,
/// then overflow checks, then the key).
fn expire_generic(
    ctx: &mut Ctx<'_>,
    args: &Args<'_>,
    unit_s: bool,
    absolute: bool,
    name: &str,
) -> CmdResult {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in args.iter().skip(3) {
        if is(opt, "nx") {
            nx = true;
        } else if is(opt, "xx") {
            xx = true;
        } else if is(opt, "gt") {
            gt = true;
        } else if is(opt, "lt") {
            lt = true;
        } else {
            return Err(CmdError::msg(format!(
                "Unsupported option {}",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CmdError::msg(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(CmdError::msg(
            "GT and LT options at the same time are not compatible",
        ));
    }
    let invalid = || CmdError::InvalidExpire(name.into());
    let mut when = arg_i64(args.get(2))?;
    if unit_s {
        when = when.checked_mul(1000).ok_or_else(invalid)?;
    }
    if !absolute {
        when = when.checked_add(ctx.now as i64).ok_or_else(invalid)?;
    }
    let key = args.get(1);
    let db = ctx.db();
    let (h, mut s) = db.lock(key);
    let Some(i) = s.lookup(h, key, ctx.now) else {
        ctx.out.int(0);
        return Ok(());
    };
    let current = s.entry(i).expire_at().map(|t| t as i64);
    let refused = (nx && current.is_some())
        || (xx && current.is_none())
        || (gt && current.is_none_or(|c| when <= c))
        || (lt && current.is_some_and(|c| when >= c));
    if refused {
        ctx.out.int(0);
        return Ok(());
    }
    // A time in the past deletes the key (Redis's "del" event, not "expired").
    let event = if when <= ctx.now as i64 {
        s.remove_at(h, i);
        "del"
    } else {
        s.set_expire(i, when as u64);
        "expire"
    };
    drop(s);
    ctx.notify(notify::GENERIC, event, key);
    ctx.dirty(1);
    ctx.out.int(1);
    Ok(())
}

fn expire(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    expire_generic(ctx, args, true, false, "expire")
}

fn pexpire(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    expire_generic(ctx, args, false, false, "pexpire")
}

fn expireat(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    expire_generic(ctx, args, true, true, "expireat")
}

fn pexpireat(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    expire_generic(ctx, args, false, true, "pexpireat")
}

/// TTL, PTTL, EXPIRETIME and PEXPIRETIME: -2 without key, -1 without expiry;
/// seconds are rounded to the nearest like Redis's `(ms + 500) / 1000`.
fn ttl_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, in_ms: bool, absolute: bool) -> CmdResult {
    let key = args.get(1);
    let db = ctx.db();
    let (h, mut s) = db.lock(key);
    let Some(i) = s.read(h, key, ctx.now, false) else {
        ctx.out.int(-2);
        return Ok(());
    };
    let Some(at) = s.entry(i).expire_at() else {
        ctx.out.int(-1);
        return Ok(());
    };
    let ms = if absolute {
        at as i64
    } else {
        (at as i64 - ctx.now as i64).max(0)
    };
    ctx.out.int(if in_ms {
        ms
    } else {
        ms.saturating_add(500) / 1000
    });
    Ok(())
}

fn ttl(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, false, false)
}

fn pttl(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, true, false)
}

fn expiretime(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, false, true)
}

fn pexpiretime(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, true, true)
}

fn persist(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let db = ctx.db();
    let (h, mut s) = db.lock(key);
    let done = match s.lookup(h, key, ctx.now) {
        Some(i) if s.entry(i).expire_at().is_some() => {
            s.set_expire(i, 0);
            true
        }
        _ => false,
    };
    drop(s);
    if done {
        ctx.notify(notify::GENERIC, "persist", key);
        ctx.dirty(1);
    }
    ctx.out.int(done as i64);
    Ok(())
}

fn keys(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let pat = args.get(1);
    let all = pat == b"*";
    let db = ctx.db();
    let mut found: Vec<Vec<u8>> = Vec::new();
    for i in 0..db.shard_count() {
        db.lock_shard(i).for_each(ctx.now, |e| {
            let k = e.key.as_slice();
            if all || glob_match(pat, k, false) {
                found.push(k.to_vec());
            }
        });
    }
    ctx.out.bulks(found.iter().map(|k| k.as_slice()));
    Ok(())
}

/// Parses a SCAN cursor like Redis's `strtoul` use: optional sign (a minus
/// wraps), decimal digits, nothing else; no leading space; overflow rejected.
pub fn parse_cursor(b: &[u8]) -> Option<u64> {
    if b.is_empty() {
        return Some(0);
    }
    let (neg, digits) = match b[0] {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// SCAN cursor layout: shard index in the high 32 bits, position in the low 32.
const SCAN_POS_BITS: u32 = 32;

fn scan(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let cursor = parse_cursor(args.get(1)).ok_or_else(|| CmdError::msg("invalid cursor"))?;
    let mut count: usize = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut type_name: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let opt = args.get(i);
        let has_value = i + 1 < args.len();
        if is(opt, "count") && has_value {
            let c = arg_i64(args.get(i + 1))?;
            if c < 1 {
                return Err(CmdError::Syntax);
            }
            count = usize::try_from(c).unwrap_or(usize::MAX);
        } else if is(opt, "match") && has_value {
            let p = args.get(i + 1);
            pattern = (p != b"*").then_some(p);
        } else if is(opt, "type") && has_value {
            type_name = Some(args.get(i + 1));
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let db = ctx.db();
    let shards = db.shard_count();
    let mut si = (cursor >> SCAN_POS_BITS) as usize;
    let mut pos = (cursor & ((1u64 << SCAN_POS_BITS) - 1)) as usize;
    let mut remaining = count;
    let mut found: Vec<Vec<u8>> = Vec::new();
    let next = loop {
        if si >= shards {
            break 0;
        }
        let s = db.lock_shard(si);
        let slots = s.slots();
        if pos >= slots {
            si += 1;
            pos = 0;
            continue;
        }
        let take = remaining.min(slots - pos);
        let more = s.scan(pos, take, ctx.now, |e| {
            let k = e.key.as_slice();
            let type_ok =
                type_name.is_none_or(|t| t.eq_ignore_ascii_case(e.value.type_name().as_bytes()));
            if type_ok && pattern.is_none_or(|p| glob_match(p, k, false)) {
                found.push(k.to_vec());
            }
        });
        drop(s);
        remaining -= take;
        match more {
            Some(p) => pos = p,
            None => {
                si += 1;
                pos = 0;
            }
        }
        if remaining == 0 {
            break if si >= shards {
                0
            } else {
                ((si as u64) << SCAN_POS_BITS) | pos as u64
            };
        }
    };
    ctx.out.array(2);
    let mut buf = itoa::Buffer::new();
    ctx.out.bulk(buf.format(next).as_bytes());
    ctx.out.bulks(found.iter().map(|k| k.as_slice()));
    Ok(())
}

fn randomkey(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let _ = args;
    let db = ctx.db();
    let nonempty = |db: &Keyspace| -> Vec<usize> {
        (0..db.shard_count())
            .filter(|&i| !db.lock_shard(i).is_empty())
            .collect()
    };
    let mut candidates = nonempty(&db);
    let mut rng = rand::rng();
    // Each failed attempt either deletes an expired key or finds a shard
    // emptied meanwhile, so progress is guaranteed; the bound is a backstop.
    for _ in 0..1024 {
        if candidates.is_empty() {
            break;
        }
        use rand::Rng;
        let si = candidates[rng.random_range(0..candidates.len())];
        let mut s = db.lock_shard(si);
        let Some(idx) = s.random_idx(&mut rng) else {
            drop(s);
            candidates = nonempty(&db);
            continue;
        };
        let e = s.entry(idx);
        if e.is_expired(ctx.now) {
            let h = hash_key(e.key.as_slice());
            s.remove_at(h, idx);
            s.stats.expired += 1;
            continue;
        }
        ctx.out.bulk(e.key.as_slice());
        return Ok(());
    }
    ctx.out.null();
    Ok(())
}

fn rename_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, nx: bool) -> CmdResult {
    let (src, dst) = (args.get(1), args.get(2));
    let db = ctx.db();
    let (hs, hd) = (hash_key(src), hash_key(dst));
    let mut lock = db.lock_many(&[hs, hd]);
    if lock.shard(hs).lookup(hs, src, ctx.now).is_none() {
        return Err(CmdError::NoSuchKey);
    }
    if src == dst {
        if nx {
            ctx.out.int(0);
        } else {
            ctx.out.ok();
        }
        return Ok(());
    }
    if nx && lock.shard(hd).lookup(hd, dst, ctx.now).is_some() {
        ctx.out.int(0);
        return Ok(());
    }
    let Some(entry) = lock.shard(hs).remove(hs, src, ctx.now) else {
        return Err(CmdError::NoSuchKey);
    };
    let at = entry.expire_at().unwrap_or(0);
    let flags = entry.encoding_flags();
    let shard = lock.shard(hd);
    shard.set(hd, dst, entry.value, Ttl::At(at), ctx.now);
    if let Some(i) = shard.lookup(hd, dst, ctx.now) {
        shard.set_encoding_flags(i, flags);
    }
    drop(lock);
    ctx.notify(notify::GENERIC, "rename_from", src);
    ctx.notify(notify::GENERIC, "rename_to", dst);
    ctx.dirty(1);
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

fn rename(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    rename_generic(ctx, args, false)
}

fn renamenx(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    rename_generic(ctx, args, true)
}

/// The destination half of COPY: 1 if written, 0 if `key` exists and
/// `replace` is off.
fn copy_into(
    s: &mut Shard,
    h: u64,
    key: &[u8],
    (value, flags): (Value, u32),
    at: u64,
    replace: bool,
    now: u64,
) -> bool {
    if s.lookup(h, key, now).is_some() && !replace {
        return false;
    }
    s.set(h, key, value, Ttl::At(at), now);
    if let Some(i) = s.lookup(h, key, now) {
        s.set_encoding_flags(i, flags);
    }
    true
}

fn copy(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (src, dst) = (args.get(1), args.get(2));
    let mut replace = false;
    let mut target = ctx.conn.db;
    let mut i = 3;
    while i < args.len() {
        let opt = args.get(i);
        if is(opt, "replace") {
            replace = true;
        } else if is(opt, "db") && i + 1 < args.len() {
            target = arg_db(ctx, args.get(i + 1))?;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if ctx.shared.cluster_enabled() && (ctx.conn.db != 0 || target != 0) {
        return Err(CmdError::msg(
            "Copying to another database is not allowed in cluster mode",
        ));
    }
    if target == ctx.conn.db && src == dst {
        return Err(same_object());
    }
    let touch = ctx.touch();
    let now = ctx.now;
    let dbs = ctx.shared.store.dbs();
    let (sdb, ddb) = (&dbs[ctx.conn.db], &dbs[target]);
    let read = |s: &mut Shard, h: u64| -> Option<((Value, u32), u64)> {
        let i = s.read(h, src, now, touch)?;
        let e = s.entry(i);
        Some((
            (e.value.clone(), e.encoding_flags()),
            e.expire_at().unwrap_or(0),
        ))
    };
    let copied = if target == ctx.conn.db {
        let (hs, hd) = (hash_key(src), hash_key(dst));
        let mut lock = sdb.lock_many(&[hs, hd]);
        match read(lock.shard(hs), hs) {
            Some((v, at)) => copy_into(lock.shard(hd), hd, dst, v, at, replace, now),
            None => false,
        }
    } else {
        let ((hs, mut gs), (hd, mut gd)) = lock_two(sdb, src, ddb, dst);
        match read(&mut gs, hs) {
            Some((v, at)) => copy_into(&mut gd, hd, dst, v, at, replace, now),
            None => false,
        }
    };
    drop(dbs);
    if copied {
        ctx.shared
            .notify_keyspace(target, notify::GENERIC, "copy_to", dst);
        ctx.dirty(1);
    }
    ctx.out.int(copied as i64);
    Ok(())
}

fn move_cmd(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if ctx.shared.cluster_enabled() {
        return Err(CmdError::msg("MOVE is not allowed in cluster mode"));
    }
    let key = args.get(1);
    let target = arg_db(ctx, args.get(2))?;
    if target == ctx.conn.db {
        return Err(same_object());
    }
    let now = ctx.now;
    let dbs = ctx.shared.store.dbs();
    let ((h, mut gs), (_, mut gd)) = lock_two(&dbs[ctx.conn.db], key, &dbs[target], key);
    if gs.lookup(h, key, now).is_none() || gd.lookup(h, key, now).is_some() {
        ctx.out.int(0);
        return Ok(());
    }
    let Some(entry) = gs.remove(h, key, now) else {
        ctx.out.int(0);
        return Ok(());
    };
    let at = entry.expire_at().unwrap_or(0);
    let flags = entry.encoding_flags();
    let i = gd.insert_new(h, key, entry.value, at, now);
    gd.set_encoding_flags(i, flags);
    drop((gs, gd));
    ctx.notify(notify::GENERIC, "move_from", key);
    ctx.shared
        .notify_keyspace(target, notify::GENERIC, "move_to", key);
    ctx.dirty(1);
    ctx.out.int(1);
    Ok(())
}

fn touch(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let db = ctx.db();
    let mut n = 0;
    for key in args.iter().skip(1) {
        let (h, mut s) = db.lock(key);
        if s.read(h, key, ctx.now, true).is_some() {
            n += 1;
        }
    }
    ctx.out.int(n);
    Ok(())
}

/// OBJECT HELP (the dispatcher routes HELP to the container).
fn object_container(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if is(args.get(1), "help") {
        return container_help(
            ctx.out,
            args,
            &[
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>",
                "    Return the access frequency index of the <key>. The returned integer is",
                "    proportional to the logarithm of the recent access frequency of the key.",
                "IDLETIME <key>",
                "    Return the idle time of the <key>, that is the approximated number of",
                "    seconds elapsed since the last access to the key.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
            ],
        );
    }
    Err(super::unknown_sub(args))
}

/// Runs `f` on the entry of OBJECT's key without touching its access time;
/// answers null when the key does not exist.
fn object_lookup(
    ctx: &mut Ctx<'_>,
    args: &Args<'_>,
    f: impl FnOnce(&mut Ctx<'_>, &crate::store::Entry) -> CmdResult,
) -> CmdResult {
    let key = args.get(2);
    let db = ctx.db();
    let (h, mut s) = db.lock(key);
    match s.read(h, key, ctx.now, false) {
        Some(i) => f(ctx, s.entry(i)),
        None => {
            ctx.out.null();
            Ok(())
        }
    }
}

fn lfu_policy(ctx: &Ctx<'_>) -> bool {
    ctx.shared.config.read().maxmemory_policy.contains("lfu")
}

fn object_encoding(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    object_lookup(ctx, args, |ctx, e| {
        ctx.out.bulk(e.encoding().as_bytes());
        Ok(())
    })
}

fn object_freq(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    object_lookup(ctx, args, |ctx, e| {
        if !lfu_policy(ctx) {
            return Err(CmdError::msg(
                "An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            ));
        }
        let decay = ctx.shared.config.read().lfu_decay_time;
        let freq = crate::store::keyspace::lfu_decayed(e.access_bits(), ctx.now, decay);
        ctx.out.int(i64::from(freq));
        Ok(())
    })
}

fn object_idletime(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    object_lookup(ctx, args, |ctx, e| {
        if lfu_policy(ctx) {
            return Err(CmdError::msg(
                "An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            ));
        }
        ctx.out.int(e.idle_secs(ctx.now) as i64);
        Ok(())
    })
}

/// Redis shares the objects of small integers (0..10000) unless an LRU/LFU
/// policy needs per-key metadata; shared objects report INT_MAX.
fn object_refcount(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    object_lookup(ctx, args, |ctx, e| {
        let shared_ints = {
            let c = ctx.shared.config.read();
            c.maxmemory == 0
                || !(c.maxmemory_policy.contains("lru") || c.maxmemory_policy.contains("lfu"))
        };
        let small_int = e.encoding() == "int"
            && e.value
                .as_str()
                .and_then(|s| crate::util::parse_i64(s.as_slice()))
                .is_some_and(|v| (0..10_000).contains(&v));
        ctx.out.int(if shared_ints && small_int {
            i32::MAX as i64
        } else {
            1
        });
        Ok(())
    })
}

fn dbsize(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let n = ctx.db().len();
    ctx.out.int(n as i64);
    Ok(())
}

/// FLUSHDB/FLUSHALL take an optional ASYNC or SYNC; both free inline here.
fn flush_mode_ok(args: &Args<'_>) -> Result<(), CmdError> {
    match args.len() {
        1 => Ok(()),
        2 if is(args.get(1), "async") || is(args.get(1), "sync") => Ok(()),
        _ => Err(CmdError::Syntax),
    }
}

/// A backend failure during a command, as the client sees it.
pub fn persist_error(e: crate::persist::PersistError) -> CmdError {
    tracing::error!(error = %e, "persistence backend write failed");
    CmdError::Raw(format!("MISCONF persistence backend write failed: {e}"))
}

fn flushdb(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    flush_mode_ok(args)?;
    let db = ctx.db();
    let n = db.len();
    match ctx.shared.persist() {
        Some(p) => p.flush(&ctx.shared.store, Some(ctx.conn.db), || db.clear()),
        None => db.clear(),
    }
    ctx.dirty(n as u64);
    ctx.out.ok();
    Ok(())
}

fn flushall(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    flush_mode_ok(args)?;
    let n: usize = ctx.shared.store.dbs().iter().map(|d| d.len()).sum();
    let store = &ctx.shared.store;
    match ctx.shared.persist() {
        Some(p) => p.flush(store, None, || store.flush_all()),
        None => store.flush_all(),
    }
    // Redis counts FLUSHALL as at least one change even on an empty dataset.
    ctx.dirty(n as u64 + 1);
    ctx.out.ok();
    Ok(())
}

fn swapdb(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    // Not allowed in cluster mode: there is just db 0 there.
    if ctx.shared.cluster_enabled() {
        return Err(CmdError::msg("SWAPDB is not allowed in cluster mode"));
    }
    let parse = |a: &[u8], what: &str| -> Result<i64, CmdError> {
        crate::util::parse_i64(a)
            .filter(|v| i32::try_from(*v).is_ok())
            .ok_or_else(|| CmdError::msg(format!("invalid {what} DB index")))
    };
    let a = parse(args.get(1), "first")?;
    let b = parse(args.get(2), "second")?;
    let n = ctx.shared.store.databases() as i64;
    if a < 0 || a >= n || b < 0 || b >= n {
        return Err(CmdError::DbIndex);
    }
    if a != b {
        let (a, b, store) = (a as usize, b as usize, &ctx.shared.store);
        match ctx.shared.persist() {
            Some(p) => p.swap_db(a, b, || store.swap_db(a, b)),
            None => store.swap_db(a, b),
        }
    }
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}
