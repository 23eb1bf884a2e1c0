//! Set commands: SADD SREM SMEMBERS ... the set algebra (SINTER SUNION SDIFF
//! and their STORE forms, SINTERCARD), SMOVE, SPOP, SRANDMEMBER and SSCAN.

use super::{CmdError, CmdResult, CommandSpec, Ctx, arg_i64, flags::*, is, keys, parse_scan_opts};
use crate::cmd;
use crate::notify;
use crate::protocol::{Args, Out};
use crate::store::set::{Set, is_int_member, sort_ints};
use crate::store::{Keyspace, Shard, Ttl, Value, hash_key};
use parking_lot::MutexGuard;

const SET: &[&str] = &["set"];

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    cmd!("sadd", -3, WRITE | DENYOOM | FAST, (1, 1, 1), SET, "set", "1.0.0", "Add one or more members to a set", sadd),
    cmd!("srem", -3, WRITE | FAST, (1, 1, 1), SET, "set", "1.0.0", "Remove one or more members from a set", srem),
    cmd!("smembers", 2, READONLY, (1, 1, 1), SET, "set", "1.0.0", "Get all the members in a set", smembers),
    cmd!("sismember", 3, READONLY | FAST, (1, 1, 1), SET, "set", "1.0.0", "Determine if a given value is a member of a set", sismember),
    cmd!("smismember", -3, READONLY | FAST, (1, 1, 1), SET, "set", "6.2.0", "Returns the membership associated with the given elements for a set", smismember),
    cmd!("scard", 2, READONLY | FAST, (1, 1, 1), SET, "set", "1.0.0", "Get the number of members in a set", scard),
    cmd!("spop", -2, WRITE | FAST, (1, 1, 1), SET, "set", "1.0.0", "Remove and return one or multiple random members from a set", spop),
    cmd!("srandmember", -2, READONLY, (1, 1, 1), SET, "set", "1.0.0", "Get one or multiple random members from a set", srandmember),
    cmd!("smove", 4, WRITE | FAST, (1, 2, 1), SET, "set", "1.0.0", "Move a member from one set to another", smove),
    cmd!("sinter", -2, READONLY, (1, -1, 1), SET, "set", "1.0.0", "Intersect multiple sets", sinter),
    // Redis reports movablekeys and 0,0,0: the keys follow a numkeys argument.
    cmd!("sintercard", -3, READONLY | MOVABLEKEYS, (0, 0, 0), SET, "set", "7.0.0", "Intersect multiple sets and return the cardinality of the result", sintercard),
    cmd!("sinterstore", -3, WRITE | DENYOOM, (1, -1, 1), SET, "set", "1.0.0", "Intersect multiple sets and store the resulting set in a key", sinterstore),
    cmd!("sunion", -2, READONLY, (1, -1, 1), SET, "set", "1.0.0", "Add multiple sets", sunion),
    cmd!("sunionstore", -3, WRITE | DENYOOM, (1, -1, 1), SET, "set", "1.0.0", "Add multiple sets and store the resulting set in a key", sunionstore),
    cmd!("sdiff", -2, READONLY, (1, -1, 1), SET, "set", "1.0.0", "Subtract multiple sets", sdiff),
    cmd!("sdiffstore", -3, WRITE | DENYOOM, (1, -1, 1), SET, "set", "1.0.0", "Subtract multiple sets and store the resulting set in a key", sdiffstore),
    cmd!("sscan", -3, READONLY, (1, 1, 1), SET, "set", "2.8.0", "Incrementally iterate Set elements", sscan),
];

/// `set-max-intset-entries`, read once per command before any shard lock.
fn max_intset(ctx: &Ctx<'_>) -> usize {
    ctx.shared.config.read().set_max_intset_entries
}

