//! Hash commands: HSET HGET HDEL HINCRBY HRANDFIELD HSCAN and the rest of the
//! hash family, replying straight from the stored hash under the shard lock.

use super::{
    CmdError, CmdResult, CommandSpec, Ctx, arg_i64, flags::*, is, keys::parse_cursor,
    parse_scan_opts,
};
use crate::cmd;
use crate::notify;
use crate::protocol::Args;
use crate::store::Value;
use crate::store::hash::{Hash, HashLimits};
use rand::Rng;

const HASH: &[&str] = &["hash"];

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    cmd!("hset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), HASH, "hash", "2.0.0", "Set the string value of a hash field", hset),
    cmd!("hsetnx", 4, WRITE | DENYOOM | FAST, (1, 1, 1), HASH, "hash", "2.0.0", "Set the value of a hash field, only if the field does not exist", hsetnx),
    cmd!("hget", 3, READONLY | FAST, (1, 1, 1), HASH, "hash", "2.0.0", "Get the value of a hash field", hget),
    cmd!("hmset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), HASH, "hash", "2.0.0", "Set multiple hash fields to multiple values", hmset),
    cmd!("hmget", -3, READONLY | FAST, (1, 1, 1), HASH, "hash", "2.0.0", "Get the values of all the given hash fields", hmget),
    cmd!("hincrby", 4, WRITE | DENYOOM | FAST, (1, 1, 1), HASH, "hash", "2.0.0", "Increment the integer value of a hash field by the given number", hincrby),
    cmd!("hincrbyfloat", 4, WRITE | DENYOOM | FAST, (1, 1, 1), HASH, "hash", "2.6.0", "Increment the float value of a hash field by the given amount", hincrbyfloat),
    cmd!("hdel", -3, WRITE | FAST, (1, 1, 1), HASH, "hash", "2.0.0", "Delete one or more hash fields", hdel),
    cmd!("hlen", 2, READONLY | FAST, (1, 1, 1), HASH, "hash", "2.0.0", "Get the number of fields in a hash", hlen),
    cmd!("hstrlen", 3, READONLY | FAST, (1, 1, 1), HASH, "hash", "3.2.0", "Get the length of the value of a hash field", hstrlen),
    cmd!("hkeys", 2, READONLY, (1, 1, 1), HASH, "hash", "2.0.0", "Get all the fields in a hash", hkeys),
    cmd!("hvals", 2, READONLY, (1, 1, 1), HASH, "hash", "2.0.0", "Get all the values in a hash", hvals),
    cmd!("hgetall", 2, READONLY, (1, 1, 1), HASH, "hash", "2.0.0", "Get all the fields and values in a hash", hgetall),
    cmd!("hexists", 3, READONLY | FAST, (1, 1, 1), HASH, "hash", "2.0.0", "Determine if a hash field exists", hexists),
    cmd!("hrandfield", -2, READONLY, (1, 1, 1), HASH, "hash", "6.2.0", "Get one or multiple random fields from a hash", hrandfield),
    cmd!("hscan", -3, READONLY, (1, 1, 1), HASH, "hash", "2.8.0", "Incrementally iterate hash fields and associated values", hscan),
];

/// The hash held by a value, or WRONGTYPE.
#[inline]
fn hash_of(v: &Value) -> Result<&Hash, CmdError> {
    match v {
        Value::Hash(h) => Ok(h),
        _ => Err(CmdError::WrongType),
    }
}

/// The encoding limits, read before any shard is locked.
#[inline]
fn limits(ctx: &Ctx<'_>) -> HashLimits {
    let c = ctx.shared.config.read();
    HashLimits {
        max_entries: c.hash_max_listpack_entries,
        max_value: c.hash_max_listpack_value,
    }
}

/// A write to the hash at `key`: `plan` sees the current hash (None when the
/// key is missing) and decides, possibly failing, what to write; `apply`
/// writes it, creating the key when missing. Nothing is touched when `plan`
/// fails or answers None, so a no-op is not a modification (WATCH, memory).
/// Returns `apply`'s result and whether the key was created.
fn modify<T, R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    plan: impl FnOnce(Option<&Hash>) -> Result<Option<T>, CmdError>,
    apply: impl FnOnce(&mut Hash, T) -> R,
) -> Result<Option<(R, bool)>, CmdError> {
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    match shard.lookup(h, key, ctx.now) {
        Some(i) => {
            let Some(t) = plan(Some(hash_of(&shard.entry(i).value)?))? else {
                return Ok(None);
            };
            let r = shard.value_mut(i, |v| match v {
                Value::Hash(hash) => Some(apply(hash, t)),
                _ => None,
            });
            Ok(r.map(|r| (r, false)))
        }
        None => {
            let Some(t) = plan(None)? else {
                return Ok(None);
            };
            let mut hash = Hash::new();
            let r = apply(&mut hash, t);
            shard.insert_new(h, key, Value::Hash(Box::new(hash)), 0, ctx.now);
            Ok(Some((r, true)))
        }
    }
}

