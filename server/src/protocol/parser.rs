//! Resumable RESP request parser: multibulk arrays of bulk strings and inline commands.
//!
//! Requests are never nested, so the parser has no recursion and rejects any
//! aggregate inside a request. An incomplete request is not parsed again from
//! the start: the parser keeps its position and the spans found so far, and
//! the caller hands it the same request bytes (with more appended) next time.
//! Arguments are spans into the caller's buffer, so parsing copies nothing.

use memchr::memchr;

/// Longest line (inline command, multibulk or bulk header) Redis accepts
/// before it has seen the end of the line (`PROTO_INLINE_MAX_SIZE`).
pub const INLINE_MAX: usize = 64 * 1024;

/// Limits applied while parsing, from the `proto-max-bulk-len` and
/// argument-count settings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest bulk string accepted (`proto-max-bulk-len`).
    pub max_bulk_len: usize,
    /// Largest multibulk element count accepted.
    pub max_multibulk_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: i32::MAX as usize,
        }
    }
}

/// A framing error: the connection replies `-ERR Protocol error: ...` and closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("too big mbulk count string")]
    BigMultibulkCount,
    #[error("invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("too big bulk count string")]
    BigBulkCount,
    #[error("invalid bulk length")]
    InvalidBulkLength,
    #[error("expected '$', got '{0}'")]
    ExpectedBulk(char),
    #[error("too big inline request")]
    BigInline,
    #[error("unbalanced quotes in request")]
    UnbalancedQuotes,
}

/// What one call to [`RequestParser::parse`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request of this many bytes; its arguments are in [`RequestParser::args`].
    Request(usize),
    /// Blank input that carries no command (empty inline line or `*0`); skip these bytes.
    Empty(usize),
    /// More bytes are needed; the value is how many in total the request needs
    /// at least, so the caller can reserve buffer space for a large bulk.
    Incomplete(usize),
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Nothing parsed of the current request yet.
    Start,
    /// Inside a multibulk request: `remaining` elements left, next byte to read at `pos`.
    Multibulk {
        remaining: usize,
        pos: usize,
        bulk: Option<usize>,
    },
}

/// One parser per connection; reused for every request so its vectors do not reallocate.
#[derive(Debug)]
pub struct RequestParser {
    limits: Limits,
    state: State,
    spans: Vec<(usize, usize)>,
    /// Inline commands may contain escapes, so their arguments are unescaped here.
    inline: Vec<u8>,
    inline_mode: bool,
}

/// A request's arguments copied out of the read buffer, for commands that
/// run later: queued in MULTI, or re-run to serve a blocked client.
#[derive(Debug, Clone, Default)]
pub struct OwnedArgs {
    buf: Vec<u8>,
    spans: Vec<(usize, usize)>,
}

impl OwnedArgs {
    pub fn from_args(args: &Args<'_>) -> Self {
        let mut o = OwnedArgs {
            buf: Vec::with_capacity(args.iter().map(<[u8]>::len).sum()),
            spans: Vec::with_capacity(args.len()),
        };
        for a in args.iter() {
            let s = o.buf.len();
            o.buf.extend_from_slice(a);
            o.spans.push((s, o.buf.len()));
        }
        o
    }

    pub fn args(&self) -> Args<'_> {
        Args::new(&self.buf, &self.spans)
    }

    /// Bytes held (for client memory accounting).
    pub fn size(&self) -> usize {
        self.buf.capacity() + self.spans.capacity() * std::mem::size_of::<(usize, usize)>()
    }
}

/// The arguments of one parsed request, borrowed from the read buffer.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    base: &'a [u8],
    spans: &'a [(usize, usize)],
}

impl std::fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

