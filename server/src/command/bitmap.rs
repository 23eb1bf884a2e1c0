//! Bitmap commands on string values: SETBIT GETBIT BITCOUNT BITPOS BITOP
//! BITFIELD BITFIELD_RO, with Redis 7.0's argument order, limits and quirks.
//!
//! Bit 0 is the most significant bit of the first byte, as in Redis. Counting
//! and searching run a 64-bit word at a time; only the partial bytes at the
//! edges of a range are handled bit by bit.

use super::{CmdError, CmdResult, CommandSpec, Ctx, arg_i64, flags::*, is};
use crate::cmd;
use crate::protocol::Args;
use crate::store::{CompactBytes, ENC_RAW, Shard, Ttl, Value, hash_key};

const BITMAP: &[&str] = &["bitmap"];

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    cmd!("setbit", 4, WRITE | DENYOOM, (1, 1, 1), BITMAP, "bitmap", "2.2.0", "Sets or clears the bit at offset in the string value stored at key", setbit),
    cmd!("getbit", 3, READONLY | FAST, (1, 1, 1), BITMAP, "bitmap", "2.2.0", "Returns the bit value at offset in the string value stored at key", getbit),
    cmd!("bitcount", -2, READONLY, (1, 1, 1), BITMAP, "bitmap", "2.6.0", "Count set bits in a string", bitcount),
    cmd!("bitpos", -3, READONLY, (1, 1, 1), BITMAP, "bitmap", "2.8.7", "Find first bit set or clear in a string", bitpos),
    cmd!("bitop", -4, WRITE | DENYOOM, (2, -1, 1), BITMAP, "bitmap", "2.6.0", "Perform bitwise operations between strings", bitop),
    cmd!("bitfield", -2, WRITE | DENYOOM, (1, 1, 1), BITMAP, "bitmap", "3.2.0", "Perform arbitrary bitfield integer operations on strings", bitfield),
    cmd!("bitfield_ro", -2, READONLY | FAST, (1, 1, 1), BITMAP, "bitmap", "6.0.0", "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD", bitfield_ro),
];

const BAD_OFFSET: &str = "bit offset is not an integer or out of range";
const BAD_BIT: &str = "bit is not an integer or out of range";
const BAD_TYPE: &str =
    "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

/// Parses a bit offset like Redis's `getBitOffsetFromArgument`: `#n` (BITFIELD
/// only, `bits > 0`) means `n * bits`, multiplied with C's wrapping; offsets
/// whose byte lies at or past `proto-max-bulk-len` are refused.
fn bit_offset(ctx: &Ctx<'_>, a: &[u8], bits: u32) -> Result<u64, CmdError> {
    let (hash, digits) = match a.split_first() {
        Some((b'#', rest)) if bits > 0 => (true, rest),
        _ => (false, a),
    };
    let mut v = crate::util::parse_i64(digits).ok_or_else(|| CmdError::msg(BAD_OFFSET))?;
    if hash {
        v = v.wrapping_mul(bits as i64);
    }
    let max = ctx.shared.config.read().proto_max_bulk_len;
    if v < 0 || (v as u64 >> 3) >= max {
        return Err(CmdError::msg(BAD_OFFSET));
    }
    Ok(v as u64)
}

/// Bit `offset` of `p`, zero beyond its end.
#[inline]
fn get_bit(p: &[u8], offset: u64) -> bool {
    let byte = usize::try_from(offset >> 3).unwrap_or(usize::MAX);
    p.get(byte).is_some_and(|b| b & (0x80 >> (offset & 7)) != 0)
}

#[inline]
fn put_bit(p: &mut [u8], offset: u64, on: bool) {
    let byte = usize::try_from(offset >> 3).unwrap_or(usize::MAX);
    if let Some(b) = p.get_mut(byte) {
        let m = 0x80u8 >> (offset & 7);
        if on {
            *b |= m;
        } else {
            *b &= !m;
        }
    }
}