/// Counts the write and sends its events (after the shard lock is released).
fn written(ctx: &Ctx<'_>, key: &[u8], event: &str, created: bool, dirty: u64) {
    if created {
        ctx.notify(notify::NEW, "new", key);
    }
    ctx.notify(notify::HASH, event, key);
    ctx.dirty(dirty);
}

/// HSET and HMSET: the count of new fields, or OK for HMSET.
fn hset_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, hmset: bool) -> CmdResult {
    if args.len() % 2 == 1 {
        return Err(CmdError::Arity(if hmset { "hmset" } else { "hset" }.into()));
    }
    let key = args.get(1);
    let lim = limits(ctx);
    let pairs = (args.len() - 2) / 2;
    let done = modify(
        ctx,
        key,
        |_| Ok(Some(())),
        |hash, ()| {
            let mut created = 0;
            for p in 0..pairs {
                created += hash.set(args.get(2 + 2 * p), args.get(3 + 2 * p), lim) as i64;
            }
            created
        },
    )?;
    let (created, new_key) = done.unwrap_or((0, false));
    written(ctx, key, "hset", new_key, pairs as u64);
    if hmset {
        ctx.out.ok();
    } else {
        ctx.out.int(created);
    }
    Ok(())
}

fn hset(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    hset_generic(ctx, args, false)
}

fn hmset(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    hset_generic(ctx, args, true)
}

fn hsetnx(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (key, field, value) = (args.get(1), args.get(2), args.get(3));
    let lim = limits(ctx);
    let done = modify(
        ctx,
        key,
        |h| Ok((!h.is_some_and(|h| h.contains(field))).then_some(())),
        |hash, ()| hash.set(field, value, lim),
    )?;
    match done {
        Some((_, new_key)) => {
            written(ctx, key, "hset", new_key, 1);
            ctx.out.int(1);
        }
        None => ctx.out.int(0),
    }
    Ok(())
}

fn hget(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    match shard.read(h, key, ctx.now, touch) {
        Some(i) => match hash_of(&shard.entry(i).value)?.get(args.get(2)) {
            Some(v) => ctx.out.bulk(v),
            None => ctx.out.null(),
        },
        None => ctx.out.null(),
    }
    Ok(())
}

