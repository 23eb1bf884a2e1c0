//! Sorted-set commands: ZADD, ranges by rank/score/lex, pops (blocking too),
//! set algebra (ZUNION/ZINTER/ZDIFF and their STORE forms), ZRANDMEMBER, ZSCAN.
//!
//! Ranges are computed as rank intervals on the [`ZSet`] (see store/zset.rs),
//! so every range command shares one parser and one interval computation.

use super::{CmdError, CmdResult, CommandSpec, Ctx, arg_f64, arg_i64, arg_timeout, flags::*, is};
use crate::cmd;
use crate::notify;
use crate::protocol::{Args, Out};
use crate::store::zset::{Limits, ZSet};
use crate::store::{Shard, Ttl, Value, hash_key};

const ZS: &[&str] = &["sortedset"];

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    cmd!("zadd", -4, WRITE | DENYOOM | FAST, (1, 1, 1), ZS, "sorted-set", "1.2.0", "Add one or more members to a sorted set, or update its score if it already exists", zadd),
    cmd!("zincrby", 4, WRITE | DENYOOM | FAST, (1, 1, 1), ZS, "sorted-set", "1.2.0", "Increment the score of a member in a sorted set", zincrby),
    cmd!("zrem", -3, WRITE | FAST, (1, 1, 1), ZS, "sorted-set", "1.2.0", "Remove one or more members from a sorted set", zrem),
    cmd!("zcard", 2, READONLY | FAST, (1, 1, 1), ZS, "sorted-set", "1.2.0", "Get the number of members in a sorted set", zcard),
    cmd!("zscore", 3, READONLY | FAST, (1, 1, 1), ZS, "sorted-set", "1.2.0", "Get the score associated with the given member in a sorted set", zscore),
    cmd!("zmscore", -3, READONLY | FAST, (1, 1, 1), ZS, "sorted-set", "6.2.0", "Get the score associated with the given members in a sorted set", zmscore),
    cmd!("zrank", 3, READONLY | FAST, (1, 1, 1), ZS, "sorted-set", "2.0.0", "Determine the index of a member in a sorted set", zrank),
    cmd!("zrevrank", 3, READONLY | FAST, (1, 1, 1), ZS, "sorted-set", "2.0.0", "Determine the index of a member in a sorted set, with scores ordered from high to low", zrevrank),
    cmd!("zrange", -4, READONLY, (1, 1, 1), ZS, "sorted-set", "1.2.0", "Return a range of members in a sorted set", zrange),
    cmd!("zrangestore", -5, WRITE | DENYOOM, (1, 2, 1), ZS, "sorted-set", "6.2.0", "Store a range of members from sorted set into another key", zrangestore),
    cmd!("zrevrange", -4, READONLY, (1, 1, 1), ZS, "sorted-set", "1.2.0", "Return a range of members in a sorted set, by index, with scores ordered from high to low", zrevrange),
    cmd!("zrangebyscore", -4, READONLY, (1, 1, 1), ZS, "sorted-set", "1.0.5", "Return a range of members in a sorted set, by score", zrangebyscore),
    cmd!("zrevrangebyscore", -4, READONLY, (1, 1, 1), ZS, "sorted-set", "2.2.0", "Return a range of members in a sorted set, by score, with scores ordered from high to low", zrevrangebyscore),
    cmd!("zrangebylex", -4, READONLY, (1, 1, 1), ZS, "sorted-set", "2.8.9", "Return a range of members in a sorted set, by lexicographical range", zrangebylex),
    cmd!("zrevrangebylex", -4, READONLY, (1, 1, 1), ZS, "sorted-set", "2.8.9", "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.", zrevrangebylex),
    cmd!("zcount", 4, READONLY | FAST, (1, 1, 1), ZS, "sorted-set", "2.0.0", "Count the members in a sorted set with scores within the given values", zcount),
    cmd!("zlexcount", 4, READONLY | FAST, (1, 1, 1), ZS, "sorted-set", "2.8.9", "Count the number of members in a sorted set between a given lexicographical range", zlexcount),
    cmd!("zpopmin", -2, WRITE | FAST, (1, 1, 1), ZS, "sorted-set", "5.0.0", "Remove and return members with the lowest scores in a sorted set", zpopmin),
    cmd!("zpopmax", -2, WRITE | FAST, (1, 1, 1), ZS, "sorted-set", "5.0.0", "Remove and return members with the highest scores in a sorted set", zpopmax),
    cmd!("zmpop", -4, WRITE | MOVABLEKEYS, (0, 0, 0), ZS, "sorted-set", "7.0.0", "Remove and return members with scores in a sorted set", zmpop),
    cmd!("bzpopmin", -3, WRITE | NOSCRIPT | BLOCKING | FAST, (1, -2, 1), ZS, "sorted-set", "5.0.0", "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available", bzpopmin),
    cmd!("bzpopmax", -3, WRITE | NOSCRIPT | BLOCKING | FAST, (1, -2, 1), ZS, "sorted-set", "5.0.0", "Remove and return the member with the highest score from one or more sorted sets, or block until one is available", bzpopmax),
    cmd!("bzmpop", -5, WRITE | BLOCKING | MOVABLEKEYS, (0, 0, 0), ZS, "sorted-set", "7.0.0", "Remove and return members with scores in a sorted set or block until one is available", bzmpop),
    cmd!("zrandmember", -2, READONLY, (1, 1, 1), ZS, "sorted-set", "6.2.0", "Get one or multiple random elements from a sorted set", zrandmember),
    cmd!("zremrangebyrank", 4, WRITE, (1, 1, 1), ZS, "sorted-set", "2.0.0", "Remove all members in a sorted set within the given indexes", zremrangebyrank),
    cmd!("zremrangebyscore", 4, WRITE, (1, 1, 1), ZS, "sorted-set", "1.2.0", "Remove all members in a sorted set within the given scores", zremrangebyscore),
    cmd!("zremrangebylex", 4, WRITE, (1, 1, 1), ZS, "sorted-set", "2.8.9", "Remove all members in a sorted set between the given lexicographical range", zremrangebylex),
    cmd!("zunion", -3, READONLY | MOVABLEKEYS, (0, 0, 0), ZS, "sorted-set", "6.2.0", "Add multiple sorted sets", zunion),
    cmd!("zinter", -3, READONLY | MOVABLEKEYS, (0, 0, 0), ZS, "sorted-set", "6.2.0", "Intersect multiple sorted sets", zinter),
    cmd!("zdiff", -3, READONLY | MOVABLEKEYS, (0, 0, 0), ZS, "sorted-set", "6.2.0", "Subtract multiple sorted sets", zdiff),
    cmd!("zunionstore", -4, WRITE | DENYOOM | MOVABLEKEYS, (1, 1, 1), ZS, "sorted-set", "2.0.0", "Add multiple sorted sets and store the resulting sorted set in a new key", zunionstore),
    cmd!("zinterstore", -4, WRITE | DENYOOM | MOVABLEKEYS, (1, 1, 1), ZS, "sorted-set", "2.0.0", "Intersect multiple sorted sets and store the resulting sorted set in a new key", zinterstore),
    cmd!("zdiffstore", -4, WRITE | DENYOOM | MOVABLEKEYS, (1, 1, 1), ZS, "sorted-set", "6.2.0", "Subtract multiple sorted sets and store the resulting sorted set in a new key", zdiffstore),
    cmd!("zintercard", -3, READONLY | MOVABLEKEYS, (0, 0, 0), ZS, "sorted-set", "7.0.0", "Intersect multiple sorted sets and return the cardinality of the result", zintercard),
    cmd!("zscan", -3, READONLY, (1, 1, 1), ZS, "sorted-set", "2.8.0", "Incrementally iterate sorted sets elements and associated scores", zscan),
];