/// The bytes of a string for in-place edits that keep its length (a local
/// stand-in for a `CompactBytes::as_mut_slice`, which `resize` would
/// otherwise replace by moving a heap string into a growable buffer).
fn bytes_mut(s: &mut CompactBytes) -> &mut [u8] {
    match s {
        CompactBytes::Inline { len, data } => {
            let n = (*len as usize).min(data.len());
            &mut data[..n]
        }
        CompactBytes::Heap(b) => b,
        CompactBytes::Growable(v) => v.as_mut_slice(),
    }
}

/// Number of set bits in `p`, eight bytes at a time.
pub fn popcount(p: &[u8]) -> u64 {
    let mut chunks = p.chunks_exact(8);
    let mut n: u64 = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        n += u64::from_ne_bytes(w).count_ones() as u64;
    }
    n + chunks
        .remainder()
        .iter()
        .map(|b| b.count_ones() as u64)
        .sum::<u64>()
}

/// Index of the first bit equal to `bit` in `p`, a word at a time.
fn first_bit_in(p: &[u8], bit: bool) -> Option<u64> {
    let flip = if bit { 0 } else { u64::MAX };
    let mut chunks = p.chunks_exact(8);
    let mut base: u64 = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let v = u64::from_be_bytes(w) ^ flip;
        if v != 0 {
            return Some(base + v.leading_zeros() as u64);
        }
        base += 64;
    }
    for &b in chunks.remainder() {
        let v = if bit { b } else { !b };
        if v != 0 {
            return Some(base + v.leading_zeros() as u64);
        }
        base += 8;
    }
    None
}

/// The first bit equal to `bit` among bits `from..=to` of `p` (both within `p`).
pub fn find_bit(p: &[u8], from: u64, to: u64, bit: bool) -> Option<u64> {
    if from > to {
        return None;
    }
    let (fb, lb) = (from >> 3, to >> 3);
    let in_byte = |byte: u64, lo: u64, hi: u64| -> Option<u64> {
        let b = *p.get(usize::try_from(byte).ok()?)?;
        let v = if bit { b } else { !b };
        let mask = (0xFFu8 >> lo) & (0xFFu8 << (7 - hi));
        let m = v & mask;
        (m != 0).then(|| byte * 8 + m.leading_zeros() as u64)
    };
    if fb == lb {
        return in_byte(fb, from & 7, to & 7);
    }
    if let Some(pos) = in_byte(fb, from & 7, 7) {
        return Some(pos);
    }
    let mid = p.get(usize::try_from(fb + 1).ok()?..usize::try_from(lb).ok()?)?;
    if let Some(pos) = first_bit_in(mid, bit) {
        return Some((fb + 1) * 8 + pos);
    }
    in_byte(lb, 0, to & 7)
}

/// Number of set bits among bits `from..=to` of `p` (both within `p`).
pub fn count_bits(p: &[u8], from: u64, to: u64) -> u64 {
    if from > to {
        return 0;
    }
    let (fb, lb) = (from >> 3, to >> 3);
    let (Ok(fbu), Ok(lbu)) = (usize::try_from(fb), usize::try_from(lb)) else {
        return 0;
    };
    let Some(bytes) = p.get(fbu..=lbu) else {
        return 0;
    };
    let mut n = popcount(bytes);
    // Take back the bits of the edge bytes that lie outside the range.
    let head = !(0xFFu8 >> (from & 7));
    let tail = 0xFFu8.checked_shr((to & 7) as u32 + 1).unwrap_or(0);
    if let Some(&b) = bytes.first() {
        n -= (b & head).count_ones() as u64;
    }
    if let Some(&b) = bytes.last() {
        n -= (b & tail).count_ones() as u64;
    }
    n
}