fn hmget(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let hash = match shard.read(h, key, ctx.now, touch) {
        Some(i) => Some(hash_of(&shard.entry(i).value)?),
        None => None,
    };
    ctx.out.array(args.len() - 2);
    for field in args.iter().skip(2) {
        match hash.and_then(|h| h.get(field)) {
            Some(v) => ctx.out.bulk(v),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn hincrby(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (key, field) = (args.get(1), args.get(2));
    let by = arg_i64(args.get(3))?;
    let lim = limits(ctx);
    let done = modify(
        ctx,
        key,
        |h| {
            let cur = match h.and_then(|h| h.get(field)) {
                Some(v) => crate::util::parse_i64(v)
                    .ok_or_else(|| CmdError::msg("hash value is not an integer"))?,
                None => 0,
            };
            cur.checked_add(by).map(Some).ok_or(CmdError::Overflow)
        },
        |hash, new: i64| {
            hash.set(field, itoa::Buffer::new().format(new).as_bytes(), lim);
            new
        },
    )?;
    let (new, new_key) = done.unwrap_or((0, false));
    written(ctx, key, "hincrby", new_key, 1);
    ctx.out.int(new);
    Ok(())
}

/// Parses a float like Redis's `string2ld` (what HINCRBYFLOAT reads with):
/// no surrounding spaces, no NaN, "inf" accepted but no silent overflow.
fn parse_ld(b: &[u8]) -> Option<f64> {
    let v = crate::util::parse_f64(b)?;
    if v.is_infinite() {
        let lower = b.to_ascii_lowercase();
        if !(lower.ends_with(b"inf") || lower.ends_with(b"infinity")) {
            return None;
        }
    }
    Some(v)
}

fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (key, field) = (args.get(1), args.get(2));
    let by = parse_ld(args.get(3)).ok_or(CmdError::NotFloat)?;
    if !by.is_finite() {
        return Err(CmdError::msg("value is NaN or Infinity"));
    }
    let lim = limits(ctx);
    let done = modify(
        ctx,
        key,
        |h| {
            let cur = match h.and_then(|h| h.get(field)) {
                Some(v) => parse_ld(v).ok_or_else(|| CmdError::msg("hash value is not a float"))?,
                None => 0.0,
            };
            let new = cur + by;
            if !new.is_finite() {
                return Err(CmdError::msg("increment would produce NaN or Infinity"));
            }
            Ok(Some(crate::util::fmt_incrbyfloat(new)))
        },
        |hash, s: String| {
            hash.set(field, s.as_bytes(), lim);
            s
        },
    )?;
    let Some((s, new_key)) = done else {
        return Ok(());
    };
    written(ctx, key, "hincrbyfloat", new_key, 1);
    ctx.out.bulk(s.as_bytes());
    Ok(())
}

fn hdel(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.lookup(h, key, ctx.now) else {
        ctx.out.int(0);
        return Ok(());
    };
    let hash = hash_of(&shard.entry(i).value)?;
    if !args.iter().skip(2).any(|f| hash.contains(f)) {
        ctx.out.int(0);
        return Ok(());
    }
    let deleted = shard.value_mut(i, |v| match v {
        Value::Hash(hash) => args.iter().skip(2).filter(|f| hash.remove(f)).count(),
        _ => 0,
    });
    let emptied = shard.entry(i).value.is_empty();
    if emptied {
        shard.remove_at(h, i);
    }
    drop(shard);
    ctx.notify(notify::HASH, "hdel", key);
    if emptied {
        ctx.notify(notify::GENERIC, "del", key);
    }
    ctx.dirty(deleted as u64);
    ctx.out.int(deleted as i64);
    Ok(())
}

/// Runs `f` on the hash at `key` for a read command (None when missing).
#[inline]
fn read_hash(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&mut crate::protocol::Out, Option<&Hash>),
) -> CmdResult {
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    match shard.read(h, key, ctx.now, touch) {
        Some(i) => f(ctx.out, Some(hash_of(&shard.entry(i).value)?)),
        None => f(ctx.out, None),
    }
    Ok(())
}

fn hlen(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    read_hash(ctx, args.get(1), |out, h| {
        out.int(h.map_or(0, |h| h.len() as i64))
    })
}

fn hstrlen(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let field = args.get(2);
    read_hash(ctx, args.get(1), |out, h| {
        out.int(h.and_then(|h| h.get(field)).map_or(0, |v| v.len() as i64))
    })
}

fn hexists(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let field = args.get(2);
    read_hash(ctx, args.get(1), |out, h| {
        out.int(h.is_some_and(|h| h.contains(field)) as i64)
    })
}

fn hkeys(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    read_hash(ctx, args.get(1), |out, h| match h {
        Some(h) => {
            out.array(h.len());
            for (f, _) in h.iter() {
                out.bulk(f);
            }
        }
        None => out.array(0),
    })
}

fn hvals(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    read_hash(ctx, args.get(1), |out, h| match h {
        Some(h) => {
            out.array(h.len());
            for (_, v) in h.iter() {
                out.bulk(v);
            }
        }
        None => out.array(0),
    })
}

fn hgetall(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    read_hash(ctx, args.get(1), |out, h| match h {
        Some(h) => {
            out.map(h.len());
            for (f, v) in h.iter() {
                out.bulk(f);
                out.bulk(v);
            }
        }
        None => out.map(0),
    })
}

/// One HRANDFIELD element: the field, or with values a pair (nested in
/// RESP3, flat in RESP2, as Redis 7.0 answers).
#[inline]
fn rand_pair(out: &mut crate::protocol::Out, f: &[u8], v: &[u8], withvalues: bool) {
    if withvalues && out.resp3() {
        out.array(2);
    }
    out.bulk(f);
    if withvalues {
        out.bulk(v);
    }
}

fn hrandfield(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    if args.len() == 2 {
        return read_hash(ctx, key, |out, h| {
            match h.and_then(|h| h.random(&mut rand::rng())) {
                Some((f, _)) => out.bulk(f),
                None => out.null(),
            }
        });
    }
    let l = arg_i64(args.get(2))?;
    if l == i64::MIN {
        return Err(CmdError::msg(
            "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    if args.len() > 4 || (args.len() == 4 && !is(args.get(3), "withvalues")) {
        return Err(CmdError::Syntax);
    }
    let withvalues = args.len() == 4;
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
        return Err(CmdError::msg("value is out of range"));
    }
    read_hash(ctx, key, |out, h| match h {
        Some(h) => rand_with_count(out, h, l, withvalues),
        None => out.array(0),
    })
}

/// HRANDFIELD with a count: negative may repeat, positive gives distinct
/// fields (the whole hash when the count covers it, in its own order).
fn rand_with_count(out: &mut crate::protocol::Out, h: &Hash, l: i64, withvalues: bool) {
    let count = l.unsigned_abs();
    if count == 0 {
        out.array(0);
        return;
    }
    let flat = |n: u64| if withvalues && !out.resp3() { 2 * n } else { n } as usize;
    let mut rng = rand::rng();
    let size = h.len() as u64;
    if l < 0 || count == 1 {
        let n = flat(count);
        out.array(n);
        if h.is_packed() {
            // Picking from a packed hash is a linear walk; index it once.
            let pairs: Vec<(&[u8], &[u8])> = h.iter().collect();
            for _ in 0..count {
                let (f, v) = pairs[rng.random_range(0..pairs.len())];
                rand_pair(out, f, v, withvalues);
            }
        } else {
            for _ in 0..count {
                if let Some((f, v)) = h.random(&mut rng) {
                    rand_pair(out, f, v, withvalues);
                }
            }
        }
        return;
    }
    let n = flat(count.min(size));
    out.array(n);
    if count >= size {
        for (f, v) in h.iter() {
            rand_pair(out, f, v, withvalues);
        }
        return;
    }
    let count = count as usize;
    if h.is_packed() || count * 3 > size as usize {
        // A large share of the hash: a partial shuffle of all pairs.
        let mut pairs: Vec<(&[u8], &[u8])> = h.iter().collect();
        for i in 0..count {
            let j = rng.random_range(i..pairs.len());
            pairs.swap(i, j);
        }
        for &(f, v) in pairs.iter().take(count) {
            rand_pair(out, f, v, withvalues);
        }
    } else {
        // A small share: random picks until `count` distinct fields.
        let mut seen: hashbrown::HashSet<&[u8]> = hashbrown::HashSet::with_capacity(count);
        while seen.len() < count {
            let Some((f, v)) = h.random(&mut rng) else {
                break;
            };
            if seen.insert(f) {
                rand_pair(out, f, v, withvalues);
            }
        }
    }
}

fn hscan(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    // Redis checks the cursor first, answers an empty scan for a missing key
    // without looking at the options, and only then parses them.
    let cursor = parse_cursor(args.get(2)).ok_or_else(|| CmdError::msg("invalid cursor"))?;
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.read(h, key, ctx.now, touch) else {
        super::scan_reply(ctx.out, 0, std::iter::empty());
        return Ok(());
    };
    let hash = hash_of(&shard.entry(i).value)?;
    let opts = parse_scan_opts(args)?;
    // Two passes over the same slots (the shard lock is held throughout):
    // one to count for the array header, one to write, with no copies.
    let mut n = 0;
    let next = hash.scan(cursor, opts.count, |f, _| {
        if opts.matches(f) {
            n += 2;
        }
    });
    let out = &mut *ctx.out;
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(n);
    hash.scan(cursor, opts.count, |f, v| {
        if opts.matches(f) {
            out.bulk(f);
            out.bulk(v);
        }
    });
    Ok(())
}
