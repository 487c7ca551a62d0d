//! Time as unix seconds in storage, RFC 3339 in UTC on the wire.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub type UnixTime = i64;

pub fn now() -> UnixTime {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// `2026-11-27T10:00:00Z`.
pub fn format_rfc3339(at: UnixTime) -> String {
    OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_z() {
        assert_eq!(format_rfc3339(1_795_773_600), "2026-11-27T10:00:00Z");
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