const NAN_ERR: &str = "resulting score is not a number (NaN)";

/// The listpack limits, read once per command before any shard lock.
fn limits(ctx: &Ctx<'_>) -> Limits {
    let c = ctx.shared.config.read();
    Limits {
        entries: c.zset_max_listpack_entries,
        value: c.zset_max_listpack_value,
    }
}

/// The sorted set at `i`, or WRONGTYPE.
fn zref(shard: &Shard, i: u32) -> Result<&ZSet, CmdError> {
    match &shard.entry(i).value {
        Value::ZSet(z) => Ok(z),
        _ => Err(CmdError::WrongType),
    }
}

/// Mutates the sorted set at `i` (known to be one).
fn zmut<R: Default>(shard: &mut Shard, i: u32, f: impl FnOnce(&mut ZSet) -> R) -> R {
    shard.value_mut(i, |v| match v {
        Value::ZSet(z) => f(z),
        _ => R::default(),
    })
}

/// Deletes the key at `i` if its set became empty, with Redis's "del" event.
fn drop_if_empty(ctx: &Ctx<'_>, shard: &mut Shard, h: u64, i: u32, key: &[u8]) {
    if shard.entry(i).value.is_empty() {
        shard.remove_at(h, i);
        ctx.notify(notify::GENERIC, "del", key);
    }
}

/// Writes `n` elements, with scores as Redis does: flat in RESP2, pairs in RESP3.
fn reply_elems<'a>(
    out: &mut Out,
    n: usize,
    withscores: bool,
    items: impl Iterator<Item = (&'a [u8], f64)>,
) {
    let resp3 = out.resp3();
    out.array(if withscores && !resp3 { 2 * n } else { n });
    for (m, s) in items.take(n) {
        if withscores && resp3 {
            out.array(2);
        }
        out.bulk(m);
        if withscores {
            out.double(s);
        }
    }
}

// ---------------------------------------------------------------- ZADD

fn zadd(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    zadd_generic(ctx, args, false)
}

fn zincrby(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    zadd_generic(ctx, args, true)
}