/// The set held by a value, or WRONGTYPE.
#[inline]
fn set_of(v: &Value) -> Result<&Set, CmdError> {
    match v {
        Value::Set(s) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

/// Writes members as a RESP3 set; in the intset order (ascending) when the
/// members would form an intset, as Redis answers from a freshly built set.
fn reply_members(out: &mut Out, mut members: Vec<&[u8]>, max_intset: usize) {
    if members.len() <= max_intset && members.iter().all(|m| is_int_member(m)) {
        sort_ints(&mut members);
    }
    out.set(members.len());
    for m in members {
        out.bulk(m);
    }
}

fn sadd(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let max = max_intset(ctx);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let added = match shard.lookup(h, key, ctx.now) {
        Some(i) => {
            let s = set_of(&shard.entry(i).value)?;
            // Touch the value only when something changes (WATCH, memory accounting).
            if (2..args.len()).all(|j| s.contains(args.get(j))) {
                0
            } else {
                shard.value_mut(i, |v| match v {
                    Value::Set(s) => (2..args.len()).filter(|&j| s.add(args.get(j), max)).count(),
                    _ => 0,
                })
            }
        }
        None => {
            let mut s = Set::new();
            let n = (2..args.len()).filter(|&j| s.add(args.get(j), max)).count();
            shard.insert_new(h, key, Value::Set(Box::new(s)), 0, ctx.now);
            n
        }
    };
    drop(shard);
    if added > 0 {
        ctx.dirty(added as u64);
        ctx.notify(notify::SET, "sadd", key);
    }
    ctx.out.int(added as i64);
    Ok(())
}

fn srem(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.lookup(h, key, ctx.now) else {
        ctx.out.int(0);
        return Ok(());
    };
    let s = set_of(&shard.entry(i).value)?;
    let (removed, empty) = if (2..args.len()).any(|j| s.contains(args.get(j))) {
        shard.value_mut(i, |v| match v {
            Value::Set(s) => {
                let mut n = 0;
                for j in 2..args.len() {
                    n += s.remove(args.get(j)) as usize;
                    if s.is_empty() {
                        break;
                    }
                }
                (n, s.is_empty())
            }
            _ => (0, false),
        })
    } else {
        (0, false)
    };
    if empty {
        shard.remove_at(h, i);
    }
    drop(shard);
    if removed > 0 {
        ctx.dirty(removed as u64);
        ctx.notify(notify::SET, "srem", key);
        if empty {
            ctx.notify(notify::GENERIC, "del", key);
        }
    }
    ctx.out.int(removed as i64);
    Ok(())
}

fn smembers(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    match shard.read(h, key, ctx.now, touch) {
        None => ctx.out.set(0),
        Some(i) => {
            let s = set_of(&shard.entry(i).value)?;
            ctx.out.set(s.len());
            for m in s.iter() {
                ctx.out.bulk(m);
            }
        }
    }
    Ok(())
}

fn sismember(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let found = match shard.read(h, key, ctx.now, touch) {
        None => false,
        Some(i) => set_of(&shard.entry(i).value)?.contains(args.get(2)),
    };
    ctx.out.int(found as i64);
    Ok(())
}

fn smismember(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let set = match shard.read(h, key, ctx.now, touch) {
        None => None,
        Some(i) => Some(set_of(&shard.entry(i).value)?),
    };
    ctx.out.array(args.len() - 2);
    for j in 2..args.len() {
        ctx.out
            .int(set.is_some_and(|s| s.contains(args.get(j))) as i64);
    }
    Ok(())
}

fn scard(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let n = match shard.read(h, key, ctx.now, touch) {
        None => 0,
        Some(i) => set_of(&shard.entry(i).value)?.len(),
    };
    ctx.out.int(n as i64);
    Ok(())
}

fn spop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let key = args.get(1);
    let count = if args.len() == 3 {
        // Redis's getPositiveLongFromObjectOrReply: one message for both failures.
        match crate::util::parse_i64(args.get(2)) {
            Some(c) if c >= 0 => Some(c as u64),
            _ => return Err(CmdError::msg("value is out of range, must be positive")),
        }
    } else {
        None
    };
    let max = max_intset(ctx);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.lookup(h, key, ctx.now) else {
        match count {
            None => ctx.out.null(),
            Some(_) => ctx.out.set(0),
        }
        return Ok(());
    };
    let size = set_of(&shard.entry(i).value)?.len();
    let mut rng = rand::rng();
    let popped = match count {
        None => {
            let m = shard.value_mut(i, |v| match v {
                Value::Set(s) => s.pop_random(&mut rng),
                _ => None,
            });
            match m {
                Some(m) => ctx.out.bulk(m.as_slice()),
                None => ctx.out.null(),
            }
            1
        }
        Some(0) => {
            ctx.out.set(0);
            return Ok(());
        }
        Some(c) if c as usize >= size => {
            // The whole set: answered like SMEMBERS of a fresh copy, then deleted.
            let s = set_of(&shard.entry(i).value)?;
            reply_members(ctx.out, s.iter().collect(), max);
            size
        }
        Some(c) => {
            let c = c as usize;
            ctx.out.set(c);
            let out = &mut *ctx.out;
            shard.value_mut(i, |v| {
                if let Value::Set(s) = v {
                    s.pop_many(c, &mut rng, |m| out.bulk(m));
                }
            });
            c
        }
    };
    let empty = match &shard.entry(i).value {
        Value::Set(s) => s.is_empty() || popped >= size,
        _ => false,
    };
    if empty {
        shard.remove_at(h, i);
    }
    drop(shard);
    ctx.dirty(popped as u64);
    ctx.notify(notify::SET, "spop", key);
    if empty {
        ctx.notify(notify::GENERIC, "del", key);
    }
    Ok(())
}

fn srandmember(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let key = args.get(1);
    let count = if args.len() == 3 {
        let c = arg_i64(args.get(2))?;
        if c == i64::MIN {
            return Err(CmdError::msg(
                "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            ));
        }
        Some(c)
    } else {
        None
    };
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.read(h, key, ctx.now, touch) else {
        match count {
            None => ctx.out.null(),
            Some(_) => ctx.out.array(0),
        }
        return Ok(());
    };
    let s = set_of(&shard.entry(i).value)?;
    let mut rng = rand::rng();
    match count {
        None => match s.random(&mut rng) {
            Some(m) => ctx.out.bulk(m),
            None => ctx.out.null(),
        },
        Some(c) if c < 0 => {
            // Repetitions allowed: |count| independent picks.
            let n = c.unsigned_abs();
            ctx.out.array(n as usize);
            for _ in 0..n {
                match s.random(&mut rng) {
                    Some(m) => ctx.out.bulk(m),
                    None => ctx.out.null(),
                }
            }
        }
        Some(c) if c as u64 >= s.len() as u64 => {
            ctx.out.array(s.len());
            for m in s.iter() {
                ctx.out.bulk(m);
            }
        }
        Some(c) => {
            let picked = s.sample_distinct(c as usize, &mut rng);
            ctx.out.bulks(picked.into_iter());
        }
    }
    Ok(())
}

fn smove(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (src, dst, member) = (args.get(1), args.get(2), args.get(3));
    let max = max_intset(ctx);
    let db = ctx.db();
    let (hs, hd) = (hash_key(src), hash_key(dst));
    let mut lock = db.lock_many(&[hs, hd]);
    if lock.shard(hs).lookup(hs, src, ctx.now).is_none() {
        ctx.out.int(0);
        return Ok(());
    }
    // Positions are looked up again before each use: a lazy expiry in the
    // same shard may compact it and move entries.
    if let Some(j) = lock.shard(hd).lookup(hd, dst, ctx.now) {
        set_of(&lock.shard(hd).entry(j).value)?;
    }
    let shard = lock.shard(hs);
    let Some(i) = shard.lookup(hs, src, ctx.now) else {
        ctx.out.int(0);
        return Ok(());
    };
    let s = set_of(&shard.entry(i).value)?;
    if src == dst {
        let found = s.contains(member);
        ctx.out.int(found as i64);
        return Ok(());
    }
    if !s.contains(member) {
        ctx.out.int(0);
        return Ok(());
    }
    let src_empty = shard.value_mut(i, |v| match v {
        Value::Set(s) => {
            s.remove(member);
            s.is_empty()
        }
        _ => false,
    });
    if src_empty {
        shard.remove_at(hs, i);
    }
    let shard = lock.shard(hd);
    let added = match shard.lookup(hd, dst, ctx.now) {
        Some(j) if set_of(&shard.entry(j).value)?.contains(member) => false,
        Some(j) => shard.value_mut(j, |v| match v {
            Value::Set(s) => s.add(member, max),
            _ => false,
        }),
        None => {
            let mut s = Set::new();
            s.add(member, max);
            shard.insert_new(hd, dst, Value::Set(Box::new(s)), 0, ctx.now);
            true
        }
    };
    drop(lock);
    ctx.dirty(1 + added as u64);
    ctx.notify(notify::SET, "srem", src);
    if src_empty {
        ctx.notify(notify::GENERIC, "del", src);
    }
    if added {
        ctx.notify(notify::SET, "sadd", dst);
    }
    ctx.out.int(1);
    Ok(())
}

/// Shard guards for a multi-key command, taken in ascending shard order like
/// `Keyspace::lock_many` (so the two never deadlock), but readable side by
/// side: set algebra needs shared borrows of several shards at once.
struct Guards<'a> {
    guards: Vec<(usize, MutexGuard<'a, Shard>)>,
}

impl<'a> Guards<'a> {
    fn new(db: &'a Keyspace, shards: &[usize]) -> Self {
        let mut idx = shards.to_vec();
        idx.sort_unstable();
        idx.dedup();
        Guards {
            guards: idx.into_iter().map(|i| (i, db.lock_shard(i))).collect(),
        }
    }

    fn pos(&self, shard: usize) -> usize {
        // Every shard asked for was locked in `new`; fall back to the first
        // guard rather than panic (never reached).
        self.guards
            .binary_search_by_key(&shard, |(i, _)| *i)
            .unwrap_or(0)
    }

    fn get(&self, shard: usize) -> &Shard {
        &self.guards[self.pos(shard)].1
    }

    fn get_mut(&mut self, shard: usize) -> &mut Shard {
        let p = self.pos(shard);
        &mut self.guards[p].1
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// What a set-algebra command does with the result.
#[derive(Clone, Copy)]
enum Sink<'k> {
    Reply,
    /// SINTERCARD: count only, stopping at the limit (0 = none).
    Card(usize),
    Store(&'k [u8]),
}

/// SINTER SUNION SDIFF, their STORE forms and SINTERCARD over `keys`, all
/// under the shard locks of every key involved (atomic).
fn algebra(ctx: &mut Ctx<'_>, keys: &[&[u8]], op: Op, sink: Sink<'_>) -> CmdResult {
    let max = max_intset(ctx);
    let touch = ctx.touch();
    let now = ctx.now;
    let db = ctx.db();
    let hashes: Vec<u64> = keys.iter().map(|k| hash_key(k)).collect();
    let dst = match sink {
        Sink::Store(d) => Some((d, hash_key(d))),
        _ => None,
    };
    let mut shard_ids: Vec<usize> = hashes.iter().map(|&h| db.shard_of(h)).collect();
    if let Some((_, hd)) = dst {
        shard_ids.push(db.shard_of(hd));
    }
    let mut g = Guards::new(&db, &shard_ids);
    // First pass: lazy expiry and hit/miss counting. Second pass: positions,
    // stable now that nothing more can expire at `now`.
    for (k, &h) in keys.iter().zip(&hashes) {
        let sh = g.get_mut(db.shard_of(h));
        if dst.is_some() {
            sh.lookup(h, k, now);
        } else {
            sh.read(h, k, now, touch);
        }
    }
    if let Some((d, hd)) = dst {
        g.get_mut(db.shard_of(hd)).lookup(hd, d, now);
    }
    let mut pos = Vec::with_capacity(keys.len());
    for (k, &h) in keys.iter().zip(&hashes) {
        let sh = db.shard_of(h);
        pos.push(g.get_mut(sh).lookup(h, k, now).map(|i| (sh, i)));
    }
    let mut sets: Vec<Option<&Set>> = Vec::with_capacity(keys.len());
    for p in &pos {
        sets.push(match *p {
            Some((sh, i)) => Some(set_of(&g.get(sh).entry(i).value)?),
            None => None,
        });
    }

    let mut result: Vec<&[u8]> = Vec::new();
    let mut card = 0usize;
    match op {
        Op::Inter => {
            let mut present: Vec<&Set> = sets.iter().flatten().copied().collect();
            if present.len() == sets.len() {
                present.sort_by_key(|s| s.len());
                if let Some((first, rest)) = present.split_first() {
                    for m in first.iter() {
                        if rest.iter().all(|s| s.contains(m)) {
                            if let Sink::Card(limit) = sink {
                                card += 1;
                                if limit != 0 && card >= limit {
                                    break;
                                }
                            } else {
                                result.push(m);
                            }
                        }
                    }
                }
            }
        }
        Op::Union => {
            let mut seen: hashbrown::HashSet<&[u8]> = hashbrown::HashSet::new();
            for s in sets.iter().flatten() {
                for m in s.iter() {
                    if seen.insert(m) {
                        result.push(m);
                    }
                }
            }
        }
        Op::Diff => {
            if let Some(Some(first)) = sets.first() {
                let rest = sets.get(1..).unwrap_or(&[]);
                for m in first.iter() {
                    if !rest.iter().flatten().any(|s| s.contains(m)) {
                        result.push(m);
                    }
                }
            }
        }
    }

    match sink {
        Sink::Card(_) => {
            drop(sets);
            drop(g);
            ctx.out.int(card as i64);
        }
        Sink::Reply => {
            if op == Op::Inter {
                // Redis answers in the iteration order of the smallest set.
                ctx.out.set(result.len());
                for m in result {
                    ctx.out.bulk(m);
                }
            } else {
                reply_members(ctx.out, result, max);
            }
        }
        Sink::Store(d) => {
            let mut out = Set::new();
            for m in result {
                out.add(m, max);
            }
            drop(sets);
            let hd = hash_key(d);
            let shard = g.get_mut(db.shard_of(hd));
            let n = out.len();
            let mut deleted = false;
            if n > 0 {
                shard.set(hd, d, Value::Set(Box::new(out)), Ttl::At(0), now);
            } else if let Some(i) = shard.lookup(hd, d, now) {
                shard.remove_at(hd, i);
                deleted = true;
            }
            drop(g);
            if n > 0 {
                ctx.dirty(1);
                let event = match op {
                    Op::Inter => "sinterstore",
                    Op::Union => "sunionstore",
                    Op::Diff => "sdiffstore",
                };
                ctx.notify(notify::SET, event, d);
            } else if deleted {
                ctx.dirty(1);
                ctx.notify(notify::GENERIC, "del", d);
            }
            ctx.out.int(n as i64);
        }
    }
    Ok(())
}

/// The arguments from `from` on, as key slices.
fn keys_from<'a>(args: &'a Args<'_>, from: usize, to: usize) -> Vec<&'a [u8]> {
    (from..to).map(|j| args.get(j)).collect()
}

fn sinter(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    algebra(ctx, &keys_from(args, 1, args.len()), Op::Inter, Sink::Reply)
}

fn sunion(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    algebra(ctx, &keys_from(args, 1, args.len()), Op::Union, Sink::Reply)
}

fn sdiff(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    algebra(ctx, &keys_from(args, 1, args.len()), Op::Diff, Sink::Reply)
}

fn sinterstore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let keys = keys_from(args, 2, args.len());
    algebra(ctx, &keys, Op::Inter, Sink::Store(args.get(1)))
}

fn sunionstore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let keys = keys_from(args, 2, args.len());
    algebra(ctx, &keys, Op::Union, Sink::Store(args.get(1)))
}

fn sdiffstore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let keys = keys_from(args, 2, args.len());
    algebra(ctx, &keys, Op::Diff, Sink::Store(args.get(1)))
}

fn sintercard(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let numkeys = match crate::util::parse_i64(args.get(1)) {
        Some(n) if n >= 1 => n as u64,
        _ => return Err(CmdError::msg("numkeys should be greater than 0")),
    };
    if numkeys > (args.len() - 2) as u64 {
        return Err(CmdError::msg(
            "Number of keys can't be greater than number of args",
        ));
    }
    let first_opt = 2 + numkeys as usize;
    let mut limit = 0usize;
    let mut j = first_opt;
    while j < args.len() {
        if is(args.get(j), "limit") && j + 1 < args.len() {
            limit = match crate::util::parse_i64(args.get(j + 1)) {
                Some(l) if l >= 0 => usize::try_from(l).unwrap_or(usize::MAX),
                _ => return Err(CmdError::msg("LIMIT can't be negative")),
            };
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    algebra(
        ctx,
        &keys_from(args, 2, first_opt),
        Op::Inter,
        Sink::Card(limit),
    )
}

fn sscan(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    // The cursor is checked before the key, the options only for an existing set (as Redis).
    if keys::parse_cursor(args.get(2)).is_none() {
        return Err(CmdError::msg("invalid cursor"));
    }
    let key = args.get(1);
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.read(h, key, ctx.now, touch) else {
        super::scan_reply(ctx.out, 0, std::iter::empty());
        return Ok(());
    };
    let s = set_of(&shard.entry(i).value)?;
    let opts = parse_scan_opts(args)?;
    // Two passes over the same positions (count, then write) reply straight
    // from the set without collecting the members.
    let mut n = 0;
    let next = s.scan(opts.cursor, opts.count, |m| n += opts.matches(m) as usize);
    let out = &mut *ctx.out;
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(n);
    s.scan(opts.cursor, opts.count, |m| {
        if opts.matches(m) {
            out.bulk(m);
        }
    });
    Ok(())
}
