//! Compact byte strings for keys and string values: short ones live inline.
//!
//! A key or value of up to 22 bytes needs no heap allocation and the whole
//! type is 24 bytes, which keeps an entry of the keyspace at 64 bytes. Longer
//! strings use a `ThinVec` (one pointer; length and capacity in the heap
//! header), so APPEND grows them in amortised O(1).

use thin_vec::ThinVec;

/// Longest string stored inline.
pub const INLINE_CAP: usize = 22;

#[derive(Clone)]
pub enum CompactBytes {
    Inline { len: u8, data: [u8; INLINE_CAP] },
    Heap(ThinVec<u8>),
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
            let mut v = ThinVec::with_capacity(s.len());
            v.extend_from_slice(s);
            CompactBytes::Heap(v)
        }
    }

    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match self {
            CompactBytes::Inline { len, data } => &data[..*len as usize],
            CompactBytes::Heap(v) => v,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        match self {
            CompactBytes::Inline { len, .. } => *len as usize,
            CompactBytes::Heap(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends, moving to the heap when the inline space is exceeded.
    pub fn extend(&mut self, more: &[u8]) {
        match self {
            CompactBytes::Inline { len, data } if *len as usize + more.len() <= INLINE_CAP => {
                let l = *len as usize;
                data[l..l + more.len()].copy_from_slice(more);
                *len += more.len() as u8;
            }
            CompactBytes::Inline { len, data } => {
                let l = *len as usize;
                let mut v = ThinVec::with_capacity((l + more.len()).max(2 * l));
                v.extend_from_slice(&data[..l]);
                v.extend_from_slice(more);
                *self = CompactBytes::Heap(v);
            }
            CompactBytes::Heap(v) => v.extend_from_slice(more),
        }
    }

    /// Mutable access to the bytes, resized to `new_len` (zero-filled).
    pub fn resize(&mut self, new_len: usize) -> &mut [u8] {
        if new_len > INLINE_CAP
            && let CompactBytes::Inline { len, data } = self
        {
            let mut v = ThinVec::with_capacity(new_len);
            v.extend_from_slice(&data[..*len as usize]);
            *self = CompactBytes::Heap(v);
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
            CompactBytes::Heap(v) => {
                v.resize(new_len, 0);
                &mut v[..]
            }
        }
    }

    /// Heap bytes owned beyond the inline struct (for memory accounting).
    #[inline]
    pub fn heap_size(&self) -> usize {
        match self {
            CompactBytes::Inline { .. } => 0,
            // ThinVec header (len + cap) plus capacity.
            CompactBytes::Heap(v) => 16 + v.capacity(),
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
        assert!(matches!(b, CompactBytes::Heap(_)));
        let mut c = CompactBytes::new(b"ab");
        c.resize(5)[4] = b'z';
        assert_eq!(c.as_slice(), b"ab\0\0z");
        c.resize(40);
        assert_eq!(c.len(), 40);
    }
}
