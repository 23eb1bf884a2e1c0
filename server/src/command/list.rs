//! List commands: pushes and pops at both ends, indexed access, LPOS/LREM/
//! LTRIM/LINSERT, moves between lists, and the blocking pops (which answer
//! at once when a key can serve them and otherwise ask the connection to block).

use super::{CmdError, CmdResult, CommandSpec, Ctx, arg_i64, arg_timeout, flags::*, is};
use crate::cmd;
use crate::notify;
use crate::protocol::{Args, Out};
use crate::store::list::List;
use crate::store::{CompactBytes, Value, hash_key};
use std::time::Duration;

const LIST: &[&str] = &["list"];

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    cmd!("lpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), LIST, "list", "1.0.0", "Prepend one or multiple elements to a list", lpush),
    cmd!("rpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), LIST, "list", "1.0.0", "Append one or multiple elements to a list", rpush),
    cmd!("lpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), LIST, "list", "2.2.0", "Prepend an element to a list, only if the list exists", lpushx),
    cmd!("rpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), LIST, "list", "2.2.0", "Append an element to a list, only if the list exists", rpushx),
    cmd!("lpop", -2, WRITE | FAST, (1, 1, 1), LIST, "list", "1.0.0", "Remove and get the first elements in a list", lpop),
    cmd!("rpop", -2, WRITE | FAST, (1, 1, 1), LIST, "list", "1.0.0", "Remove and get the last elements in a list", rpop),
    cmd!("llen", 2, READONLY | FAST, (1, 1, 1), LIST, "list", "1.0.0", "Get the length of a list", llen),
    cmd!("lrange", 4, READONLY, (1, 1, 1), LIST, "list", "1.0.0", "Get a range of elements from a list", lrange),
    cmd!("lindex", 3, READONLY, (1, 1, 1), LIST, "list", "1.0.0", "Get an element from a list by its index", lindex),
    cmd!("lset", 4, WRITE | DENYOOM, (1, 1, 1), LIST, "list", "1.0.0", "Set the value of an element in a list by its index", lset),
    cmd!("linsert", 5, WRITE | DENYOOM, (1, 1, 1), LIST, "list", "2.2.0", "Insert an element before or after another element in a list", linsert),
    cmd!("lrem", 4, WRITE, (1, 1, 1), LIST, "list", "1.0.0", "Remove elements from a list", lrem),
    cmd!("ltrim", 4, WRITE, (1, 1, 1), LIST, "list", "1.0.0", "Trim a list to the specified range", ltrim),
    cmd!("lpos", -3, READONLY, (1, 1, 1), LIST, "list", "6.0.6", "Return the index of matching elements on a list", lpos),
    cmd!("lmove", 5, WRITE | DENYOOM, (1, 2, 1), LIST, "list", "6.2.0", "Pop an element from a list, push it to another list and return it", lmove),
    cmd!("rpoplpush", 3, WRITE | DENYOOM, (1, 2, 1), LIST, "list", "1.2.0", "Remove the last element in a list, prepend it to another list and return it", rpoplpush),
    cmd!("lmpop", -4, WRITE | MOVABLEKEYS, (0, 0, 0), LIST, "list", "7.0.0", "Pop elements from a list", lmpop),
    cmd!("blpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), LIST, "list", "2.0.0", "Remove and get the first element in a list, or block until one is available", blpop),
    cmd!("brpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), LIST, "list", "2.0.0", "Remove and get the last element in a list, or block until one is available", brpop),
    cmd!("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, (1, 2, 1), LIST, "list", "6.2.0", "Pop an element from a list, push it to another list and return it; or block until one is available", blmove),
    cmd!("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, (1, 2, 1), LIST, "list", "2.2.0", "Pop an element from a list, push it to another list and return it; or block until one is available", brpoplpush),
    cmd!("blmpop", -5, WRITE | BLOCKING | MOVABLEKEYS, (0, 0, 0), LIST, "list", "7.0.0", "Pop elements from a list, or block until one is available", blmpop),
];

/// The list held by a value, or WRONGTYPE.
#[inline]
fn list_of(v: &Value) -> Result<&List, CmdError> {
    match v {
        Value::List(l) => Ok(l),
        _ => Err(CmdError::WrongType),
    }
}

/// Runs `f` on the list inside a value (known to be one); `default` otherwise.
#[inline]
fn with_list<R>(v: &mut Value, default: R, f: impl FnOnce(&mut List) -> R) -> R {
    match v {
        Value::List(l) => f(l),
        _ => default,
    }
}

/// The `list-max-listpack-size` setting, read before any shard is locked.
#[inline]
fn pack_limit(ctx: &Ctx<'_>) -> i64 {
    ctx.shared.config.read().list_max_listpack_size
}

/// A non-negative integer argument; `msg` (Redis's wording) for anything else.
fn arg_positive(a: &[u8], msg: &str) -> Result<i64, CmdError> {
    match crate::util::parse_i64(a) {
        Some(v) if v >= 0 => Ok(v),
        _ => Err(CmdError::msg(msg)),
    }
}

/// LEFT or RIGHT; true for LEFT (the head).
fn arg_side(a: &[u8]) -> Result<bool, CmdError> {
    if is(a, "left") {
        Ok(true)
    } else if is(a, "right") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Redis's start/end normalisation (LRANGE, LTRIM): the inclusive index
/// range inside a list of `len`, or `None` when it selects nothing.
fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let llen = len as i64;
    let s = if start < 0 { llen + start } else { start }.max(0);
    let e = if end < 0 { llen + end } else { end };
    if s > e || s >= llen {
        return None;
    }
    Some((s as usize, e.min(llen - 1) as usize))
}

/// A negative index counts from the tail; `None` when outside the list.
fn abs_index(index: i64, len: usize) -> Option<usize> {
    let i = if index < 0 { len as i64 + index } else { index };
    (i >= 0 && (i as u64) < len as u64).then_some(i as usize)
}

/// The keyspace events of popping from `key`: the pop, then "del" if it emptied.
fn notify_popped(ctx: &Ctx<'_>, key: &[u8], front: bool, deleted: bool) {
    ctx.notify(notify::LIST, if front { "lpop" } else { "rpop" }, key);
    if deleted {
        ctx.notify(notify::GENERIC, "del", key);
    }
}

fn push_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, front: bool, only_existing: bool) -> CmdResult {
    let key = args.get(1);
    let limit = pack_limit(ctx);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let len = match shard.lookup(h, key, ctx.now) {
        Some(i) => {
            list_of(&shard.entry(i).value)?;
            shard.value_mut(i, |v| {
                with_list(v, 0, |l| {
                    for e in args.iter().skip(2) {
                        l.push(front, e, limit);
                    }
                    l.len()
                })
            })
        }
        None if only_existing => {
            drop(shard);
            ctx.out.int(0);
            return Ok(());
        }
        None => {
            let mut l = List::new();
            for e in args.iter().skip(2) {
                l.push(front, e, limit);
            }
            let len = l.len();
            shard.insert_new(h, key, Value::List(Box::new(l)), 0, ctx.now);
            len
        }
    };
    drop(shard);
    ctx.out.int(len as i64);
    ctx.dirty(args.len() as u64 - 2);
    ctx.notify(notify::LIST, if front { "lpush" } else { "rpush" }, key);
    Ok(())
}

fn lpush(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    push_generic(ctx, args, true, false)
}

fn rpush(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    push_generic(ctx, args, false, false)
}

fn lpushx(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    push_generic(ctx, args, true, true)
}

fn rpushx(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    push_generic(ctx, args, false, true)
}

/// Pops up to `count` elements (one bulk when `count` is `None`) from the
/// list at position `i`, writing them to `out`; deletes the key once empty.
/// Returns (elements popped, key deleted).
fn pop_at(
    shard: &mut crate::store::Shard,
    h: u64,
    i: u32,
    front: bool,
    count: Option<usize>,
    out: &mut Out,
) -> (usize, bool) {
    let (n, empty) = shard.value_mut(i, |v| {
        with_list(v, (0, false), |l| {
            let n = match count {
                None => l.pop_with(front, |e| out.bulk(e)).map_or(0, |_| 1),
                Some(c) => {
                    let n = c.min(l.len());
                    out.array(n);
                    l.pop_n_with(front, n, |e| out.bulk(e))
                }
            };
            (n, l.is_empty())
        })
    });
    if empty {
        shard.remove_at(h, i);
    }
    (n, empty)
}

fn pop_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, front: bool) -> CmdResult {
    let name = if front { "lpop" } else { "rpop" };
    if args.len() > 3 {
        return Err(CmdError::Arity(name.into()));
    }
    let count = if args.len() == 3 {
        Some(arg_positive(args.get(2), "value is out of range, must be positive")? as u64)
    } else {
        None
    };
    let key = args.get(1);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.lookup(h, key, ctx.now) else {
        drop(shard);
        if count.is_some() {
            ctx.out.null_array();
        } else {
            ctx.out.null();
        }
        return Ok(());
    };
    list_of(&shard.entry(i).value)?;
    if count == Some(0) {
        drop(shard);
        ctx.out.array(0);
        return Ok(());
    }
    let count = count.map(|c| usize::try_from(c).unwrap_or(usize::MAX));
    let (n, deleted) = pop_at(&mut shard, h, i, front, count, ctx.out);
    drop(shard);
    ctx.dirty(n as u64);
    notify_popped(ctx, key, front, deleted);
    Ok(())
}

fn lpop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    pop_generic(ctx, args, true)
}

fn rpop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    pop_generic(ctx, args, false)
}

fn llen(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let n = match shard.read(h, key, ctx.now, touch) {
        Some(i) => list_of(&shard.entry(i).value)?.len(),
        None => 0,
    };
    drop(shard);
    ctx.out.int(n as i64);
    Ok(())
}

fn lrange(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let start = arg_i64(args.get(2))?;
    let end = arg_i64(args.get(3))?;
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.read(h, key, ctx.now, touch) else {
        drop(shard);
        ctx.out.array(0);
        return Ok(());
    };
    let l = list_of(&shard.entry(i).value)?;
    match clamp_range(start, end, l.len()) {
        None => ctx.out.array(0),
        Some((s, e)) => {
            ctx.out.array(e - s + 1);
            for item in l.range(s, e) {
                ctx.out.bulk(item);
            }
        }
    }
    Ok(())
}

fn lindex(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.read(h, key, ctx.now, touch) else {
        drop(shard);
        ctx.out.null();
        return Ok(());
    };
    let l = list_of(&shard.entry(i).value)?;
    let index = arg_i64(args.get(2))?;
    match abs_index(index, l.len()).and_then(|i| l.get(i)) {
        Some(e) => ctx.out.bulk(e),
        None => ctx.out.null(),
    }
    Ok(())
}

fn lset(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let limit = pack_limit(ctx);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.lookup(h, key, ctx.now) else {
        return Err(CmdError::NoSuchKey);
    };
    let len = list_of(&shard.entry(i).value)?.len();
    let index = arg_i64(args.get(2))?;
    let Some(at) = abs_index(index, len) else {
        return Err(CmdError::msg("index out of range"));
    };
    let val = args.get(3);
    shard.value_mut(i, |v| with_list(v, false, |l| l.set(at, val, limit)));
    drop(shard);
    ctx.out.ok();
    ctx.dirty(1);
    ctx.notify(notify::LIST, "lset", key);
    Ok(())
}

fn linsert(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let after = if is(args.get(2), "after") {
        true
    } else if is(args.get(2), "before") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let (pivot, val) = (args.get(3), args.get(4));
    let limit = pack_limit(ctx);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.lookup(h, key, ctx.now) else {
        drop(shard);
        ctx.out.int(0);
        return Ok(());
    };
    let Some(at) = list_of(&shard.entry(i).value)?.find(pivot) else {
        drop(shard);
        ctx.out.int(-1);
        return Ok(());
    };
    let len = shard.value_mut(i, |v| {
        with_list(v, 0, |l| {
            l.insert(at + after as usize, val, limit);
            l.len()
        })
    });
    drop(shard);
    ctx.out.int(len as i64);
    ctx.dirty(1);
    ctx.notify(notify::LIST, "linsert", key);
    Ok(())
}

fn lrem(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let count = arg_i64(args.get(2))?;
    let val = args.get(3);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.lookup(h, key, ctx.now) else {
        drop(shard);
        ctx.out.int(0);
        return Ok(());
    };
    let l = list_of(&shard.entry(i).value)?;
    if l.find(val).is_none() {
        drop(shard);
        ctx.out.int(0);
        return Ok(());
    }
    let n = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
    let (removed, empty) = shard.value_mut(i, |v| {
        with_list(v, (0, false), |l| {
            (l.remove_matching(val, n, count < 0), l.is_empty())
        })
    });
    if empty {
        shard.remove_at(h, i);
    }
    drop(shard);
    ctx.out.int(removed as i64);
    ctx.dirty(removed as u64);
    ctx.notify(notify::LIST, "lrem", key);
    if empty {
        ctx.notify(notify::GENERIC, "del", key);
    }
    Ok(())
}

fn ltrim(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let start = arg_i64(args.get(2))?;
    let end = arg_i64(args.get(3))?;
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.lookup(h, key, ctx.now) else {
        drop(shard);
        ctx.out.ok();
        return Ok(());
    };
    let len = list_of(&shard.entry(i).value)?.len();
    let keep = clamp_range(start, end, len);
    let removed = match keep {
        Some((s, e)) => len - (e - s + 1),
        None => len,
    };
    if removed > 0 {
        shard.value_mut(i, |v| with_list(v, 0, |l| l.trim(keep)));
    }
    let deleted = removed == len;
    if deleted {
        shard.remove_at(h, i);
    }
    drop(shard);
    ctx.out.ok();
    ctx.dirty(removed as u64);
    ctx.notify(notify::LIST, "ltrim", key);
    if deleted {
        ctx.notify(notify::GENERIC, "del", key);
    }
    Ok(())
}

const RANK_ZERO: &str = "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list";

fn lpos(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (key, ele) = (args.get(1), args.get(2));
    let mut rank: i64 = 1;
    let mut count: Option<u64> = None;
    let mut maxlen: u64 = 0;
    let mut j = 3;
    while j < args.len() {
        let opt = args.get(j);
        let more = j + 1 < args.len();
        if is(opt, "rank") && more {
            j += 1;
            rank = arg_i64(args.get(j))?;
            if rank == 0 {
                return Err(CmdError::msg(RANK_ZERO));
            }
        } else if is(opt, "count") && more {
            j += 1;
            count = Some(arg_positive(args.get(j), "COUNT can't be negative")? as u64);
        } else if is(opt, "maxlen") && more {
            j += 1;
            maxlen = arg_positive(args.get(j), "MAXLEN can't be negative")? as u64;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let from_tail = rank < 0;
    // Redis 7.0 negates RANK i64::MIN into itself: every match then passes
    // the rank test and the COUNT limit never triggers (it overflows).
    let (rank, count) = if rank == i64::MIN {
        (1, count.map(|_| 0))
    } else {
        (rank.unsigned_abs(), count)
    };
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.read(h, key, ctx.now, touch) else {
        drop(shard);
        if count.is_some() {
            ctx.out.array(0);
        } else {
            ctx.out.null();
        }
        return Ok(());
    };
    let l = list_of(&shard.entry(i).value)?;
    let llen = l.len();
    let scan = usize::try_from(maxlen)
        .ok()
        .filter(|&m| m > 0)
        .unwrap_or(usize::MAX);
    // With COUNT the matches are collected (the reply length comes first).
    let mut found: Vec<usize> = Vec::new();
    let mut first: Option<usize> = None;
    let mut matches = 0u64;
    let mut visit = |idx: usize, e: &[u8]| -> bool {
        if e != ele {
            return true;
        }
        matches += 1;
        if matches < rank {
            return true;
        }
        let at = if from_tail { llen - idx - 1 } else { idx };
        match count {
            None => {
                first = Some(at);
                false
            }
            Some(c) => {
                found.push(at);
                c == 0 || (found.len() as u64) < c
            }
        }
    };
    if from_tail {
        for (idx, e) in l.iter().rev().take(scan).enumerate() {
            if !visit(idx, e) {
                break;
            }
        }
    } else {
        for (idx, e) in l.iter().take(scan).enumerate() {
            if !visit(idx, e) {
                break;
            }
        }
    }
    drop(shard);
    match count {
        Some(_) => {
            ctx.out.array(found.len());
            for at in found {
                ctx.out.int(at as i64);
            }
        }
        None => match first {
            Some(at) => ctx.out.int(at as i64),
            None => ctx.out.null(),
        },
    }
    Ok(())
}

/// Moves one element from the head/tail of `src` to the head/tail of `dst`
/// and replies with it. Returns false (without replying) when `src` does
/// not exist, so the caller answers or blocks.
fn move_generic(
    ctx: &mut Ctx<'_>,
    src: &[u8],
    dst: &[u8],
    from_front: bool,
    to_front: bool,
) -> Result<bool, CmdError> {
    let limit = pack_limit(ctx);
    let now = ctx.now;
    let db = ctx.db();
    let (hs, hd) = (hash_key(src), hash_key(dst));
    let mut lock = db.lock_many(&[hs, hd]);
    // Expire the destination first: a lookup that deletes can compact the
    // shard and move the source's position.
    if src != dst {
        lock.shard(hd).lookup(hd, dst, now);
    }
    let Some(si) = lock.shard(hs).lookup(hs, src, now) else {
        return Ok(false);
    };
    list_of(&lock.shard(hs).entry(si).value)?;
    let out = &mut *ctx.out;
    if src == dst {
        // A rotation: pop and push on the same list, which never empties.
        lock.shard(hs).value_mut(si, |v| {
            with_list(v, (), |l| {
                if let Some(e) = l.pop_with(from_front, CompactBytes::new) {
                    l.push(to_front, e.as_slice(), limit);
                    out.bulk(e.as_slice());
                }
            })
        });
        drop(lock);
        ctx.dirty(1);
        ctx.notify(notify::LIST, if to_front { "lpush" } else { "rpush" }, dst);
        ctx.notify(notify::LIST, if from_front { "lpop" } else { "rpop" }, src);
        return Ok(true);
    }
    let di = lock.shard(hd).lookup(hd, dst, now);
    if let Some(di) = di {
        list_of(&lock.shard(hd).entry(di).value)?;
    }
    let (elem, src_empty) = lock.shard(hs).value_mut(si, |v| {
        with_list(v, (None, false), |l| {
            (l.pop_with(from_front, CompactBytes::new), l.is_empty())
        })
    });
    let Some(elem) = elem else {
        return Ok(false);
    };
    let ds = lock.shard(hd);
    match di {
        Some(di) => ds.value_mut(di, |v| {
            with_list(v, (), |l| l.push(to_front, elem.as_slice(), limit))
        }),
        None => {
            let mut l = List::new();
            l.push(to_front, elem.as_slice(), limit);
            ds.insert_new(hd, dst, Value::List(Box::new(l)), 0, now);
        }
    }
    // Removing last: it may compact the shard, which the destination may share.
    if src_empty {
        lock.shard(hs).remove_at(hs, si);
    }
    drop(lock);
    out.bulk(elem.as_slice());
    ctx.dirty(1);
    ctx.notify(notify::LIST, if to_front { "lpush" } else { "rpush" }, dst);
    notify_popped(ctx, src, from_front, src_empty);
    Ok(true)
}

fn lmove(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let from = arg_side(args.get(3))?;
    let to = arg_side(args.get(4))?;
    if !move_generic(ctx, args.get(1), args.get(2), from, to)? {
        ctx.out.null();
    }
    Ok(())
}

fn rpoplpush(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if !move_generic(ctx, args.get(1), args.get(2), false, true)? {
        ctx.out.null();
    }
    Ok(())
}

/// BLMOVE and BRPOPLPUSH once their arguments are parsed: move now, or block
/// on the source (a null bulk instead inside MULTI).
fn blocking_move(
    ctx: &mut Ctx<'_>,
    args: &Args<'_>,
    from: bool,
    to: bool,
    timeout: Option<Duration>,
) -> CmdResult {
    if move_generic(ctx, args.get(1), args.get(2), from, to)? {
        return Ok(());
    }
    if ctx.may_block() {
        return ctx.block(vec![args.get(1).to_vec()], timeout);
    }
    ctx.out.null();
    Ok(())
}

fn blmove(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let from = arg_side(args.get(3))?;
    let to = arg_side(args.get(4))?;
    let timeout = arg_timeout(args.get(5))?;
    blocking_move(ctx, args, from, to, timeout)
}

fn brpoplpush(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let timeout = arg_timeout(args.get(3))?;
    blocking_move(ctx, args, false, true, timeout)
}

/// Pops from the first non-empty list among `args[first..first + n]`:
/// `[key, element]` when `count` is `None` (BLPOP), `[key, [elements]]`
/// otherwise (LMPOP). Returns false (without replying) when all are empty.
fn pop_first(
    ctx: &mut Ctx<'_>,
    args: &Args<'_>,
    first: usize,
    n: usize,
    front: bool,
    count: Option<usize>,
) -> Result<bool, CmdError> {
    let now = ctx.now;
    let db = ctx.db();
    let keys = || args.iter().skip(first).take(n);
    let hashes: Vec<u64> = keys().map(hash_key).collect();
    let mut lock = db.lock_many(&hashes);
    for (key, &h) in keys().zip(&hashes) {
        let shard = lock.shard(h);
        let Some(i) = shard.lookup(h, key, now) else {
            continue;
        };
        if list_of(&shard.entry(i).value)?.is_empty() {
            continue;
        }
        ctx.out.array(2);
        ctx.out.bulk(key);
        let (popped, deleted) = pop_at(shard, h, i, front, count, ctx.out);
        drop(lock);
        ctx.dirty(popped as u64);
        notify_popped(ctx, key, front, deleted);
        return Ok(true);
    }
    Ok(false)
}

/// BLPOP/BRPOP/BLMPOP when nothing could be popped: block on the keys, or
/// answer like a timeout inside MULTI.
fn block_or_null(
    ctx: &mut Ctx<'_>,
    args: &Args<'_>,
    first: usize,
    n: usize,
    timeout: Option<Duration>,
) -> CmdResult {
    if ctx.may_block() {
        let keys = args
            .iter()
            .skip(first)
            .take(n)
            .map(|k| k.to_vec())
            .collect();
        return ctx.block(keys, timeout);
    }
    ctx.out.null_array();
    Ok(())
}

fn bpop_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, front: bool) -> CmdResult {
    let last = args.len() - 1;
    let timeout = arg_timeout(args.get(last))?;
    if pop_first(ctx, args, 1, last - 1, front, None)? {
        return Ok(());
    }
    block_or_null(ctx, args, 1, last - 1, timeout)
}

fn blpop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    bpop_generic(ctx, args, true)
}

fn brpop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    bpop_generic(ctx, args, false)
}

/// Parses `numkeys key... LEFT|RIGHT [COUNT n]` starting at `numkeys_at`;
/// returns (number of keys, pop from the head, count).
fn parse_mpop(args: &Args<'_>, numkeys_at: usize) -> Result<(usize, bool, usize), CmdError> {
    let numkeys = match crate::util::parse_i64(args.get(numkeys_at)) {
        Some(v) if v >= 1 => v as u64,
        _ => return Err(CmdError::msg("numkeys should be greater than 0")),
    };
    let where_at = usize::try_from(numkeys)
        .ok()
        .and_then(|n| n.checked_add(numkeys_at + 1))
        .filter(|&w| w < args.len())
        .ok_or(CmdError::Syntax)?;
    let front = arg_side(args.get(where_at))?;
    let mut count: Option<usize> = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && is(args.get(j), "count") && j + 1 < args.len() {
            j += 1;
            match crate::util::parse_i64(args.get(j)) {
                Some(c) if c >= 1 => count = Some(usize::try_from(c).unwrap_or(usize::MAX)),
                _ => return Err(CmdError::msg("count should be greater than 0")),
            }
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok((where_at - numkeys_at - 1, front, count.unwrap_or(1)))
}

fn lmpop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (n, front, count) = parse_mpop(args, 1)?;
    if !pop_first(ctx, args, 2, n, front, Some(count))? {
        ctx.out.null_array();
    }
    Ok(())
}

fn blmpop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (n, front, count) = parse_mpop(args, 2)?;
    let timeout = arg_timeout(args.get(1))?;
    if pop_first(ctx, args, 3, n, front, Some(count))? {
        return Ok(());
    }
    block_or_null(ctx, args, 3, n, timeout)
}
