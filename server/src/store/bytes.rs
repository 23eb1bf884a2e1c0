//! Compact byte strings for keys and string values: short ones live inline.
//!
//! A key or value of up to 22 bytes needs no heap allocation and the whole
//! type is 24 bytes, which keeps an entry of the keyspace at 64 bytes. Longer
//! strings written whole (SET) are an exact-size `Box<[u8]>`, copied with one
//! memcpy; a string grown in place (APPEND, SETRANGE) becomes a boxed `Vec`
//! so repeated appends are amortised O(1), as Redis's sds preallocation.

/// Longest string stored inline.
pub const INLINE_CAP: usize = 22;

#[derive(Clone)]
pub enum CompactBytes {
    Inline { len: u8, data: [u8; INLINE_CAP] },
    Heap(Box<[u8]>),
    Growable(Box<Vec<u8>>),
}

impl Default for CompactBytes {
    fn default() -> Self {
        CompactBytes::Inline {
            len: 0,
            data: [0; INLINE_CAP],
        }
    }
}

impl CompactBytes {
    #[inline]
    pub fn new(s: &[u8]) -> Self {
        if s.len() <= INLINE_CAP {
            let mut data = [0u8; INLINE_CAP];
            data[..s.len()].copy_from_slice(s);
            CompactBytes::Inline {
                len: s.len() as u8,
                data,
            }
        } else {
            CompactBytes::Heap(Box::from(s))
        }
    }

    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match self {
            CompactBytes::Inline { len, data } => &data[..*len as usize],
            CompactBytes::Heap(b) => b,
            CompactBytes::Growable(v) => v.as_slice(),
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        match self {
            CompactBytes::Inline { len, .. } => *len as usize,
            CompactBytes::Heap(b) => b.len(),
            CompactBytes::Growable(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes as a growable vector (moving them there if needed).
    fn growable(&mut self, at_least: usize) -> &mut Vec<u8> {
        if !matches!(self, CompactBytes::Growable(_)) {
            let cur = self.as_slice();
            let mut v = Vec::with_capacity(at_least.max(2 * cur.len()));
            v.extend_from_slice(cur);
            *self = CompactBytes::Growable(Box::new(v));
        }
        match self {
            CompactBytes::Growable(v) => v,
            _ => unreachable!("converted to Growable just above"),
        }
    }

    /// Appends, moving to a growable heap buffer when the inline space is exceeded.
    pub fn extend(&mut self, more: &[u8]) {
        if let CompactBytes::Inline { len, data } = self {
            let l = *len as usize;
            if l + more.len() <= INLINE_CAP {
                data[l..l + more.len()].copy_from_slice(more);
                *len += more.len() as u8;
                return;
            }
        }
        let total = self.len() + more.len();
        self.growable(total).extend_from_slice(more);
    }

    /// Mutable access to the bytes, resized to `new_len` (zero-filled).
    pub fn resize(&mut self, new_len: usize) -> &mut [u8] {
        let stays_inline = matches!(self, CompactBytes::Inline { .. }) && new_len <= INLINE_CAP;
        if !stays_inline {
            let v = self.growable(new_len);
            v.resize(new_len, 0);
            return &mut v[..];
        }
        match self {
            CompactBytes::Inline { len, data } => {
                let old = *len as usize;
                if new_len > old {
                    data[old..new_len].fill(0);
                }
                *len = new_len as u8;
                &mut data[..new_len]
            }
            _ => unreachable!("checked to be inline above"),
        }
    }

    /// Heap bytes owned beyond the inline struct (for memory accounting).
    #[inline]
    pub fn heap_size(&self) -> usize {
        match self {
            CompactBytes::Inline { .. } => 0,
            CompactBytes::Heap(b) => b.len(),
            CompactBytes::Growable(v) => std::mem::size_of::<Vec<u8>>() + v.capacity(),
        }
    }
}

impl PartialEq<[u8]> for CompactBytes {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl std::fmt::Debug for CompactBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_growth() {
        assert_eq!(std::mem::size_of::<CompactBytes>(), 24);
        let mut b = CompactBytes::new(b"hello");
        b.extend(b" world");
        assert_eq!(b.as_slice(), b"hello world");
        b.extend(&[b'x'; 30]);
        assert_eq!(b.len(), 41);
        assert!(matches!(b, CompactBytes::Growable(_)));
        assert!(matches!(CompactBytes::new(&[1; 23]), CompactBytes::Heap(_)));
        let mut c = CompactBytes::new(b"ab");
        c.resize(5)[4] = b'z';
        assert_eq!(c.as_slice(), b"ab\0\0z");
        c.resize(40);
        assert_eq!(c.len(), 40);
    }
}