impl<'a> Args<'a> {
    /// Builds arguments from a buffer and spans (used by tests and forwarding).
    pub fn new(base: &'a [u8], spans: &'a [(usize, usize)]) -> Self {
        Args { base, spans }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The i-th argument; callers check arity first, an index past the end gives `b""`.
    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        match self.spans.get(i) {
            Some(&(s, e)) => &self.base[s..e],
            None => b"",
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let base = self.base;
        self.spans.iter().map(move |&(s, e)| &base[s..e])
    }

    /// Arguments from `from` on.
    pub fn tail(&self, from: usize) -> Args<'a> {
        Args {
            base: self.base,
            spans: &self.spans[from.min(self.spans.len())..],
        }
    }

    /// Copies the arguments out (for commands that outlive the read buffer).
    pub fn to_owned_vec(&self) -> Vec<Vec<u8>> {
        self.iter().map(|a| a.to_vec()).collect()
    }
}

impl RequestParser {
    pub fn new(limits: Limits) -> Self {
        RequestParser {
            limits,
            state: State::Start,
            spans: Vec::with_capacity(8),
            inline: Vec::new(),
            inline_mode: false,
        }
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// True when a request has been partly parsed and waits for more bytes.
    pub fn in_progress(&self) -> bool {
        matches!(self.state, State::Multibulk { .. })
    }

    /// The arguments of the request last returned as [`Parsed::Request`].
    /// `buf` must be the same slice that was passed to `parse`.
    pub fn args<'a>(&'a self, buf: &'a [u8]) -> Args<'a> {
        let base = if self.inline_mode {
            &self.inline[..]
        } else {
            buf
        };
        Args {
            base,
            spans: &self.spans,
        }
    }

    /// Parses one request from the start of `buf` (the bytes of the current
    /// request onward). After `Incomplete`, call again with the same request
    /// start and more bytes appended.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Parsed, ProtocolError> {
        if let State::Start = self.state {
            let Some(&first) = buf.first() else {
                return Ok(Parsed::Incomplete(1));
            };
            if first != b'*' {
                return self.parse_inline(buf);
            }
            let Some(nl) = find_crlf(buf, 1) else {
                if buf.len() > INLINE_MAX {
                    return Err(ProtocolError::BigMultibulkCount);
                }
                return Ok(Parsed::Incomplete(buf.len() + 1));
            };
            let count = parse_len(&buf[1..nl]).ok_or(ProtocolError::InvalidMultibulkLength)?;
            if count > self.limits.max_multibulk_len as i64 {
                return Err(ProtocolError::InvalidMultibulkLength);
            }
            if count <= 0 {
                return Ok(Parsed::Empty(nl + 2));
            }
            self.inline_mode = false;
            self.spans.clear();
            // Cap the pre-allocation: the count is client-controlled.
            self.spans.reserve((count as usize).min(1024));
            self.state = State::Multibulk {
                remaining: count as usize,
                pos: nl + 2,
                bulk: None,
            };
        }
        let State::Multibulk {
            mut remaining,
            mut pos,
            mut bulk,
        } = self.state
        else {
            return Ok(Parsed::Incomplete(buf.len() + 1));
        };
        while remaining > 0 {
            let len = match bulk {
                Some(len) => len,
                None => {
                    let Some(&b) = buf.get(pos) else {
                        self.state = State::Multibulk {
                            remaining,
                            pos,
                            bulk,
                        };
                        return Ok(Parsed::Incomplete(pos + 1));
                    };
                    if b != b'$' {
                        self.reset();
                        return Err(ProtocolError::ExpectedBulk(b as char));
                    }
                    let Some(nl) = find_crlf(buf, pos + 1) else {
                        if buf.len() - pos > INLINE_MAX {
                            self.reset();
                            return Err(ProtocolError::BigBulkCount);
                        }
                        self.state = State::Multibulk {
                            remaining,
                            pos,
                            bulk,
                        };
                        return Ok(Parsed::Incomplete(buf.len() + 1));
                    };
                    let len = match parse_len(&buf[pos + 1..nl]) {
                        Some(l) if l >= 0 && (l as u64) <= self.limits.max_bulk_len as u64 => {
                            l as usize
                        }
                        _ => {
                            self.reset();
                            return Err(ProtocolError::InvalidBulkLength);
                        }
                    };
                    pos = nl + 2;
                    bulk = Some(len);
                    len
                }
            };
            let end = pos + len;
            if buf.len() < end + 2 {
                self.state = State::Multibulk {
                    remaining,
                    pos,
                    bulk,
                };
                return Ok(Parsed::Incomplete(end + 2));
            }
            // Redis does not check the CRLF after a bulk payload either; it skips two bytes.
            self.spans.push((pos, end));
            pos = end + 2;
            bulk = None;
            remaining -= 1;
        }
        self.state = State::Start;
        Ok(Parsed::Request(pos))
    }

