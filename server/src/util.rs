//! Number parsing and formatting with Redis's exact rules, and glob matching.
//!
//! Redis accepts "10" but not "+10", " 10" or "010"-style ambiguity only in
//! specific places; replies and error strings depend on these details, so they
//! live in one place and are tested against Redis's behaviour.

/// Parses a signed 64-bit integer like Redis's `string2ll`: optional '-',
/// decimal digits, no leading zeros (except "0"), no '+', no spaces, no overflow.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        if v > i64::MAX as u64 {
            return None;
        }
        Some(v as i64)
    }
}

/// Parses a double like Redis's `string2d`/`strtold` use for arguments: no
/// leading space, no NaN, "inf"/"+inf"/"-inf" accepted.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let st = std::str::from_utf8(s).ok()?;
    if st.is_empty() || st.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    if st.ends_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let lower = st.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => {
            if lower.contains("nan") || lower.contains("inf") {
                return None;
            }
            // Rust accepts forms strtod does not ("1e", "+" alone are rejected by both);
            // hex floats are accepted by strtod but rare; treat them as errors.
            if lower.starts_with("0x") || lower.starts_with("-0x") || lower.starts_with("+0x") {
                return None;
            }
            st.parse::<f64>().ok()?
        }
    };
    if v.is_nan() { None } else { Some(v) }
}

/// Formats like C's `%.17g` (Redis's double replies).
pub fn fmt_double_17g(d: f64) -> String {
    fmt_g(d, 17)
}

/// Formats like C's `%.{prec}g`.
pub fn fmt_g(d: f64, prec: usize) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let prec = prec.max(1);
    let sci = format!("{:.*e}", prec - 1, d);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = strip_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", mant, sign, exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, d)).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Formats an INCRBYFLOAT / HINCRBYFLOAT result like Redis's `%.17Lf` with trailing zeros
/// trimmed. Our arithmetic is f64, not long double, so the shortest
/// round-tripping digits stand in for Redis's extra precision (which hides the
/// binary noise the same way for small decimals: 10.1 + 0.2 is "10.3").
pub fn fmt_incrbyfloat(d: f64) -> String {
    // Sums like 0.1 + 0.2 land a couple of ulps away from the decimal the
    // user expects; Redis's long double rounds that noise away at 17 digits.
    // Prefer the 15-significant-digit neighbour when it is that close.
    let near: f64 = format!("{d:.14e}").parse().unwrap_or(d);
    let ulp = f64::from_bits(d.abs().to_bits() + 1) - d.abs();
    let d = if (near - d).abs() <= 2.0 * ulp {
        near
    } else {
        d
    };
    let mut s = format!("{d}");
    if let Some(dot) = s.find('.')
        && s.len() - dot - 1 > 17
    {
        s = format!("{d:.17}");
    }
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(t);
    }
    if s == "-0" {
        s = "0".into();
    }
    s
}

/// Glob-style matching as Redis's `stringmatchlen`: `*`, `?`, `[abc]`, `[^a-z]`, `\\x`.
///
/// Uses the two-pointer algorithm with one backtrack point, so a hostile
/// pattern like `a*a*a*a*b` costs O(pattern x string), not exponential time.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < string.len() {
        if pi < pattern.len() && pattern[pi] == b'*' {
            while pi < pattern.len() && pattern[pi] == b'*' {
                pi += 1;
            }
            if pi == pattern.len() {
                return true;
            }
            star = Some((pi, si));
            continue;
        }
        if pi < pattern.len() {
            let (matched, len) = match_token(&pattern[pi..], string[si], nocase);
            if matched {
                pi += len;
                si += 1;
                continue;
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    while pi < pattern.len() && pattern[pi] == b'*' {
        pi += 1;
    }
    pi == pattern.len()
}

/// Matches one pattern token (not `*`) against byte `c`; returns whether it
/// matched and how many pattern bytes the token spans.
fn match_token(p: &[u8], c: u8, nocase: bool) -> (bool, usize) {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    match p[0] {
        b'?' => (true, 1),
        b'\\' if p.len() >= 2 => (eq(p[1], c), 2),
        b'[' => {
            let mut i = 1;
            let not = p.get(1) == Some(&b'^');
            if not {
                i += 1;
            }
            let mut matched = false;
            while i < p.len() && p[i] != b']' {
                if p[i] == b'\\' && i + 1 < p.len() {
                    i += 1;
                    matched |= eq(p[i], c);
                } else if i + 2 < p.len() && p[i + 1] == b'-' {
                    let (mut lo, mut hi, mut ch) = (p[i], p[i + 2], c);
                    if lo > hi {
                        std::mem::swap(&mut lo, &mut hi);
                    }
                    if nocase {
                        lo = lo.to_ascii_lowercase();
                        hi = hi.to_ascii_lowercase();
                        ch = ch.to_ascii_lowercase();
                    }
                    matched |= ch >= lo && ch <= hi;
                    i += 2;
                } else {
                    matched |= eq(p[i], c);
                }
                i += 1;
            }
            // An unterminated class ends at the end of the pattern, as in Redis.
            let len = if i < p.len() { i + 1 } else { i };
            (matched != not, len)
        }
        b => (eq(b, c), 1),
    }
}

/// Parses a memory size with Redis's units (`1k`=1000, `1kb`=1024, `gb`...).
pub fn parse_memory(s: &str) -> Option<u64> {
    let l = s.trim().to_ascii_lowercase();
    let (num, mul) = if let Some(n) = l.strip_suffix("kb") {
        (n, 1024u64)
    } else if let Some(n) = l.strip_suffix("mb") {
        (n, 1024 * 1024)
    } else if let Some(n) = l.strip_suffix("gb") {
        (n, 1024 * 1024 * 1024)
    } else if let Some(n) = l.strip_suffix('k') {
        (n, 1000)
    } else if let Some(n) = l.strip_suffix('m') {
        (n, 1000 * 1000)
    } else if let Some(n) = l.strip_suffix('g') {
        (n, 1000 * 1000 * 1000)
    } else if let Some(n) = l.strip_suffix('b') {
        (n, 1)
    } else {
        (l.as_str(), 1)
    };
    let v: u64 = num.parse().ok()?;
    v.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_like_redis() {
        assert_eq!(parse_i64(b"10"), Some(10));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b"01"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b""), None);
    }

    #[test]
    fn doubles_like_printf() {
        assert_eq!(fmt_double_17g(1.5), "1.5");
        assert_eq!(fmt_double_17g(0.1), "0.10000000000000001");
        assert_eq!(fmt_double_17g(1e20), "1e+20");
        assert_eq!(fmt_double_17g(100.0), "100");
        assert_eq!(fmt_double_17g(1e-5), "1.0000000000000001e-05");
        assert_eq!(fmt_incrbyfloat(10.5), "10.5");
        assert_eq!(fmt_incrbyfloat(3.0), "3");
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"*", b"anything", false));
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-b]llo", b"hbllo", false));
        assert!(glob_match(b"user:*:name", b"user:42:name", false));
        assert!(!glob_match(b"user:*:name", b"user:42:age", false));
        assert!(glob_match(b"a\\*b", b"a*b", false));
        assert!(glob_match(b"HELLO", b"hello", true));
        assert!(!glob_match(b"a*a*a*a*a*a*a*a*b", &[b'a'; 40], false));
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1kb"), Some(1024));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("2gb"), Some(2 << 30));
        assert_eq!(parse_memory("x"), None);
    }
}
