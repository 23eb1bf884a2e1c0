//! Which of the 16384 hash slots a key belongs to, computed exactly as Redis Cluster does (redis `keyHashSlot`), so cluster-aware clients and shoal route every key alike.

use crc16::{State, XMODEM};

/// Number of hash slots, as in Redis Cluster. A power of two, so the modulo
/// is a mask (what Redis does: `crc16(...) & 0x3FFF`).
pub const SLOTS: u16 = 16384;

/// The bytes of `key` that decide its slot: the hash tag, i.e. what lies
/// between the first `{` and the first `}` after it, when that is non-empty;
/// otherwise the whole key. Only the first `{` counts, so `foo{{bar}}` hashes
/// `{bar` and `foo{}{bar}` hashes the whole key (Redis's rules).
#[must_use]
pub fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    let after = key.get(open + 1..).unwrap_or_default();
    match after.iter().position(|&b| b == b'}') {
        Some(close) if close > 0 => after.get(..close).unwrap_or(key),
        _ => key,
    }
}

/// The hash slot of `key`: CRC16-XMODEM of its hash tag (see [`hash_tag`])
/// modulo [`SLOTS`]. Always `< SLOTS`; the empty key is slot 0.
#[must_use]
pub fn key_slot(key: &[u8]) -> u16 {
    State::<XMODEM>::calculate(hash_tag(key)) & (SLOTS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_xmodem() {
        // The standard check value of CRC-16/XMODEM; 0x31C3 < 16384, so it is
        // also the slot. Any other CRC-16 variant fails here.
        assert_eq!(State::<XMODEM>::calculate(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"123456789"), 0x31C3);
    }

    #[test]
    fn known_redis_slots() {
        // Values answered by redis-server's CLUSTER KEYSLOT.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b""), 0);
    }

    #[test]
    fn hash_tags() {
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        // Empty tag: the whole key is hashed.
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        // Only the first '{' opens a tag.
        assert_eq!(hash_tag(b"foo{{bar}}"), b"{bar");
        assert_eq!(key_slot(b"foo{{bar}}"), key_slot(b"{bar"));
        // The first tag wins.
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        // No closing brace, or nothing at all after '{': the whole key.
        assert_eq!(hash_tag(b"foo{bar"), b"foo{bar");
        assert_eq!(hash_tag(b"foo{"), b"foo{");
        assert_eq!(hash_tag(b"{"), b"{");
        assert_eq!(hash_tag(b"}{"), b"}{");
        assert_eq!(hash_tag(b"a}b{c}"), b"c");
        assert_eq!(hash_tag(b"{}"), b"{}");
        assert_eq!(hash_tag(b"{a}"), b"a");
    }

    proptest::proptest! {
        #[test]
        fn slot_in_range(key in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            proptest::prop_assert!(key_slot(&key) < SLOTS);
        }

        #[test]
        fn tagged_keys_share_the_slot(
            tag in "[a-z0-9]{1,12}",
            a in "[^{]{0,8}",
            b in "[^{]{0,8}",
            sa in ".{0,8}",
            sb in ".{0,8}",
        ) {
            let ka = format!("{a}{{{tag}}}{sa}");
            let kb = format!("{b}{{{tag}}}{sb}");
            proptest::prop_assert_eq!(key_slot(ka.as_bytes()), key_slot(kb.as_bytes()));
            proptest::prop_assert_eq!(key_slot(ka.as_bytes()), key_slot(tag.as_bytes()));
        }
    }
}