fn zadd_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, mut incr: bool) -> CmdResult {
    let key = args.get(1);
    let (mut nx, mut xx, mut gt, mut lt, mut ch) = (false, false, false, false, false);
    let mut idx = 2;
    while idx < args.len() {
        let o = args.get(idx);
        if is(o, "nx") {
            nx = true;
        } else if is(o, "xx") {
            xx = true;
        } else if is(o, "ch") {
            ch = true;
        } else if is(o, "incr") {
            incr = true;
        } else if is(o, "gt") {
            gt = true;
        } else if is(o, "lt") {
            lt = true;
        } else {
            break;
        }
        idx += 1;
    }
    let elements = args.len() - idx;
    if elements % 2 == 1 || elements == 0 {
        return Err(CmdError::Syntax);
    }
    let elements = elements / 2;
    if nx && xx {
        return Err(CmdError::msg(
            "XX and NX options at the same time are not compatible",
        ));
    }
    if ((gt || lt) && nx) || (gt && lt) {
        return Err(CmdError::msg(
            "GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if incr && elements > 1 {
        return Err(CmdError::msg(
            "INCR option supports a single increment-element pair",
        ));
    }
    // All scores are checked before anything changes (all or nothing).
    for j in 0..elements {
        arg_f64(args.get(idx + 2 * j))?;
    }
    let lim = limits(ctx);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let i = match shard.lookup(h, key, ctx.now) {
        Some(i) => {
            zref(&shard, i)?;
            i
        }
        None if xx => {
            if incr {
                ctx.out.null();
            } else {
                ctx.out.int(0);
            }
            return Ok(());
        }
        None => {
            let first = args.get(idx + 1);
            let z = if lim.entries == 0 || first.len() > lim.value {
                ZSet::new_big()
            } else {
                ZSet::new()
            };
            shard.insert_new(h, key, Value::ZSet(Box::new(z)), 0, ctx.now)
        }
    };
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0);
    let mut last = 0.0;
    let mut err = None;
    for j in 0..elements {
        let score = arg_f64(args.get(idx + 2 * j))?;
        let m = args.get(idx + 2 * j + 1);
        let cur = zref(&shard, i)?.score(m);
        match cur {
            Some(c) => {
                if nx {
                    continue;
                }
                let mut s = score;
                if incr {
                    s += c;
                    if s.is_nan() {
                        err = Some(CmdError::msg(NAN_ERR));
                        break;
                    }
                }
                if (lt && s >= c) || (gt && s <= c) {
                    continue;
                }
                last = s;
                processed += 1;
                if s != c {
                    zmut(&mut shard, i, |z| z.update(m, c, s));
                    updated += 1;
                }
            }
            None if !xx => {
                zmut(&mut shard, i, |z| z.insert(m, score, lim));
                added += 1;
                processed += 1;
                last = score;
            }
            None => {}
        }
    }
    if shard.entry(i).value.is_empty() {
        // Only reachable through an error on a key this command created.
        shard.remove_at(h, i);
    }
    drop(shard);
    if added + updated > 0 {
        ctx.dirty((added + updated) as u64);
        ctx.notify(notify::ZSET, if incr { "zincr" } else { "zadd" }, key);
    }
    if let Some(e) = err {
        return Err(e);
    }
    if incr {
        if processed > 0 {
            ctx.out.double(last);
        } else {
            ctx.out.null();
        }
    } else {
        ctx.out.int(if ch { added + updated } else { added });
    }
    Ok(())
}

fn zrem(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.lookup(h, key, ctx.now) else {
        ctx.out.int(0);
        return Ok(());
    };
    zref(&shard, i)?;
    let mut deleted = 0;
    for m in args.iter().skip(2) {
        if zref(&shard, i)?.score(m).is_some() {
            zmut(&mut shard, i, |z| z.remove(m));
            deleted += 1;
            if shard.entry(i).value.is_empty() {
                break;
            }
        }
    }
    if deleted > 0 {
        ctx.notify(notify::ZSET, "zrem", key);
        drop_if_empty(ctx, &mut shard, h, i, key);
        ctx.dirty(deleted);
    }
    ctx.out.int(deleted as i64);
    Ok(())
}

// ---------------------------------------------------------------- point reads

fn zcard(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    match shard.read(h, key, ctx.now, ctx.touch()) {
        None => ctx.out.int(0),
        Some(i) => ctx.out.int(zref(&shard, i)?.len() as i64),
    }
    Ok(())
}

fn zscore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    match shard.read(h, key, ctx.now, ctx.touch()) {
        None => ctx.out.null(),
        Some(i) => match zref(&shard, i)?.score(args.get(2)) {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        },
    }
    Ok(())
}

fn zmscore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let z = match shard.read(h, key, ctx.now, ctx.touch()) {
        None => None,
        Some(i) => Some(zref(&shard, i)?),
    };
    ctx.out.array(args.len() - 2);
    for m in args.iter().skip(2) {
        match z.and_then(|z| z.score(m)) {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn rank_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, rev: bool) -> CmdResult {
    let key = args.get(1);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.read(h, key, ctx.now, ctx.touch()) else {
        ctx.out.null();
        return Ok(());
    };
    let z = zref(&shard, i)?;
    match z.rank(args.get(2)) {
        Some(r) if rev => ctx.out.int((z.len() - 1 - r) as i64),
        Some(r) => ctx.out.int(r as i64),
        None => ctx.out.null(),
    }
    Ok(())
}

fn zrank(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    rank_generic(ctx, args, false)
}

fn zrevrank(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    rank_generic(ctx, args, true)
}

// ---------------------------------------------------------------- range parsing

/// Parses a score bound like Redis's `zslParseRange`, which uses plain
/// `strtod`: leading spaces are accepted and an empty string reads as 0.
fn parse_score_item(a: &[u8]) -> Option<(f64, bool)> {
    let (excl, body) = match a.split_first() {
        Some((b'(', rest)) => (true, rest),
        _ => (false, a),
    };
    if body.is_empty() {
        return Some((0.0, excl));
    }
    let t = std::str::from_utf8(body).ok()?;
    let t = t.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    if t.is_empty() || t.ends_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if body.starts_with("0x") || body.contains("nan") {
        return None;
    }
    let v: f64 = t.parse().ok()?;
    (!v.is_nan()).then_some((v, excl))
}

#[derive(Clone, Copy, Debug)]
enum Lex<'a> {
    Min,
    Max,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

fn parse_lex_item(a: &[u8]) -> Option<Lex<'_>> {
    match a.split_first()? {
        (b'+', []) => Some(Lex::Max),
        (b'-', []) => Some(Lex::Min),
        (b'(', rest) => Some(Lex::Excl(rest)),
        (b'[', rest) => Some(Lex::Incl(rest)),
        _ => None,
    }
}

/// A parsed score or lex interval.
#[derive(Clone, Copy, Debug)]
enum Bounds<'a> {
    Score((f64, bool), (f64, bool)),
    Lex(Lex<'a>, Lex<'a>),
}

fn score_bounds<'a>(min: &[u8], max: &[u8]) -> Result<Bounds<'a>, CmdError> {
    match (parse_score_item(min), parse_score_item(max)) {
        (Some(a), Some(b)) => Ok(Bounds::Score(a, b)),
        _ => Err(CmdError::msg("min or max is not a float")),
    }
}

