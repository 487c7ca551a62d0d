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

/// The expression secret scanners use for the key format (published, with a gitleaks rule, in
/// docs/key-lifecycle.md): `find_in` finds exactly what it matches; the checksum then tells a
/// key from a look-alike. (The server itself uses `find_in`; its tests hold the two together.)
#[cfg(test)]
pub const PATTERN: &str = r"claribi_key_[0-9A-Za-z]{36}\b";

/// Every match of `PATTERN` in `text`, in order: `claribi_key_`, 36 ASCII letters or digits,
/// and then no word character (letter, digit or `_`).
pub fn find_in(text: &str) -> impl Iterator<Item = &str> {
    find_at(text).map(|(_, key)| key)
}

/// `find_in`, with the byte offset of each match.
pub fn find_at(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let bytes = text.as_bytes();
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(at) = text.get(from..)?.find(PREFIX).map(|i| from + i) {
            let end = at + PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN;
            from = at + 1;
            let body = bytes.get(at + PREFIX.len()..end)?;
            let boundary = bytes
                .get(end)
                .is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_'));
            if body.iter().all(u8::is_ascii_alphanumeric) && boundary {
                from = end;
                return Some((at, &text[at..end]));
            }
        }
        None
    })
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

    #[test]
    fn the_scanner_finds_keys_in_text_and_skips_near_misses() {
        let (a, b) = (generate().key, generate().key);
        let text = format!(
            "export KEY={a}\n\"{b}\" {a}_x {a}9 {} claribi_key_",
            &a[..a.len() - 1]
        );
        let found: Vec<&str> = find_in(&text).collect();
        assert_eq!(found, vec![a.as_str(), b.as_str()]);
        // A multi-byte character right after is not a word character of the ASCII rule.
        assert_eq!(find_in(&format!("{a}é")).count(), 1);
        assert_eq!(find_in("claribi_key_é").count(), 0);
    }

    /// The rule published in docs/key-lifecycle.md, as a secret scanner reads it.
    fn published_rule() -> (String, String) {
        let readme = include_str!("../../docs/key-lifecycle.md");
        let rule = readme
            .split("```toml\n[[rules]]\nid = \"claribi-api-key\"")
            .nth(1)
            .expect("docs/key-lifecycle.md has the gitleaks rule")
            .split("```")
            .next()
            .unwrap();
        let regex = rule
            .lines()
            .find_map(|l| l.strip_prefix("regex = '''"))
            .and_then(|l| l.strip_suffix("'''"))
            .expect("the rule has a regex");
        let keyword = rule
            .lines()
            .find_map(|l| l.strip_prefix("keywords = [\""))
            .and_then(|l| l.strip_suffix("\"]"))
            .expect("the rule has a keyword");
        (regex.to_string(), keyword.to_string())
    }

    #[test]
    fn the_published_expression_matches_generated_keys_and_not_near_misses() {
        let (published, keyword) = published_rule();
        assert_eq!(
            published, PATTERN,
            "the documentation and the scanner agree"
        );
        assert_eq!(keyword, PREFIX);
        // As Go's RE2 (gitleaks) reads it: `\b` over ASCII word characters.
        let expression = regex::Regex::new(&format!("(?-u){published}")).unwrap();
        for _ in 0..1000 {
            let key = generate().key;
            assert!(expression.is_match(&key), "{key}");
            assert_eq!(expression.find(&format!("x={key};")).unwrap().as_str(), key);
        }
        let key = generate().key;
        let near_misses = [
            key[..key.len() - 1].to_string(),
            format!("{key}A"),
            format!("{key}_"),
            key.replace(PREFIX, "claribi-key-"),
            key.replace(PREFIX, "Claribi_key_"),
            key.replacen('_', "", 1),
            format!("{}-{}", &key[..30], &key[31..]),
        ];
        for miss in &near_misses {
            assert!(!expression.is_match(miss), "{miss}");
            assert_eq!(find_in(miss).count(), 0, "{miss}");
        }
        // The scanner finds exactly what the expression matches, over mixed text.
        let mut text = String::new();
        for (i, miss) in near_misses.iter().enumerate() {
            text.push_str(miss);
            text.push_str(if i % 2 == 0 { " " } else { "\n\"" });
            text.push_str(&generate().key);
            text.push(',');
        }
        let by_regex: Vec<&str> = expression.find_iter(&text).map(|m| m.as_str()).collect();
        let by_scanner: Vec<&str> = find_in(&text).collect();
        assert_eq!(by_regex.len(), near_misses.len());
        assert_eq!(by_scanner, by_regex);
        // A well-formed look-alike passes the expression; the checksum tells it apart.
        let look_alike = format!("{PREFIX}{}", "A".repeat(36));
        assert!(expression.is_match(&look_alike) && !well_formed(&look_alike));
    }
}
