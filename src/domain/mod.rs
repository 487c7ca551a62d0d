//! Validated domain values, parsed once at the boundary: no I/O, no warp, no SQL.

mod email;
mod role;
mod secret;
mod text;
mod time;

pub use email::{Email, MAX_EMAIL_BYTES};
pub use role::Role;
pub use secret::Secret;
pub use text::clean_text;
pub use time::{format_duration, format_rfc3339, month_bounds, now, now_ms, Timestamp, UnixTime};

/// Lower-case hexadecimal of `bytes` (digests, key hashes, token ids).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// A flat JSON object of strings (audit details, built from non-secret values only).
pub fn json_object(pairs: &[(&str, &str)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    serde_json::Value::Object(map).to_string()
}

#[cfg(test)]
#[test]
fn hex_is_two_lower_case_digits_per_byte() {
    assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    assert_eq!(hex(&[]), "");
}

/// Ids of users, organizations, keys, sessions and resources are SQLite rowids.
pub type Id = i64;

/// Uses of a key counted in memory since the last batch (the live state counts them, the store
/// writes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUsage {
    pub id: Id,
    pub uses: u64,
    pub last_used_at: UnixTime,
    /// The address and user agent of the latest use, when they changed.
    pub last_client: Option<(String, String)>,
}
