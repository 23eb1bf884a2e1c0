//! SORT and SORT_RO: sort the elements of a list, set or sorted set,
//! numerically or lexicographically, optionally by the values of other keys
//! (BY pattern), fetching other keys per element (GET), with LIMIT, and
//! storing the result as a list (SORT ... STORE).
//!
//! BY and GET patterns name arbitrary keys, so a SORT that uses them (or
//! STORE) locks every shard of the database in ascending order, as
//! `Keyspace::lock_many` does: the command stays atomic and cannot deadlock
//! with other multi-key commands. A plain SORT locks only its key's shard.

use super::{CmdError, CmdResult, CommandSpec, Ctx, arg_i64, flags::*, is};
use crate::cmd;
use crate::protocol::Args;
use crate::store::{Keyspace, Shard, Ttl, Value, hash::Hash, hash_key, list::List};
use parking_lot::MutexGuard;
use std::cmp::Ordering;

const SORT_CATS: &[&str] = &["set", "sortedset", "list", "dangerous"];

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    cmd!("sort", -2, WRITE | DENYOOM | MOVABLEKEYS, (1, 1, 1), SORT_CATS, "generic", "1.0.0", "Sort the elements in a list, set or sorted set", sort),
    cmd!("sort_ro", -2, READONLY | MOVABLEKEYS, (1, 1, 1), SORT_CATS, "generic", "7.0.0", "Sort the elements in a list, set or sorted set. Read-only variant of SORT.", sort_ro),
];

fn sort(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    sort_generic(ctx, args, false)
}

fn sort_ro(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    sort_generic(ctx, args, true)
}

/// The shards a SORT holds: its key's, or all of them.
struct Locks<'a> {
    db: &'a Keyspace,
    /// (shard index, guard), ascending by index.
    guards: Vec<(usize, MutexGuard<'a, Shard>)>,
}

impl<'a> Locks<'a> {
    fn one(db: &'a Keyspace, h: u64) -> Self {
        let i = db.shard_of(h);
        Locks {
            db,
            guards: vec![(i, db.lock_shard(i))],
        }
    }

    fn all(db: &'a Keyspace) -> Self {
        Locks {
            db,
            guards: (0..db.shard_count())
                .map(|i| (i, db.lock_shard(i)))
                .collect(),
        }
    }

    /// The shard of hash `h`, if it is held.
    fn shard(&mut self, h: u64) -> Option<&mut Shard> {
        let want = self.db.shard_of(h);
        let pos = self.guards.binary_search_by_key(&want, |(i, _)| *i).ok()?;
        self.guards.get_mut(pos).map(|(_, g)| &mut **g)
    }
}

/// The value of `field` in a hash, for `BY`/`GET key->field` patterns.
// The hash type is being built in its own branch; wire this to its field
// lookup (a `Hash::get(field) -> Option<&[u8]>`) when it lands.
fn hash_field(h: &Hash, field: &[u8]) -> Option<Vec<u8>> {
    h.get(field).map(<[u8]>::to_vec)
}

/// The part of a pattern C's string functions see (up to the first NUL).
fn c_str(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |n| &b[..n])
}

/// Redis's `lookupKeyByPattern`: `#` is the element itself; otherwise the
/// first `*` is replaced by the element and the result names a string key,
/// or with `->field` after the `*` a hash field. A pattern without `*`, a
/// missing key or a key of another type gives `None`.
fn lookup_pattern(
    locks: &mut Locks<'_>,
    pattern: &[u8],
    subst: &[u8],
    now: u64,
    touch: bool,
) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(subst.to_vec());
    }
    let visible = c_str(pattern);
    let star = visible.iter().position(|&c| c == b'*')?;
    let prefix = &pattern[..star];
    let after = &pattern[star + 1..];
    let after_visible = c_str(after);
    let arrow = after_visible
        .windows(2)
        .position(|w| w == b"->")
        .filter(|&k| k + 2 < after_visible.len());
    let (postfix, field) = match arrow {
        Some(k) => (&after[..k], Some(&after[k + 2..])),
        None => (after, None),
    };
    let mut key = Vec::with_capacity(prefix.len() + subst.len() + postfix.len());
    key.extend_from_slice(prefix);
    key.extend_from_slice(subst);
    key.extend_from_slice(postfix);
    let h = hash_key(&key);
    let shard = locks.shard(h)?;
    let i = shard.read(h, &key, now, touch)?;
    match (&shard.entry(i).value, field) {
        (Value::Hash(hv), Some(f)) => hash_field(hv, f),
        (Value::Str(s), None) => Some(s.as_slice().to_vec()),
        _ => None,
    }
}