    fn reset(&mut self) {
        self.state = State::Start;
        self.spans.clear();
    }

    fn parse_inline(&mut self, buf: &[u8]) -> Result<Parsed, ProtocolError> {
        // Redis looks for the newline with strchr(), which stops at a NUL
        // byte: a NUL before the newline leaves the request incomplete until
        // the inline size limit is hit.
        let searchable = memchr(0, buf).unwrap_or(buf.len());
        let Some(nl) = memchr(b'\n', &buf[..searchable]) else {
            if buf.len() > INLINE_MAX {
                return Err(ProtocolError::BigInline);
            }
            return Ok(Parsed::Incomplete(buf.len() + 1));
        };
        let mut line = &buf[..nl];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        self.inline.clear();
        self.spans.clear();
        split_args(line, &mut self.inline, &mut self.spans)?;
        self.inline_mode = true;
        if self.spans.is_empty() {
            return Ok(Parsed::Empty(nl + 1));
        }
        Ok(Parsed::Request(nl + 1))
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let i = at + memchr(b'\r', buf.get(at..)?)?;
        if buf.get(i + 1) == Some(&b'\n') {
            return Some(i);
        }
        if i + 1 >= buf.len() {
            return None;
        }
        at = i + 1;
    }
}

/// Parses a decimal length as Redis's `string2ll` does: optional minus,
/// digits only, no leading '+', no spaces.
fn parse_len(s: &[u8]) -> Option<i64> {
    crate::util::parse_i64(s)
}