/// Converts Redis's start/end (negative from the end, clamped) over `total`
/// units into an inclusive range; `None` when it is empty.
fn clamp_range(mut start: i64, mut end: i64, total: i64) -> Option<(u64, u64)> {
    if start < 0 {
        start = total.saturating_add(start);
    }
    if end < 0 {
        end = total.saturating_add(end);
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    (start <= end).then_some((start as u64, end as u64))
}

/// BIT or BYTE unit argument.
fn unit_is_bit(a: &[u8]) -> Result<bool, CmdError> {
    if is(a, "bit") {
        Ok(true)
    } else if is(a, "byte") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Finds `key` for a bit write: WRONGTYPE for other types, otherwise the
/// string is created or zero-padded so byte `need - 1` exists. Returns its
/// position and whether it was created or grown. The string becomes "raw"
/// as Redis's `dbUnshareStringValue` makes it.
fn string_for_write(
    shard: &mut Shard,
    h: u64,
    key: &[u8],
    need: usize,
    now: u64,
) -> Result<(u32, bool), CmdError> {
    let (i, grown) = match shard.lookup(h, key, now) {
        None => {
            let mut s = CompactBytes::default();
            s.resize(need);
            (shard.insert_new(h, key, Value::Str(s), 0, now), true)
        }
        Some(i) => {
            let cur = shard
                .entry(i)
                .value
                .as_str()
                .ok_or(CmdError::WrongType)?
                .len();
            if cur < need {
                shard.value_mut(i, |v| {
                    if let Some(s) = v.as_str_mut() {
                        s.resize(need);
                    }
                });
            }
            (i, cur < need)
        }
    };
    shard.set_encoding_flags(i, ENC_RAW);
    Ok((i, grown))
}

fn setbit(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let offset = bit_offset(ctx, args.get(2), 0)?;
    let on = crate::util::parse_i64(args.get(3)).ok_or_else(|| CmdError::msg(BAD_BIT))?;
    if on & !1 != 0 {
        return Err(CmdError::msg(BAD_BIT));
    }
    let on = on == 1;
    let need = usize::try_from((offset >> 3) + 1).map_err(|_| CmdError::msg(BAD_OFFSET))?;
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let (i, grown) = string_for_write(&mut shard, h, key, need, ctx.now)?;
    let old = shard
        .entry(i)
        .value
        .as_str()
        .is_some_and(|s| get_bit(s.as_slice(), offset));
    let changed = grown || old != on;
    if old != on {
        shard.value_mut(i, |v| {
            if let Some(s) = v.as_str_mut() {
                put_bit(bytes_mut(s), offset, on);
            }
        });
    }
    drop(shard);
    if changed {
        ctx.notify(crate::notify::STRING, "setbit", key);
        ctx.dirty(1);
    }
    ctx.out.int(old as i64);
    Ok(())
}

fn getbit(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let offset = bit_offset(ctx, args.get(2), 0)?;
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    let bit = match shard.read(h, key, ctx.now, touch) {
        None => false,
        Some(i) => {
            let s = shard.entry(i).value.as_str().ok_or(CmdError::WrongType)?;
            get_bit(s.as_slice(), offset)
        }
    };
    ctx.out.int(bit as i64);
    Ok(())
}

fn bitcount(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    // Redis 7.0 looks the key up before it parses the range.
    let Some(i) = shard.read(h, key, ctx.now, touch) else {
        ctx.out.int(0);
        return Ok(());
    };
    let p = shard
        .entry(i)
        .value
        .as_str()
        .ok_or(CmdError::WrongType)?
        .as_slice();
    let len = p.len() as i64;
    let n = match args.len() {
        2 => popcount(p),
        4 | 5 => {
            let start = arg_i64(args.get(2))?;
            let end = arg_i64(args.get(3))?;
            if start < 0 && end < 0 && start > end {
                ctx.out.int(0);
                return Ok(());
            }
            let bit = args.len() == 5 && unit_is_bit(args.get(4))?;
            if bit {
                clamp_range(start, end, len * 8).map_or(0, |(s, e)| count_bits(p, s, e))
            } else {
                clamp_range(start, end, len).map_or(0, |(s, e)| count_bits(p, s * 8, e * 8 + 7))
            }
        }
        _ => return Err(CmdError::Syntax),
    };
    ctx.out.int(n as i64);
    Ok(())
}

fn bitpos(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = args.get(1);
    let bit = arg_i64(args.get(2))?;
    if bit != 0 && bit != 1 {
        return Err(CmdError::msg("The bit argument must be 1 or 0."));
    }
    let bit = bit == 1;
    let touch = ctx.touch();
    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    // A missing key is an endless run of zeros (Redis 7.0 answers before
    // looking at the range).
    let Some(i) = shard.read(h, key, ctx.now, touch) else {
        ctx.out.int(if bit { -1 } else { 0 });
        return Ok(());
    };
    let p = shard
        .entry(i)
        .value
        .as_str()
        .ok_or(CmdError::WrongType)?
        .as_slice();
    let len = p.len() as i64;
    // (first bit, last bit) of the range, and whether the end was explicit.
    let (range, end_given) = match args.len() {
        3 => (
            clamp_range(0, len - 1, len).map(|(s, e)| (s * 8, e * 8 + 7)),
            false,
        ),
        4..=6 => {
            let start = arg_i64(args.get(3))?;
            let in_bits = args.len() == 6 && unit_is_bit(args.get(5))?;
            let end = if args.len() >= 5 {
                arg_i64(args.get(4))?
            } else {
                len - 1
            };
            let r = if in_bits {
                clamp_range(start, end, len * 8)
            } else {
                clamp_range(start, end, len).map(|(s, e)| (s * 8, e * 8 + 7))
            };
            (r, args.len() >= 5)
        }
        _ => return Err(CmdError::Syntax),
    };
    let Some((from, to)) = range else {
        ctx.out.int(-1);
        return Ok(());
    };
    let pos = match find_bit(p, from, to, bit) {
        Some(pos) => pos as i64,
        // Without an explicit end the string counts as padded with zeros, so
        // the first clear bit is the one just past the range.
        None if !bit && !end_given => (to + 1) as i64,
        None => -1,
    };
    ctx.out.int(pos);
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

fn bitop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let name = args.get(1);
    let op = if is(name, "and") {
        BitOp::And
    } else if is(name, "or") {
        BitOp::Or
    } else if is(name, "xor") {
        BitOp::Xor
    } else if is(name, "not") {
        BitOp::Not
    } else {
        return Err(CmdError::Syntax);
    };
    if op == BitOp::Not && args.len() != 4 {
        return Err(CmdError::msg(
            "BITOP NOT must be called with a single source key.",
        ));
    }
    let dest = args.get(2);
    let srcs: Vec<&[u8]> = args.iter().skip(3).collect();
    let touch = ctx.touch();
    let db = ctx.db();
    let dh = hash_key(dest);
    let hashes: Vec<u64> = std::iter::once(dh)
        .chain(srcs.iter().map(|k| hash_key(k)))
        .collect();
    let mut lock = db.lock_many(&hashes);
    // First pass: types and lengths (a missing key is an empty string).
    let mut lens = Vec::with_capacity(srcs.len());
    for (k, &h) in srcs.iter().zip(&hashes[1..]) {
        let shard = lock.shard(h);
        let len = match shard.read(h, k, ctx.now, touch) {
            None => 0,
            Some(i) => shard
                .entry(i)
                .value
                .as_str()
                .ok_or(CmdError::WrongType)?
                .len(),
        };
        lens.push(len);
    }
    let maxlen = lens.iter().copied().max().unwrap_or(0);
    let mut res = vec![0u8; maxlen];
    // Second pass: fold every source into the result, zero-padded to maxlen.
    for (n, (k, &h)) in srcs.iter().zip(&hashes[1..]).enumerate() {
        let shard = lock.shard(h);
        let src: &[u8] = match shard.lookup(h, k, ctx.now) {
            Some(i) => shard.entry(i).value.as_str().map_or(&[], |s| s.as_slice()),
            None => &[],
        };
        let (head, tail) = res.split_at_mut(src.len().min(maxlen));
        if n == 0 {
            head.copy_from_slice(&src[..head.len()]);
            if op == BitOp::Not {
                res.iter_mut().for_each(|b| *b = !*b);
            }
            continue;
        }
        match op {
            BitOp::And => {
                head.iter_mut().zip(src).for_each(|(r, s)| *r &= s);
                tail.fill(0);
            }
            BitOp::Or => head.iter_mut().zip(src).for_each(|(r, s)| *r |= s),
            BitOp::Xor => head.iter_mut().zip(src).for_each(|(r, s)| *r ^= s),
            BitOp::Not => {}
        }
    }
    let shard = lock.shard(dh);
    if maxlen > 0 {
        shard.set(
            dh,
            dest,
            Value::Str(CompactBytes::new(&res)),
            Ttl::At(0),
            ctx.now,
        );
        if let Some(i) = shard.lookup(dh, dest, ctx.now) {
            shard.set_encoding_flags(i, ENC_RAW);
        }
        drop(lock);
        ctx.notify(crate::notify::STRING, "set", dest);
        ctx.dirty(1);
    } else if shard.remove(dh, dest, ctx.now).is_some() {
        drop(lock);
        ctx.notify(crate::notify::GENERIC, "del", dest);
        ctx.dirty(1);
    }
    ctx.out.int(maxlen as i64);
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldOp {
    Get,
    Set,
    Incr,
}

#[derive(Clone, Copy)]
struct Field {
    op: FieldOp,
    offset: u64,
    /// SET value or INCRBY increment.
    arg: i64,
    bits: u32,
    signed: bool,
    overflow: Overflow,
}

/// Parses `i<1..64>` or `u<1..63>` (the sign letter is case-sensitive).
fn field_type(a: &[u8]) -> Result<(bool, u32), CmdError> {
    let err = || CmdError::msg(BAD_TYPE);
    let (signed, rest) = match a.split_first() {
        Some((b'i', rest)) => (true, rest),
        Some((b'u', rest)) => (false, rest),
        _ => return Err(err()),
    };
    let bits = crate::util::parse_i64(rest).ok_or_else(err)?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return Err(err());
    }
    Ok((signed, bits as u32))
}

/// Reads `bits` bits at `offset` as an unsigned number (zero beyond the end).
fn get_field(p: &[u8], offset: u64, bits: u32) -> u64 {
    (0..bits as u64).fold(0u64, |v, j| (v << 1) | get_bit(p, offset + j) as u64)
}

fn set_field(p: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..bits as u64 {
        put_bit(p, offset + j, value & (1u64 << (bits as u64 - 1 - j)) != 0);
    }
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    if bits < 64 && v & (1u64 << (bits - 1)) != 0 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

/// Redis's `checkUnsignedBitfieldOverflow`: whether `value + incr` leaves the
/// range of a `bits`-bit unsigned field, and what WRAP or SAT store instead.
/// The C arithmetic wraps, and its quirks are part of the reply, so it is
/// reproduced with wrapping operations.
fn overflow_unsigned(value: u64, incr: i64, bits: u32, ow: Overflow) -> Option<u64> {
    let max: u64 = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = value.wrapping_neg() as i64;
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX.checked_shl(bits).unwrap_or(0));
    if value > max || (incr > 0 && incr > maxincr) {
        Some(match ow {
            Overflow::Sat => max,
            _ => wrap(),
        })
    } else if incr < 0 && incr < minincr {
        Some(match ow {
            Overflow::Sat => 0,
            _ => wrap(),
        })
    } else {
        None
    }
}

/// Redis's `checkSignedBitfieldOverflow`, quirks included (see above).
fn overflow_signed(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<i64> {
    let max: i64 = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        Some(match ow {
            Overflow::Sat => max,
            _ => wrap(),
        })
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        Some(match ow {
            Overflow::Sat => min,
            _ => wrap(),
        })
    } else {
        None
    }
}

/// Applies one SET or INCRBY to `p`: the reply (None when OVERFLOW FAIL
/// refused it) and whether the stored bits changed.
fn apply_field(p: &mut [u8], f: &Field) -> (Option<i64>, bool) {
    let raw_old = get_field(p, f.offset, f.bits);
    if f.signed {
        let old = sign_extend(raw_old, f.bits);
        let (new, over, ret_new) = match f.op {
            FieldOp::Incr => {
                let o = overflow_signed(old, f.arg, f.bits, f.overflow);
                (o.unwrap_or(old.wrapping_add(f.arg)), o.is_some(), true)
            }
            _ => {
                let o = overflow_signed(f.arg, 0, f.bits, f.overflow);
                (o.unwrap_or(f.arg), o.is_some(), false)
            }
        };
        if over && f.overflow == Overflow::Fail {
            return (None, false);
        }
        set_field(p, f.offset, f.bits, new as u64);
        (Some(if ret_new { new } else { old }), old != new)
    } else {
        let old = raw_old;
        let (new, over, ret_new) = match f.op {
            FieldOp::Incr => {
                let o = overflow_unsigned(old, f.arg, f.bits, f.overflow);
                (
                    o.unwrap_or(old.wrapping_add(f.arg as u64)),
                    o.is_some(),
                    true,
                )
            }
            _ => {
                let v = f.arg as u64;
                let o = overflow_unsigned(v, 0, f.bits, f.overflow);
                (o.unwrap_or(v), o.is_some(), false)
            }
        };
        if over && f.overflow == Overflow::Fail {
            return (None, false);
        }
        set_field(p, f.offset, f.bits, new);
        (Some(if ret_new { new } else { old } as i64), old != new)
    }
}

/// The value a GET subcommand reads.
fn read_field(p: &[u8], f: &Field) -> i64 {
    let v = get_field(p, f.offset, f.bits);
    if f.signed {
        sign_extend(v, f.bits)
    } else {
        v as i64
    }
}

fn bitfield(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    bitfield_generic(ctx, args, false)
}

fn bitfield_ro(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    bitfield_generic(ctx, args, true)
}

fn bitfield_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, ro: bool) -> CmdResult {
    let key = args.get(1);
    let mut ops: Vec<Field> = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut highest: u64 = 0;
    let mut readonly = true;
    let mut j = 2;
    while j < args.len() {
        let rem = args.len() - j - 1;
        let sub = args.get(j);
        let op = if is(sub, "get") && rem >= 2 {
            FieldOp::Get
        } else if is(sub, "set") && rem >= 3 {
            FieldOp::Set
        } else if is(sub, "incrby") && rem >= 3 {
            FieldOp::Incr
        } else if is(sub, "overflow") && rem >= 1 {
            let t = args.get(j + 1);
            overflow = if is(t, "wrap") {
                Overflow::Wrap
            } else if is(t, "sat") {
                Overflow::Sat
            } else if is(t, "fail") {
                Overflow::Fail
            } else {
                return Err(CmdError::msg("Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(CmdError::Syntax);
        };
        let (signed, bits) = field_type(args.get(j + 1))?;
        let offset = bit_offset(ctx, args.get(j + 2), bits)?;
        let mut arg = 0;
        if op != FieldOp::Get {
            readonly = false;
            highest = highest.max(offset + bits as u64 - 1);
            arg = arg_i64(args.get(j + 3))?;
        }
        ops.push(Field {
            op,
            offset,
            arg,
            bits,
            signed,
            overflow,
        });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }

    let db = ctx.db();
    let (h, mut shard) = db.lock(key);
    if readonly {
        let touch = ctx.touch();
        let p: &[u8] = match shard.read(h, key, ctx.now, touch) {
            Some(i) => shard
                .entry(i)
                .value
                .as_str()
                .ok_or(CmdError::WrongType)?
                .as_slice(),
            None => &[],
        };
        ctx.out.array(ops.len());
        for f in &ops {
            ctx.out.int(read_field(p, f));
        }
        return Ok(());
    }
    if ro {
        return Err(CmdError::msg(
            "BITFIELD_RO only supports the GET subcommand",
        ));
    }
    let need = usize::try_from((highest >> 3) + 1).map_err(|_| CmdError::msg(BAD_OFFSET))?;
    let (i, grown) = string_for_write(&mut shard, h, key, need, ctx.now)?;
    // Run the operations on a copy of the bytes they touch, and write it
    // back only if something changed: value_mut is what WATCH observes.
    let len = shard.entry(i).value.as_str().map_or(0, |s| s.len()) as u64;
    let lo = ops.iter().map(|f| f.offset >> 3).min().unwrap_or(0);
    let hi = ops
        .iter()
        .map(|f| (f.offset + f.bits as u64 - 1) >> 3)
        .max()
        .unwrap_or(0)
        .min(len.saturating_sub(1));
    let window = |s: &[u8]| -> Vec<u8> {
        let (a, b) = (lo as usize, (hi as usize + 1).max(lo as usize));
        s.get(a..b).map(<[u8]>::to_vec).unwrap_or_default()
    };
    let mut buf = shard
        .entry(i)
        .value
        .as_str()
        .map(|s| window(s.as_slice()))
        .unwrap_or_default();
    let mut replies: Vec<Option<i64>> = Vec::with_capacity(ops.len());
    let mut changes: u64 = 0;
    for f in &ops {
        let f = Field {
            offset: f.offset - lo * 8,
            ..*f
        };
        if f.op == FieldOp::Get {
            replies.push(Some(read_field(&buf, &f)));
            continue;
        }
        let (reply, changed) = apply_field(&mut buf, &f);
        if reply.is_some() && (grown || changed) {
            changes += 1;
        }
        replies.push(reply);
    }
    if changes > 0 {
        shard.value_mut(i, |v| {
            if let Some(dst) = v
                .as_str_mut()
                .and_then(|s| bytes_mut(s).get_mut(lo as usize..lo as usize + buf.len()))
            {
                dst.copy_from_slice(&buf);
            }
        });
    }
    drop(shard);
    ctx.out.array(replies.len());
    for r in replies {
        match r {
            Some(v) => ctx.out.int(v),
            None => ctx.out.null(),
        }
    }
    if changes > 0 {
        ctx.notify(crate::notify::STRING, "setbit", key);
        ctx.dirty(changes);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_and_count_match_naive() {
        let p: Vec<u8> = (0..37u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let nbits = p.len() as u64 * 8;
        for from in (0..nbits).step_by(5) {
            for to in (from..nbits).step_by(7) {
                let naive: u64 = (from..=to).filter(|&b| get_bit(&p, b)).count() as u64;
                assert_eq!(count_bits(&p, from, to), naive, "{from}..{to}");
                for bit in [false, true] {
                    let naive = (from..=to).find(|&b| get_bit(&p, b) == bit);
                    assert_eq!(find_bit(&p, from, to, bit), naive, "{from}..{to} {bit}");
                }
            }
        }
    }

    #[test]
    fn overflow_rules() {
        assert_eq!(overflow_unsigned(255, 1, 8, Overflow::Wrap), Some(0));
        assert_eq!(overflow_unsigned(255, 1, 8, Overflow::Sat), Some(255));
        assert_eq!(overflow_unsigned(0, -1, 8, Overflow::Sat), Some(0));
        assert_eq!(overflow_signed(127, 1, 8, Overflow::Wrap), Some(-128));
        assert_eq!(overflow_signed(-128, -1, 8, Overflow::Sat), Some(-128));
        assert_eq!(
            overflow_signed(i64::MAX, 1, 64, Overflow::Wrap),
            Some(i64::MIN)
        );
        assert_eq!(overflow_signed(5, 1, 8, Overflow::Wrap), None);
    }
}