fn lex_bounds<'a>(min: &'a [u8], max: &'a [u8]) -> Result<Bounds<'a>, CmdError> {
    match (parse_lex_item(min), parse_lex_item(max)) {
        (Some(a), Some(b)) => Ok(Bounds::Lex(a, b)),
        _ => Err(CmdError::msg("min or max not valid string range item")),
    }
}

impl Bounds<'_> {
    /// The rank interval `[lo, hi)` the bounds select.
    fn ranks(&self, z: &ZSet) -> (usize, usize) {
        let (lo, hi) = match *self {
            Bounds::Score((min, minex), (max, maxex)) => (
                z.count_score_below(min, minex),
                z.count_score_below(max, !maxex),
            ),
            Bounds::Lex(min, max) => {
                let side = |b: Lex<'_>, is_max: bool| match b {
                    Lex::Min => 0,
                    Lex::Max => z.len(),
                    Lex::Incl(m) => z.count_lex_below(m, is_max),
                    Lex::Excl(m) => z.count_lex_below(m, !is_max),
                };
                (side(min, false), side(max, true))
            }
        };
        (lo, hi.max(lo))
    }
}

/// Sanitizes ZRANGE-style indexes into an ascending rank interval `[s, e)`.
fn rank_interval(len: usize, start: i64, end: i64, rev: bool) -> (usize, usize) {
    let llen = len as i64;
    let (mut s, mut e) = (start, end);
    if s < 0 {
        s += llen;
    }
    if e < 0 {
        e += llen;
    }
    if s < 0 {
        s = 0;
    }
    if s > e || s >= llen {
        return (0, 0);
    }
    if e >= llen {
        e = llen - 1;
    }
    if rev {
        ((llen - 1 - e) as usize, (llen - s) as usize)
    } else {
        (s as usize, (e + 1) as usize)
    }
}

/// Applies LIMIT offset/count to `[lo, hi)`, counting from the far end when `rev`.
fn apply_limit(lo: usize, hi: usize, offset: i64, limit: i64, rev: bool) -> (usize, usize) {
    if offset < 0 {
        return (0, 0);
    }
    let avail = hi - lo;
    let off = usize::try_from(offset).unwrap_or(usize::MAX).min(avail);
    let n = if limit < 0 {
        avail - off
    } else {
        (avail - off).min(usize::try_from(limit).unwrap_or(usize::MAX))
    };
    if rev {
        (hi - off - n, hi - off)
    } else {
        (lo + off, lo + off + n)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Rank,
    Score,
    Lex,
}

/// What a ZRANGE-family command asks for.
struct RangeQuery<'a> {
    kind: RangeType,
    rev: bool,
    withscores: bool,
    limit: Option<(i64, i64)>,
    rank: (i64, i64),
    bounds: Option<Bounds<'a>>,
}

impl RangeQuery<'_> {
    /// The ascending rank interval selected in `z`.
    fn interval(&self, z: &ZSet) -> (usize, usize) {
        match (self.kind, self.bounds) {
            (RangeType::Rank, _) | (_, None) => {
                rank_interval(z.len(), self.rank.0, self.rank.1, self.rev)
            }
            (_, Some(b)) => {
                let (lo, hi) = b.ranks(z);
                let (off, lim) = self.limit.unwrap_or((0, -1));
                if off > 0 && off as u64 >= z.len() as u64 {
                    return (0, 0);
                }
                apply_limit(lo, hi, off, lim, self.rev)
            }
        }
    }
}

