//! Time as unix seconds in storage, RFC 3339 in UTC on the wire, and the calendar months that
//! credits are counted in.

use std::fmt;

use serde::{Serialize, Serializer};
use time::{Date, Month, OffsetDateTime};

pub type UnixTime = i64;

pub fn now() -> UnixTime {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Unix milliseconds, on the wall clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A stored time as the API shows it, `2026-11-27T10:00:00Z`: response bodies hold these
/// rather than formatted strings, so a list of rows is serialized without one allocation per
/// timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub UnixTime);

impl Timestamp {
    /// The 20 bytes of `YYYY-MM-DDTHH:MM:SSZ`; times outside years 0..=9999 (never stored)
    /// show as the epoch rather than as a malformed string.
    fn to_ascii(self) -> [u8; 20] {
        let t = OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .filter(|t| (0..=9999).contains(&t.year()))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let mut out = *b"0000-00-00T00:00:00Z";
        let mut put = |at: usize, value: u32, width: usize| {
            let mut v = value;
            for i in (at..at + width).rev() {
                out[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, t.year().unsigned_abs(), 4);
        put(5, u8::from(t.month()).into(), 2);
        put(8, t.day().into(), 2);
        put(11, t.hour().into(), 2);
        put(14, t.minute().into(), 2);
        put(17, t.second().into(), 2);
        out
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ascii = self.to_ascii();
        // Only ASCII digits and separators were written.
        f.write_str(std::str::from_utf8(&ascii).map_err(|_| fmt::Error)?)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let ascii = self.to_ascii();
        match std::str::from_utf8(&ascii) {
            Ok(text) => serializer.serialize_str(text),
            Err(e) => Err(serde::ser::Error::custom(e)),
        }
    }
}

/// `2026-11-27T10:00:00Z`.
pub fn format_rfc3339(at: UnixTime) -> String {
    Timestamp(at).to_string()
}

/// A length of time in its largest exact unit, as the configuration writes them: `"7d"`,
/// `"12h"`, `"90m"`, `"45s"`.
pub fn format_duration(secs: i64) -> String {
    match secs {
        s if s != 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s != 0 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s != 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
#[test]
fn durations_read_back_as_written() {
    for (secs, text) in [
        (604_800, "7d"),
        (43_200, "12h"),
        (5_400, "90m"),
        (45, "45s"),
        (31_536_000, "365d"),
    ] {
        assert_eq!(format_duration(secs), text);
        assert_eq!(
            humantime::parse_duration(text).unwrap().as_secs() as i64,
            secs
        );
    }
}

/// The first second of the current calendar month (UTC) and of the next.
pub fn month_bounds(at: UnixTime) -> (UnixTime, UnixTime) {
    let date = OffsetDateTime::from_unix_timestamp(at)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .date();
    let start = date.replace_day(1).unwrap_or(date);
    let (year, month) = match start.month() {
        Month::December => (start.year() + 1, Month::January),
        m => (start.year(), m.next()),
    };
    let next = Date::from_calendar_date(year, month, 1).unwrap_or(start);
    (
        start.midnight().assume_utc().unix_timestamp(),
        next.midnight().assume_utc().unix_timestamp(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_z() {
        assert_eq!(format_rfc3339(1_795_773_600), "2026-11-27T10:00:00Z");
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn agrees_with_the_time_crate_and_serializes_as_a_string() {
        use time::format_description::well_known::Rfc3339;
        for at in [1, 59, 86_399, 1_700_000_000, 1_795_773_600, 4_102_444_799] {
            let expected = OffsetDateTime::from_unix_timestamp(at)
                .unwrap()
                .format(&Rfc3339)
                .unwrap();
            assert_eq!(Timestamp(at).to_string(), expected);
            assert_eq!(
                serde_json::to_string(&Timestamp(at)).unwrap(),
                format!("\"{expected}\"")
            );
        }
    }

    #[test]
    fn out_of_range_shows_the_epoch() {
        assert_eq!(format_rfc3339(i64::MAX), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(-100_000_000_000), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn month_bounds_cover_the_calendar_month() {
        // 2026-11-27T10:00:00Z
        let (start, next) = month_bounds(1_795_773_600);
        assert_eq!(format_rfc3339(start), "2026-11-01T00:00:00Z");
        assert_eq!(format_rfc3339(next), "2026-12-01T00:00:00Z");
        let (start, next) = month_bounds(next + 86_400 * 20);
        assert_eq!(format_rfc3339(start), "2026-12-01T00:00:00Z");
        assert_eq!(format_rfc3339(next), "2027-01-01T00:00:00Z");
    }
}
