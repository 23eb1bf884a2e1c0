//! Reply encoder: writes RESP2 or RESP3 straight into the connection's output buffer.
//!
//! There is no intermediate reply value on the hot path: a command appends its
//! reply here and the connection writes the whole batch with one syscall.
//! The protocol version is per connection and changes with HELLO.

use bytes::{BufMut, BytesMut};

/// The protocol a connection speaks (HELLO 2 / HELLO 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Proto {
    #[default]
    Resp2,
    Resp3,
}

/// An output buffer plus the protocol to encode in.
#[derive(Debug, Default)]
pub struct Out {
    pub buf: BytesMut,
    pub proto: Proto,
    /// Non-zero: these replies acknowledge writes that must be durable first
    /// (`appendfsync always`); the connection sends them once the
    /// persistence generation reaches this.
    pub hold_until: u64,
}

impl Out {
    pub fn new(proto: Proto) -> Self {
        Out {
            buf: BytesMut::with_capacity(16 * 1024),
            proto,
            hold_until: 0,
        }
    }

    #[inline]
    pub fn resp3(&self) -> bool {
        self.proto == Proto::Resp3
    }

    #[inline]
    fn header(&mut self, prefix: u8, n: i64) {
        self.buf.put_u8(prefix);
        let mut b = itoa::Buffer::new();
        self.buf.put_slice(b.format(n).as_bytes());
        self.buf.put_slice(b"\r\n");
    }

    /// `+OK`-style status line. `s` must not contain CR or LF.
    #[inline]
    pub fn simple(&mut self, s: &str) {
        self.buf.put_u8(b'+');
        self.buf.put_slice(s.as_bytes());
        self.buf.put_slice(b"\r\n");
    }

    #[inline]
    pub fn ok(&mut self) {
        self.buf.put_slice(b"+OK\r\n");
    }

    /// An error line; `msg` starts with its code (`ERR ...`, `WRONGTYPE ...`).
    /// CR and LF inside are replaced by spaces so the frame stays valid.
    pub fn error(&mut self, msg: &str) {
        self.buf.put_u8(b'-');
        for &b in msg.as_bytes() {
            self.buf
                .put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
        self.buf.put_slice(b"\r\n");
    }

    #[inline]
    pub fn int(&mut self, n: i64) {
        self.header(b':', n);
    }

    #[inline]
    pub fn bulk(&mut self, data: &[u8]) {
        self.header(b'$', data.len() as i64);
        self.buf.put_slice(data);
        self.buf.put_slice(b"\r\n");
    }

    /// An integer sent as a bulk string (e.g. INCRBYFLOAT-style replies of numbers).
    pub fn bulk_int(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        self.bulk(b.format(n).as_bytes());
    }

    /// The null bulk string (`$-1` / `_`).
    #[inline]
    pub fn null(&mut self) {
        if self.resp3() {
            self.buf.put_slice(b"_\r\n");
        } else {
            self.buf.put_slice(b"$-1\r\n");
        }
    }

    /// The null array (`*-1` / `_`).
    pub fn null_array(&mut self) {
        if self.resp3() {
            self.buf.put_slice(b"_\r\n");
        } else {
            self.buf.put_slice(b"*-1\r\n");
        }
    }

    #[inline]
    pub fn array(&mut self, n: usize) {
        self.header(b'*', n as i64);
    }

    /// A map of `n` pairs (a flat array of 2n in RESP2).
    pub fn map(&mut self, n: usize) {
        if self.resp3() {
            self.header(b'%', n as i64);
        } else {
            self.header(b'*', 2 * n as i64);
        }
    }

    /// A set of `n` elements (an array in RESP2).
    pub fn set(&mut self, n: usize) {
        if self.resp3() {
            self.header(b'~', n as i64);
        } else {
            self.header(b'*', n as i64);
        }
    }

    /// An out-of-band push of `n` elements (an array in RESP2).
    pub fn push(&mut self, n: usize) {
        if self.resp3() {
            self.header(b'>', n as i64);
        } else {
            self.header(b'*', n as i64);
        }
    }

    /// A double (`,1.5` in RESP3, a bulk string in RESP2), formatted like Redis's `%.17g`.
    pub fn double(&mut self, d: f64) {
        let s = crate::util::fmt_double_17g(d);
        if self.resp3() {
            self.buf.put_u8(b',');
            self.buf.put_slice(s.as_bytes());
            self.buf.put_slice(b"\r\n");
        } else {
            self.bulk(s.as_bytes());
        }
    }

    /// A boolean (`#t` in RESP3, integer 1/0 in RESP2).
    pub fn boolean(&mut self, b: bool) {
        if self.resp3() {
            self.buf.put_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(b as i64);
        }
    }

    /// Verbatim text (`=len\r\ntxt:...` in RESP3, bulk in RESP2).
    pub fn verbatim(&mut self, text: &[u8]) {
        if self.resp3() {
            self.header(b'=', text.len() as i64 + 4);
            self.buf.put_slice(b"txt:");
            self.buf.put_slice(text);
            self.buf.put_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    pub fn bulks<'a>(&mut self, items: impl ExactSizeIterator<Item = &'a [u8]>) {
        self.array(items.len());
        for i in items {
            self.bulk(i);
        }
    }

    /// Current length, to roll back a partly written reply (CLIENT REPLY, errors).
    pub fn mark(&self) -> usize {
        self.buf.len()
    }

    pub fn truncate(&mut self, mark: usize) {
        self.buf.truncate(mark);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp2_and_resp3_shapes() {
        let mut o = Out::new(Proto::Resp2);
        o.null();
        o.map(1);
        o.double(1.5);
        o.boolean(true);
        assert_eq!(&o.buf[..], b"$-1\r\n*2\r\n$3\r\n1.5\r\n:1\r\n");
        let mut o = Out::new(Proto::Resp3);
        o.null();
        o.map(1);
        o.double(1.5);
        o.boolean(true);
        o.verbatim(b"hi");
        assert_eq!(&o.buf[..], b"_\r\n%1\r\n,1.5\r\n#t\r\n=6\r\ntxt:hi\r\n");
    }

    #[test]
    fn error_lines_stay_single_line() {
        let mut o = Out::new(Proto::Resp2);
        o.error("ERR a\r\nb");
        assert_eq!(&o.buf[..], b"-ERR a  b\r\n");
    }
}
