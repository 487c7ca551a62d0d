//! The API key format: `claribi_key_` + 30 random base62 characters + a 6-character base62
//! CRC-32 of those 30. A mistyped key fails the checksum before any lookup; at rest only a
//! SHA-256 of the whole key is kept.

use rand::rngs::OsRng;
use rand::Rng;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "claribi_key_";
const RANDOM_LEN: usize = 30;
const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// SHA-256 of a key: what is stored and looked up.
pub type KeyHash = [u8; 32];

/// A new key, shown once.
pub struct NewKey {
    pub key: String,
    pub prefix: String,
    pub hash: KeyHash,
}

pub fn generate() -> NewKey {
    let random: String = (0..RANDOM_LEN)
        .map(|_| BASE62[OsRng.gen_range(0..BASE62.len())] as char)
        .collect();
    let key = format!("{PREFIX}{random}{}", checksum(&random));
    NewKey {
        prefix: display_prefix(&key),
        hash: hash(&key),
        key,
    }
}

/// `claribi_key_` and the first 8 random characters: enough for people to tell keys apart.
pub fn display_prefix(key: &str) -> String {
    key.chars().take(PREFIX.len() + 8).collect()
}

/// CRC-32 (IEEE) of the random part in base62, most significant digit first, zero-padded.
pub fn checksum(random: &str) -> String {
    let mut value = crc32fast::hash(random.as_bytes());
    let mut digits = [b'0'; CHECKSUM_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    digits.iter().map(|&b| b as char).collect()
}

/// True when `key` has the right shape and its checksum matches.
pub fn well_formed(key: &str) -> bool {
    let Some(rest) = key.strip_prefix(PREFIX) else {
        return false;
    };
    if rest.len() != RANDOM_LEN + CHECKSUM_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (random, sum) = rest.split_at(RANDOM_LEN);
    checksum(random) == sum
}

pub fn hash(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

pub fn hash_hex(hash: &KeyHash) -> String {
    crate::domain::hex(hash)
}

pub fn parse_hash_hex(text: &str) -> Option<KeyHash> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let k = generate();
        assert!(k.key.starts_with(PREFIX));
        assert_eq!(k.key.len(), PREFIX.len() + 36);
        assert!(well_formed(&k.key));
        assert_eq!(k.prefix.len(), PREFIX.len() + 8);
        assert!(k.key.starts_with(&k.prefix));
        assert_eq!(k.hash, hash(&k.key));
        assert_eq!(parse_hash_hex(&hash_hex(&k.hash)), Some(k.hash));
        assert_ne!(generate().key, k.key);
    }

    #[test]
    fn the_checksum_is_crc32_in_base62() {
        // crc32("a" * 30) computed independently, then written in base62 by hand.
        let random = "a".repeat(30);
        let mut value = crc32fast::hash(random.as_bytes()) as u64;
        let mut expected = Vec::new();
        for _ in 0..6 {
            expected.push(BASE62[(value % 62) as usize]);
            value /= 62;
        }
        expected.reverse();
        assert_eq!(checksum(&random).as_bytes(), &expected[..]);
        assert_eq!(checksum("000000000000000000000000000000").len(), 6);
    }

    #[test]
    fn a_typo_fails_the_checksum() {
        let k = generate().key;
        let mut typo = k.clone().into_bytes();
        let i = PREFIX.len() + 3;
        typo[i] = if typo[i] == b'x' { b'y' } else { b'x' };
        assert!(!well_formed(&String::from_utf8(typo).unwrap()));
        assert!(!well_formed(&k[..k.len() - 1]));
        assert!(!well_formed(&k.replace(PREFIX, "other_key_")));
        assert!(!well_formed("claribi_key_"));
    }
}