/// C's `strtod` as SORT uses it: the whole string must convert (a C string:
/// it ends at the first NUL), leading white space is skipped, hex floats,
/// "inf" and "infinity" are accepted; NaN and out-of-range values are
/// errors. An empty string is 0 (strtod stops at once on the terminator).
pub fn sort_score(b: &[u8]) -> Option<f64> {
    let b = c_str(b);
    if b.is_empty() {
        return Some(0.0);
    }
    let start = b
        .iter()
        .position(|&c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    let s = std::str::from_utf8(&b[start..]).ok()?;
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let v = if lower == "inf" || lower == "infinity" {
        f64::INFINITY
    } else if let Some(hex) = lower.strip_prefix("0x") {
        parse_hex_float(hex)?
    } else {
        let digits = lower
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'-' | b'+'));
        if !digits || lower.starts_with(['e', '+', '-']) {
            return None;
        }
        let v: f64 = lower.parse().ok()?;
        if v.is_infinite() {
            return None;
        }
        // glibc reports ERANGE when a non-zero literal underflows.
        let mantissa = lower.split('e').next().unwrap_or("");
        let nonzero = mantissa.bytes().any(|c| matches!(c, b'1'..=b'9'));
        if nonzero && (v == 0.0 || v.is_subnormal()) {
            return None;
        }
        v
    };
    if v.is_nan() {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// The part of a hex float after `0x`: hex digits with an optional point,
/// then an optional binary exponent `p[+-]digits`.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mant, exp) = match s.split_once('p') {
        Some((m, e)) => {
            let e: i32 = e.parse().ok()?;
            (m, e)
        }
        None => (s, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    (v.is_finite()).then_some(v)
}

/// One element being sorted, with what it sorts by.
struct Item {
    elem: Vec<u8>,
    score: f64,
    /// The BY value in ALPHA mode (None when the BY key is missing).
    cmp: Option<Vec<u8>>,
}

fn sort_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, readonly: bool) -> CmdResult {
    let key = args.get(1);
    let (mut desc, mut alpha, mut dontsort) = (false, false, false);
    let (mut limit_start, mut limit_count) = (0i64, -1i64);
    let mut store: Option<&[u8]> = None;
    let mut by: Option<&[u8]> = None;
    let mut gets: Vec<&[u8]> = Vec::new();
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = args.get(j);
        if is(a, "asc") {
            desc = false;
        } else if is(a, "desc") {
            desc = true;
        } else if is(a, "alpha") {
            alpha = true;
        } else if is(a, "limit") && left >= 2 {
            limit_start = arg_i64(args.get(j + 1))?;
            limit_count = arg_i64(args.get(j + 2))?;
            j += 2;
        } else if !readonly && is(a, "store") && left >= 1 {
            store = Some(args.get(j + 1));
            j += 1;
        } else if is(a, "by") && left >= 1 {
            let p = args.get(j + 1);
            // A constant BY pattern means "do not sort".
            dontsort = !c_str(p).contains(&b'*');
            // A real pattern names keys in other slots: Redis Cluster refuses it.
            if !dontsort && ctx.shared.cluster_enabled() {
                return Err(CmdError::msg("BY option of SORT denied in Cluster mode."));
            }
            by = Some(p);
            j += 1;
        } else if is(a, "get") && left >= 1 {
            if ctx.shared.cluster_enabled() {
                return Err(CmdError::msg("GET option of SORT denied in Cluster mode."));
            }
            gets.push(args.get(j + 1));
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }

    let touch = ctx.touch();
    let now = ctx.now;
    let db = ctx.db();
    let h = hash_key(key);
    let mut locks = if store.is_some() || by.is_some() || gets.iter().any(|g| *g != b"#") {
        Locks::all(&db)
    } else {
        Locks::one(&db, h)
    };

    // Load the elements: lists and sorted sets in their order, sets in theirs.
    let (mut elems, is_set, ordered) = {
        let shard = locks.shard(h).ok_or(CmdError::Syntax)?;
        match shard.read(h, key, now, touch) {
            None => (Vec::new(), false, true),
            Some(i) => match &shard.entry(i).value {
                Value::List(l) => (l.iter().map(<[u8]>::to_vec).collect(), false, true),
                Value::Set(s) => (s.iter().map(<[u8]>::to_vec).collect(), true, false),
                Value::ZSet(z) => (z.iter().map(|(m, _)| m.to_vec()).collect(), false, true),
                _ => return Err(CmdError::WrongType),
            },
        }
    };
    // Sorting a set "by nothing" into a key must still be deterministic:
    // Redis then sorts it ALPHA.
    if dontsort && is_set && store.is_some() {
        dontsort = false;
        alpha = true;
        by = None;
    }

    let n = elems.len() as i64;
    let start0 = limit_start.max(0).min(n);
    let count = limit_count.max(-1).min(n);
    let (mut start, mut end) = (start0, if count < 0 { n - 1 } else { start0 + count - 1 });
    if start >= n {
        start = n - 1;
        end = n - 2;
    }
    if end >= n {
        end = n - 1;
    }

    let mut conversion_error = false;
    let items: Vec<Vec<u8>> = if dontsort {
        // Lists and sorted sets keep their order, reversed by DESC.
        if desc && ordered {
            elems.reverse();
        }
        elems
    } else {
        let mut items: Vec<Item> = Vec::with_capacity(elems.len());
        for elem in elems {
            let byval = match by {
                Some(p) => lookup_pattern(&mut locks, p, &elem, now, touch),
                None => None,
            };
            let mut item = Item {
                elem,
                score: 0.0,
                cmp: None,
            };
            if alpha {
                item.cmp = byval;
            } else {
                let v = if by.is_some() {
                    byval.as_deref()
                } else {
                    Some(item.elem.as_slice())
                };
                if let Some(v) = v {
                    match sort_score(v) {
                        Some(s) => item.score = s,
                        None => conversion_error = true,
                    }
                }
            }
            items.push(item);
        }
        let by_pattern = by.is_some();
        // Redis compares whole strings when storing and with strcoll (C
        // strings; byte order in the C.UTF-8 locale) when replying.
        let text_cmp = |x: &[u8], y: &[u8]| {
            if store.is_some() {
                x.cmp(y)
            } else {
                c_str(x).cmp(c_str(y))
            }
        };
        items.sort_by(|a, b| {
            let o = if !alpha {
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| a.elem.cmp(&b.elem))
            } else if by_pattern {
                match (&a.cmp, &b.cmp) {
                    (Some(x), Some(y)) => text_cmp(x, y),
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                }
            } else {
                text_cmp(&a.elem, &b.elem)
            };
            if desc { o.reverse() } else { o }
        });
        items.into_iter().map(|i| i.elem).collect()
    };

    if conversion_error {
        return Err(CmdError::msg(
            "One or more scores can't be converted into double",
        ));
    }
    let picked: &[Vec<u8>] = if end >= start {
        items.get(start as usize..=end as usize).unwrap_or(&[])
    } else {
        &[]
    };
    let outputlen = if gets.is_empty() {
        picked.len()
    } else {
        gets.len() * picked.len()
    };

    let Some(dest) = store else {
        ctx.out.array(outputlen);
        for elem in picked {
            if gets.is_empty() {
                ctx.out.bulk(elem);
            }
            for g in &gets {
                match lookup_pattern(&mut locks, g, elem, now, touch) {
                    Some(v) => ctx.out.bulk(&v),
                    None => ctx.out.null(),
                }
            }
        }
        return Ok(());
    };

    let mut out: Vec<Vec<u8>> = Vec::with_capacity(outputlen);
    for elem in picked {
        if gets.is_empty() {
            out.push(elem.clone());
        }
        for g in &gets {
            out.push(lookup_pattern(&mut locks, g, elem, now, touch).unwrap_or_default());
        }
    }
    let dh = hash_key(dest);
    let shard = locks.shard(dh).ok_or(CmdError::Syntax)?;
    if outputlen > 0 {
        let list = List::from_elements(out.iter().map(Vec::as_slice));
        shard.set(dh, dest, Value::List(Box::new(list)), Ttl::At(0), now);
        drop(locks);
        ctx.notify(crate::notify::LIST, "sortstore", dest);
        ctx.dirty(outputlen as u64);
    } else if shard.remove(dh, dest, now).is_some() {
        drop(locks);
        ctx.notify(crate::notify::GENERIC, "del", dest);
        ctx.dirty(1);
    }
    ctx.out.int(outputlen as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::sort_score;

    #[test]
    fn scores_like_strtod() {
        assert_eq!(sort_score(b""), Some(0.0));
        assert_eq!(sort_score(b" 12"), Some(12.0));
        assert_eq!(sort_score(b"12 "), None);
        assert_eq!(sort_score(b"  "), None);
        assert_eq!(sort_score(b"-1.5e2"), Some(-150.0));
        assert_eq!(sort_score(b"0x10"), Some(16.0));
        assert_eq!(sort_score(b"0x1p4"), Some(16.0));
        assert_eq!(sort_score(b"inf"), Some(f64::INFINITY));
        assert_eq!(sort_score(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(sort_score(b"nan"), None);
        assert_eq!(sort_score(b"1e400"), None);
        assert_eq!(sort_score(b"1e-400"), None);
        assert_eq!(sort_score(b"abc"), None);
        assert_eq!(sort_score(b"1e"), None);
        assert_eq!(sort_score(b"5."), Some(5.0));
        assert_eq!(sort_score(b".5"), Some(0.5));
        assert_eq!(sort_score(b"3\0junk"), Some(3.0));
    }
}