/// Redis's `zrangeGenericCommand` argument parsing: `start` is the index of
/// the source key; `kind`/`rev` are fixed by the legacy commands.
fn parse_range<'a>(
    args: &'a Args<'_>,
    start: usize,
    store: bool,
    kind: Option<RangeType>,
    rev: Option<bool>,
) -> Result<RangeQuery<'a>, CmdError> {
    let (mut kind, mut rev) = (kind, rev);
    let (mut withscores, mut limit) = (false, None);
    let mut j = start + 3;
    while j < args.len() {
        let a = args.get(j);
        let left = args.len() - j - 1;
        if !store && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && left >= 2 {
            limit = Some((arg_i64(args.get(j + 1))?, arg_i64(args.get(j + 2))?));
            j += 2;
        } else if rev.is_none() && is(a, "rev") {
            rev = Some(true);
        } else if kind.is_none() && is(a, "bylex") {
            kind = Some(RangeType::Lex);
        } else if kind.is_none() && is(a, "byscore") {
            kind = Some(RangeType::Score);
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    let kind = kind.unwrap_or(RangeType::Rank);
    if limit.is_some() && kind == RangeType::Rank {
        return Err(CmdError::msg(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && kind == RangeType::Lex {
        return Err(CmdError::msg(
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut a, mut b) = (args.get(start + 1), args.get(start + 2));
    if rev && kind != RangeType::Rank {
        std::mem::swap(&mut a, &mut b);
    }
    let mut q = RangeQuery {
        kind,
        rev,
        withscores,
        limit,
        rank: (0, 0),
        bounds: None,
    };
    match kind {
        RangeType::Rank => q.rank = (arg_i64(a)?, arg_i64(b)?),
        RangeType::Score => q.bounds = Some(score_bounds(a, b)?),
        RangeType::Lex => q.bounds = Some(lex_bounds(a, b)?),
    }
    Ok(q)
}

fn range_generic(
    ctx: &mut Ctx<'_>,
    args: &Args<'_>,
    kind: Option<RangeType>,
    rev: Option<bool>,
) -> CmdResult {
    let q = parse_range(args, 1, false, kind, rev)?;
    let key = args.get(1);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.read(h, key, ctx.now, ctx.touch()) else {
        ctx.out.array(0);
        return Ok(());
    };
    let z = zref(&shard, i)?;
    let (s, e) = q.interval(z);
    reply_elems(ctx.out, e - s, q.withscores, z.range(s, e, q.rev));
    Ok(())
}

fn zrange(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    range_generic(ctx, args, None, None)
}

fn zrevrange(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    range_generic(ctx, args, Some(RangeType::Rank), Some(true))
}

fn zrangebyscore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    range_generic(ctx, args, Some(RangeType::Score), Some(false))
}

fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    range_generic(ctx, args, Some(RangeType::Score), Some(true))
}

fn zrangebylex(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    range_generic(ctx, args, Some(RangeType::Lex), Some(false))
}

fn zrevrangebylex(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    range_generic(ctx, args, Some(RangeType::Lex), Some(true))
}

/// Stores `items` (ascending, distinct) at `dst`, or deletes `dst` when
/// empty; replies the new length. `event` is the zset event on success.
fn store_result(
    ctx: &mut Ctx<'_>,
    shard: &mut Shard,
    dst: &[u8],
    items: &[(Vec<u8>, f64)],
    lim: Limits,
    event: &str,
) {
    let h = hash_key(dst);
    if items.is_empty() {
        if shard.remove(h, dst, ctx.now).is_some() {
            ctx.notify(notify::GENERIC, "del", dst);
            ctx.dirty(1);
        }
        ctx.out.int(0);
        return;
    }
    let z = ZSet::from_sorted(items.iter().map(|(m, s)| (m.as_slice(), *s)), lim);
    shard.set(h, dst, Value::ZSet(Box::new(z)), Ttl::At(0), ctx.now);
    ctx.notify(notify::ZSET, event, dst);
    ctx.dirty(1);
    ctx.out.int(items.len() as i64);
}

fn zrangestore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let q = parse_range(args, 2, true, None, None)?;
    let (dst, src) = (args.get(1), args.get(2));
    let lim = limits(ctx);
    let db = ctx.db();
    let (hd, hs) = (hash_key(dst), hash_key(src));
    let mut lock = db.lock_many(&[hd, hs]);
    let shard = lock.shard(hs);
    let mut items: Vec<(Vec<u8>, f64)> = Vec::new();
    if let Some(i) = shard.lookup(hs, src, ctx.now) {
        let z = zref(shard, i)?;
        let (s, e) = q.interval(z);
        items.extend(z.range(s, e, false).map(|(m, s)| (m.to_vec(), s)));
    }
    store_result(ctx, lock.shard(hd), dst, &items, lim, "zrangestore");
    Ok(())
}

fn count_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, lex: bool) -> CmdResult {
    let b = if lex {
        lex_bounds(args.get(2), args.get(3))?
    } else {
        score_bounds(args.get(2), args.get(3))?
    };
    let key = args.get(1);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.read(h, key, ctx.now, ctx.touch()) else {
        ctx.out.int(0);
        return Ok(());
    };
    let (lo, hi) = b.ranks(zref(&shard, i)?);
    ctx.out.int((hi - lo) as i64);
    Ok(())
}

fn zcount(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    count_generic(ctx, args, false)
}

fn zlexcount(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    count_generic(ctx, args, true)
}

// ---------------------------------------------------------------- ZREMRANGEBY*

fn remrange_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, kind: RangeType) -> CmdResult {
    let (a, b) = (args.get(2), args.get(3));
    let (rank, bounds) = match kind {
        RangeType::Rank => ((arg_i64(a)?, arg_i64(b)?), None),
        RangeType::Score => ((0, 0), Some(score_bounds(a, b)?)),
        RangeType::Lex => ((0, 0), Some(lex_bounds(a, b)?)),
    };
    let key = args.get(1);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.lookup(h, key, ctx.now) else {
        ctx.out.int(0);
        return Ok(());
    };
    let z = zref(&shard, i)?;
    let (s, e) = match bounds {
        None => rank_interval(z.len(), rank.0, rank.1, false),
        Some(b) => b.ranks(z),
    };
    let removed = if e > s {
        zmut(&mut shard, i, |z| z.remove_range(s, e))
    } else {
        0
    };
    if removed > 0 {
        let event = match kind {
            RangeType::Rank => "zremrangebyrank",
            RangeType::Score => "zremrangebyscore",
            RangeType::Lex => "zremrangebylex",
        };
        ctx.notify(notify::ZSET, event, key);
        drop_if_empty(ctx, &mut shard, h, i, key);
        ctx.dirty(removed as u64);
    }
    ctx.out.int(removed as i64);
    Ok(())
}

fn zremrangebyrank(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    remrange_generic(ctx, args, RangeType::Rank)
}

fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    remrange_generic(ctx, args, RangeType::Score)
}

fn zremrangebylex(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    remrange_generic(ctx, args, RangeType::Lex)
}

// ---------------------------------------------------------------- pops

/// The reply shapes of the pop family.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PopShape {
    /// ZPOPMIN/ZPOPMAX: flat member, score list.
    Flat,
    /// ZPOPMIN/ZPOPMAX with COUNT in RESP3: [[member, score], ...].
    Nested,
    /// BZPOPMIN/BZPOPMAX: [key, member, score].
    KeyFlat,
    /// ZMPOP/BZMPOP: [key, [[member, score], ...]].
    KeyNested,
}