/// C's `isspace`: unlike `u8::is_ascii_whitespace` it includes vertical tab.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Splits an inline command line like Redis's `sdssplitargs`: whitespace
/// separated, with "double quoted" (C escapes and \xHH) and 'single quoted' words.
/// Like Redis, which works on a C string, the line ends at its first NUL byte.
pub fn split_args(
    line: &[u8],
    out: &mut Vec<u8>,
    spans: &mut Vec<(usize, usize)>,
) -> Result<(), ProtocolError> {
    let mut i = 0;
    let n = memchr(0, line).unwrap_or(line.len());
    loop {
        while i < n && is_c_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Ok(());
        }
        let start = out.len();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= n {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && line[i + 2].is_ascii_hexdigit()
                    && line[i + 3].is_ascii_hexdigit()
                {
                    out.push(hex(line[i + 2]) * 16 + hex(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    out.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    // A closing quote must be followed by a space or the end.
                    if i + 1 < n && !is_c_space(line[i + 1]) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                } else {
                    out.push(c);
                }
            } else if in_sq {
                if i >= n {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    out.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !is_c_space(line[i + 1]) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                } else {
                    out.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => out.push(c),
                }
            }
            i += 1;
        }
        spans.push((start, out.len()));
    }
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut p = RequestParser::new(Limits::default());
        let mut at = 0;
        let mut out = Vec::new();
        loop {
            match p.parse(&input[at..])? {
                Parsed::Request(n) => {
                    out.push(p.args(&input[at..]).to_owned_vec());
                    at += n;
                }
                Parsed::Empty(n) => at += n,
                Parsed::Incomplete(_) => return Ok(out),
            }
        }
    }

    #[test]
    fn multibulk_and_inline() {
        let got =
            parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nset a \"b c\\x41\" 'd'\r\n").unwrap();
        assert_eq!(
            got,
            vec![
                vec![b"GET".to_vec(), b"k".to_vec()],
                vec![b"PING".to_vec()],
                vec![
                    b"set".to_vec(),
                    b"a".to_vec(),
                    b"b cA".to_vec(),
                    b"d".to_vec()
                ],
            ]
        );
    }

    #[test]
    fn resumes_byte_by_byte() {
        let input = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\n0123456789\r\n";
        let mut p = RequestParser::new(Limits::default());
        for end in 0..input.len() {
            assert!(matches!(
                p.parse(&input[..end]).unwrap(),
                Parsed::Incomplete(_)
            ));
        }
        assert_eq!(p.parse(input).unwrap(), Parsed::Request(input.len()));
        assert_eq!(
            p.args(input).to_owned_vec(),
            vec![b"SET".to_vec(), b"key".to_vec(), b"0123456789".to_vec()]
        );
    }

    #[test]
    fn incomplete_reports_the_bulk_size_needed() {
        let input = b"*1\r\n$100000\r\nab";
        let mut p = RequestParser::new(Limits::default());
        assert_eq!(p.parse(input).unwrap(), Parsed::Incomplete(13 + 100000 + 2));
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_all(b"*x\r\n"),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            parse_all(b"*1\r\n*1\r\n"),
            Err(ProtocolError::ExpectedBulk('*'))
        );
        assert_eq!(
            parse_all(b"*1\r\n$-1\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            parse_all(b"*1\r\n$+1\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            parse_all(b"set \"a\r\n"),
            Err(ProtocolError::UnbalancedQuotes)
        );
        let mut p = RequestParser::new(Limits {
            max_bulk_len: 10,
            max_multibulk_len: 4,
        });
        assert_eq!(
            p.parse(b"*1\r\n$11\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            p.parse(b"*5\r\n"),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        let long = vec![b'a'; INLINE_MAX + 1];
        assert_eq!(p.parse(&long), Err(ProtocolError::BigInline));
    }

    #[test]
    fn deep_nesting_is_rejected_without_recursion() {
        let input = b"*1\r\n".repeat(100_000);
        assert_eq!(parse_all(&input), Err(ProtocolError::ExpectedBulk('*')));
    }

    #[test]
    fn inline_nul_like_redis() {
        // A NUL before the newline hides the newline, as with Redis's strchr().
        assert_eq!(
            parse_all(b"ECHO a\0b c\r\n").unwrap(),
            Vec::<Vec<Vec<u8>>>::new()
        );
        let mut long = b"ECHO a\0b\r\n".to_vec();
        long.resize(INLINE_MAX + 1, b'x');
        assert_eq!(parse_all(&long), Err(ProtocolError::BigInline));
        // split_args itself stops at a NUL (it used to loop forever on one).
        let (mut out, mut spans) = (Vec::new(), Vec::new());
        split_args(b"SET a\0b c", &mut out, &mut spans).unwrap();
        assert_eq!(spans.len(), 2);
        assert_eq!(&out[spans[1].0..spans[1].1], b"a");
        assert_eq!(
            split_args(b"ECHO \"a\0\"", &mut out, &mut spans),
            Err(ProtocolError::UnbalancedQuotes)
        );
    }

    #[test]
    fn inline_whitespace_is_c_isspace() {
        // Vertical tab is skipped between arguments but does not end a word,
        // and may follow a closing quote (checked against redis-server 7.0).
        assert_eq!(
            parse_all(b"\x0bECHO \x0bx\x0b \"y\"\x0b\r\n").unwrap(),
            vec![vec![b"ECHO".to_vec(), b"x\x0b".to_vec(), b"y".to_vec()]]
        );
    }

    #[test]
    fn empty_requests_are_skipped() {
        assert_eq!(parse_all(b"\r\n*0\r\n*-1\r\nPING\r\n").unwrap().len(), 1);
    }
}