/// Pops up to `count` elements from the set at `i` (non-empty), replying in `shape`.
#[allow(clippy::too_many_arguments)]
fn pop_at(
    ctx: &mut Ctx<'_>,
    shard: &mut Shard,
    h: u64,
    i: u32,
    key: &[u8],
    max: bool,
    count: usize,
    shape: PopShape,
) -> CmdResult {
    let z = zref(shard, i)?;
    let len = z.len();
    let n = count.min(len);
    let (s, e) = if max { (len - n, len) } else { (0, n) };
    let out = &mut *ctx.out;
    match shape {
        PopShape::Flat => out.array(2 * n),
        PopShape::Nested => out.array(n),
        PopShape::KeyFlat => {
            out.array(2 * n + 1);
            out.bulk(key);
        }
        PopShape::KeyNested => {
            out.array(2);
            out.bulk(key);
            out.array(n);
        }
    }
    let nested = matches!(shape, PopShape::Nested | PopShape::KeyNested);
    for (m, sc) in z.range(s, e, max) {
        if nested {
            out.array(2);
        }
        out.bulk(m);
        out.double(sc);
    }
    zmut(shard, i, |z| z.remove_range(s, e));
    ctx.notify(notify::ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
    drop_if_empty(ctx, shard, h, i, key);
    ctx.dirty(n as u64);
    Ok(())
}

fn zpop_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, max: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = if args.len() == 3 {
        let c = arg_i64(args.get(2))
            .ok()
            .filter(|&c| c >= 0)
            .ok_or_else(|| CmdError::msg("value is out of range, must be positive"))?;
        Some(usize::try_from(c).unwrap_or(usize::MAX))
    } else {
        None
    };
    let key = args.get(1);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.lookup(h, key, ctx.now) else {
        ctx.out.array(0);
        return Ok(());
    };
    zref(&shard, i)?;
    if count == Some(0) {
        ctx.out.array(0);
        return Ok(());
    }
    let shape = if ctx.out.resp3() && count.is_some() {
        PopShape::Nested
    } else {
        PopShape::Flat
    };
    pop_at(ctx, &mut shard, h, i, key, max, count.unwrap_or(1), shape)
}

fn zpopmin(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    zpop_generic(ctx, args, false)
}

fn zpopmax(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    zpop_generic(ctx, args, true)
}

/// Pops from the first non-empty set among `keys`; false if all were empty.
fn pop_first(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    max: bool,
    count: usize,
    shape: PopShape,
) -> Result<bool, CmdError> {
    let db = ctx.db();
    let hashes: Vec<u64> = keys.iter().map(|k| hash_key(k)).collect();
    let mut lock = db.lock_many(&hashes);
    for (k, &h) in keys.iter().zip(&hashes) {
        let shard = lock.shard(h);
        let Some(i) = shard.lookup(h, k, ctx.now) else {
            continue;
        };
        if zref(shard, i)?.is_empty() {
            continue;
        }
        pop_at(ctx, shard, h, i, k, max, count, shape)?;
        return Ok(true);
    }
    Ok(false)
}

fn bzpop_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, max: bool) -> CmdResult {
    let timeout = arg_timeout(args.get(args.len() - 1))?;
    let keys: Vec<&[u8]> = (1..args.len() - 1).map(|j| args.get(j)).collect();
    if pop_first(ctx, &keys, max, 1, PopShape::KeyFlat)? {
        return Ok(());
    }
    if ctx.may_block() {
        return ctx.block(keys.iter().map(|k| k.to_vec()).collect(), timeout);
    }
    ctx.out.null_array();
    Ok(())
}

fn bzpopmin(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    bzpop_generic(ctx, args, false)
}

fn bzpopmax(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    bzpop_generic(ctx, args, true)
}

/// ZMPOP/BZMPOP arguments from `numkeys` at `at`: (keys, max, count).
fn parse_mpop<'a>(args: &'a Args<'_>, at: usize) -> Result<(Vec<&'a [u8]>, bool, usize), CmdError> {
    let numkeys = arg_i64(args.get(at))
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| CmdError::msg("numkeys should be greater than 0"))?;
    let where_idx = usize::try_from(numkeys)
        .ok()
        .and_then(|n| n.checked_add(at + 1))
        .filter(|&w| w < args.len())
        .ok_or(CmdError::Syntax)?;
    let w = args.get(where_idx);
    let max = if is(w, "min") {
        false
    } else if is(w, "max") {
        true
    } else {
        return Err(CmdError::Syntax);
    };
    let mut count = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && is(args.get(j), "count") && j + 1 < args.len() {
            let c = arg_i64(args.get(j + 1))
                .ok()
                .filter(|&c| c >= 1)
                .ok_or_else(|| CmdError::msg("count should be greater than 0"))?;
            count = Some(usize::try_from(c).unwrap_or(usize::MAX));
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let keys = (at + 1..where_idx).map(|j| args.get(j)).collect();
    Ok((keys, max, count.unwrap_or(1)))
}

fn zmpop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (keys, max, count) = parse_mpop(args, 1)?;
    if !pop_first(ctx, &keys, max, count, PopShape::KeyNested)? {
        ctx.out.null_array();
    }
    Ok(())
}

fn bzmpop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (keys, max, count) = parse_mpop(args, 2)?;
    let timeout = arg_timeout(args.get(1))?;
    if pop_first(ctx, &keys, max, count, PopShape::KeyNested)? {
        return Ok(());
    }
    if ctx.may_block() {
        return ctx.block(keys.iter().map(|k| k.to_vec()).collect(), timeout);
    }
    ctx.out.null_array();
    Ok(())
}

// ---------------------------------------------------------------- ZRANDMEMBER, ZSCAN

fn zrandmember(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let mut with_count = None;
    let mut withscores = false;
    if args.len() >= 3 {
        let l = arg_i64(args.get(2))?;
        if l == i64::MIN {
            return Err(CmdError::msg(
                "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            ));
        }
        if args.len() > 4 || (args.len() == 4 && !is(args.get(3), "withscores")) {
            return Err(CmdError::Syntax);
        }
        if args.len() == 4 {
            withscores = true;
            if !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
                return Err(CmdError::msg("value is out of range"));
            }
        }
        with_count = Some(l);
    }
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.read(h, key, ctx.now, ctx.touch()) else {
        if with_count.is_some() {
            ctx.out.array(0);
        } else {
            ctx.out.null();
        }
        return Ok(());
    };
    let z = zref(&shard, i)?;
    let mut rng = rand::rng();
    let Some(l) = with_count else {
        match z.random(&mut rng) {
            Some((m, _)) => ctx.out.bulk(m),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let size = z.len();
    let count = l.unsigned_abs() as usize;
    if count == 0 {
        ctx.out.array(0);
        return Ok(());
    }
    if l < 0 || count == 1 {
        // With repetition: every pick is independent.
        let picks = std::iter::repeat_with(|| z.random(&mut rng)).map_while(|p| p);
        reply_elems(ctx.out, count, withscores, picks);
        return Ok(());
    }
    if count >= size {
        reply_elems(ctx.out, size, withscores, z.iter());
        return Ok(());
    }
    let mut ranks = rand::seq::index::sample(&mut rng, size, count).into_vec();
    ranks.sort_unstable();
    // One ordered walk serves every sampled rank.
    let mut picked = ranks.into_iter().peekable();
    let items = z
        .iter()
        .enumerate()
        .filter_map(move |(r, e)| (picked.next_if_eq(&r).is_some()).then_some(e));
    reply_elems(ctx.out, count, withscores, items);
    Ok(())
}

fn zscan(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if super::keys::parse_cursor(args.get(2)).is_none() {
        return Err(CmdError::msg("invalid cursor"));
    }
    let key = args.get(1);
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let Some(i) = shard.read(h, key, ctx.now, ctx.touch()) else {
        super::scan_reply(ctx.out, 0, std::iter::empty());
        return Ok(());
    };
    let z = zref(&shard, i)?;
    let opts = super::parse_scan_opts(args)?;
    // The map's scan lends members only to the callback, so they are copied.
    let mut found: Vec<(Vec<u8>, f64)> = Vec::new();
    let next = z.scan(opts.cursor, opts.count, |m, s| {
        if opts.matches(m) {
            found.push((m.to_vec(), s));
        }
    });
    let out = &mut *ctx.out;
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(2 * found.len());
    for (m, s) in found {
        out.bulk(&m);
        out.bulk(crate::util::fmt_double_17g(s).as_bytes());
    }
    Ok(())
}

// ---------------------------------------------------------------- set algebra

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

fn aggregate(acc: &mut f64, v: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *acc += v;
            // inf + -inf: Redis stores 0 rather than NaN.
            if acc.is_nan() {
                *acc = 0.0;
            }
        }
        Aggregate::Min => {
            if v < *acc {
                *acc = v;
            }
        }
        Aggregate::Max => {
            if v > *acc {
                *acc = v;
            }
        }
    }
}

/// One input of the set algebra, copied out of its shard (the inputs live
/// in several shards, which cannot be borrowed at once).
struct Source {
    items: Vec<(Vec<u8>, f64)>,
    weight: f64,
}

#[inline]
fn weighted(w: f64, s: f64) -> f64 {
    let v = w * s;
    if v.is_nan() { 0.0 } else { v }
}

/// ZUNION/ZINTER/ZDIFF, their STORE forms (`store`) and ZINTERCARD (`card`).
fn setop_generic(
    ctx: &mut Ctx<'_>,
    args: &Args<'_>,
    op: SetOp,
    store: bool,
    card: bool,
) -> CmdResult {
    let name = String::from_utf8_lossy(args.get(0)).to_ascii_lowercase();
    let nk_idx = if store { 2 } else { 1 };
    let setnum = arg_i64(args.get(nk_idx))?;
    if setnum < 1 {
        return Err(CmdError::msg(format!(
            "at least 1 input key is needed for '{name}' command"
        )));
    }
    if setnum > (args.len() - nk_idx - 1) as i64 {
        return Err(CmdError::Syntax);
    }
    let setnum = setnum as usize;
    let keys: Vec<&[u8]> = (nk_idx + 1..nk_idx + 1 + setnum)
        .map(|j| args.get(j))
        .collect();
    let lim = limits(ctx);
    let db = ctx.db();
    let mut hashes: Vec<u64> = keys.iter().map(|k| hash_key(k)).collect();
    if store {
        hashes.push(hash_key(args.get(1)));
    }
    let mut lock = db.lock_many(&hashes);
    let mut srcs: Vec<Source> = Vec::with_capacity(setnum);
    for (k, &h) in keys.iter().zip(&hashes) {
        let shard = lock.shard(h);
        let idx = if store {
            shard.lookup(h, k, ctx.now)
        } else {
            shard.read(h, k, ctx.now, ctx.touch())
        };
        let items = match idx.map(|i| &shard.entry(i).value) {
            None => Vec::new(),
            Some(Value::ZSet(z)) => z.iter().map(|(m, s)| (m.to_vec(), s)).collect(),
            Some(Value::Set(s)) => s.iter().map(|m| (m.to_vec(), 1.0)).collect(),
            Some(_) => return Err(CmdError::WrongType),
        };
        srcs.push(Source { items, weight: 1.0 });
    }
    let mut how = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0usize;
    let mut j = nk_idx + 1 + setnum;
    while j < args.len() {
        let a = args.get(j);
        let remaining = args.len() - j;
        if op != SetOp::Diff && !card && remaining > setnum && is(a, "weights") {
            j += 1;
            for s in srcs.iter_mut() {
                s.weight = crate::util::parse_f64(args.get(j))
                    .ok_or_else(|| CmdError::msg("weight value is not a float"))?;
                j += 1;
            }
        } else if op != SetOp::Diff && !card && remaining >= 2 && is(a, "aggregate") {
            let v = args.get(j + 1);
            how = if is(v, "sum") {
                Aggregate::Sum
            } else if is(v, "min") {
                Aggregate::Min
            } else if is(v, "max") {
                Aggregate::Max
            } else {
                return Err(CmdError::Syntax);
            };
            j += 2;
        } else if !store && !card && is(a, "withscores") {
            withscores = true;
            j += 1;
        } else if card && remaining >= 2 && is(a, "limit") {
            let l = arg_i64(args.get(j + 1))
                .ok()
                .filter(|&l| l >= 0)
                .ok_or_else(|| CmdError::msg("LIMIT can't be negative"))?;
            limit = usize::try_from(l).unwrap_or(usize::MAX);
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if op != SetOp::Diff {
        // Smallest first, as Redis (it also fixes the order sums are taken in).
        srcs.sort_by_key(|s| s.items.len());
    }
    let result = compute(op, &srcs, how, card, limit);
    if card {
        ctx.out.int(result.len() as i64);
        return Ok(());
    }
    let mut result: Vec<(Vec<u8>, f64)> =
        result.into_iter().map(|(m, s)| (m.to_vec(), s)).collect();
    result.sort_by(|a, b| {
        a.1.partial_cmp(&b.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0))
    });
    if store {
        let dst = args.get(1);
        let event = match op {
            SetOp::Union => "zunionstore",
            SetOp::Inter => "zinterstore",
            SetOp::Diff => "zdiffstore",
        };
        store_result(ctx, lock.shard(hash_key(dst)), dst, &result, lim, event);
    } else {
        reply_elems(
            ctx.out,
            result.len(),
            withscores,
            result.iter().map(|(m, s)| (m.as_slice(), *s)),
        );
    }
    Ok(())
}

/// The members and scores of the result, unordered. With `card`, stops at `limit` (0 = no limit).
fn compute(
    op: SetOp,
    srcs: &[Source],
    how: Aggregate,
    card: bool,
    limit: usize,
) -> Vec<(&[u8], f64)> {
    use std::collections::HashMap;
    fn index(s: &Source) -> HashMap<&[u8], f64> {
        s.items.iter().map(|(m, sc)| (m.as_slice(), *sc)).collect()
    }
    let Some((first, rest)) = srcs.split_first() else {
        return Vec::new();
    };
    match op {
        SetOp::Union => {
            let mut acc: HashMap<&[u8], f64> = HashMap::new();
            let mut order: Vec<&[u8]> = Vec::new();
            for s in srcs {
                for (m, sc) in &s.items {
                    let v = weighted(s.weight, *sc);
                    match acc.get_mut(m.as_slice()) {
                        Some(a) => aggregate(a, v, how),
                        None => {
                            acc.insert(m, v);
                            order.push(m);
                        }
                    }
                }
            }
            order
                .into_iter()
                .map(|m| (m, acc.get(m).copied().unwrap_or(0.0)))
                .collect()
        }
        SetOp::Inter => {
            let maps: Vec<HashMap<&[u8], f64>> = rest.iter().map(index).collect();
            let mut out = Vec::new();
            'outer: for (m, sc) in &first.items {
                let mut v = weighted(first.weight, *sc);
                for (s, map) in rest.iter().zip(&maps) {
                    match map.get(m.as_slice()) {
                        Some(x) => aggregate(&mut v, weighted(s.weight, *x), how),
                        None => continue 'outer,
                    }
                }
                out.push((m.as_slice(), v));
                if card && limit > 0 && out.len() >= limit {
                    break;
                }
            }
            out
        }
        SetOp::Diff => {
            let maps: Vec<HashMap<&[u8], f64>> = rest.iter().map(index).collect();
            first
                .items
                .iter()
                .filter(|(m, _)| !maps.iter().any(|map| map.contains_key(m.as_slice())))
                .map(|(m, s)| (m.as_slice(), *s))
                .collect()
        }
    }
}

fn zunion(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    setop_generic(ctx, args, SetOp::Union, false, false)
}

fn zinter(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    setop_generic(ctx, args, SetOp::Inter, false, false)
}

fn zdiff(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    setop_generic(ctx, args, SetOp::Diff, false, false)
}

fn zunionstore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    setop_generic(ctx, args, SetOp::Union, true, false)
}

fn zinterstore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    setop_generic(ctx, args, SetOp::Inter, true, false)
}

fn zdiffstore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    setop_generic(ctx, args, SetOp::Diff, true, false)
}

fn zintercard(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    setop_generic(ctx, args, SetOp::Inter, false, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_items_follow_strtod() {
        assert_eq!(parse_score_item(b"("), Some((0.0, true)));
        assert_eq!(parse_score_item(b""), Some((0.0, false)));
        assert_eq!(parse_score_item(b" 1"), Some((1.0, false)));
        assert_eq!(parse_score_item(b"(-inf"), Some((f64::NEG_INFINITY, true)));
        assert_eq!(parse_score_item(b"nan"), None);
        assert_eq!(parse_score_item(b"1 "), None);
        assert_eq!(parse_score_item(b"abc"), None);
    }

    #[test]
    fn limits_count_from_the_right_end() {
        assert_eq!(apply_limit(2, 8, 1, 2, false), (3, 5));
        assert_eq!(apply_limit(2, 8, 1, 2, true), (5, 7));
        assert_eq!(apply_limit(2, 8, 10, -1, false), (8, 8));
        assert_eq!(apply_limit(2, 8, -1, 2, false), (0, 0));
    }
}
