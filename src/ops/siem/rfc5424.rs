//! One audit entry as an RFC 5424 syslog message, and its octet-counted frame (RFC 6587) for
//! TCP and TLS.
//!
//! `<PRI>1 TIMESTAMP HOSTNAME claribi PROCID MSGID [claribi@32473 id=".." hash=".." ...] MSG`:
//! facility `authpriv` (10), severity `notice` for a success and `warning` for a failure or
//! a refusal; MSGID is the entry's action; the structured data names the entry's fields, and
//! MSG (UTF-8, after a BOM) is the entry's canonical content, exactly the text its `hash`
//! covers (`store::audit::canonical`): a SIEM checks the chain from the messages alone.
//! (No crate on crates.io formats RFC 5424 with a text MSGID and octet counting; `syslog`'s
//! formatter takes an integer message id.)

use std::fmt::Write;

use crate::store::audit::{canonical, Stored};

/// The SD-ID: 32473 is the private enterprise number RFC 5612 sets aside for documentation
/// and examples; claribi has none of its own.
pub const SD_ID: &str = "claribi@32473";

const AUTHPRIV: u8 = 10;
const WARNING: u8 = 4;
const NOTICE: u8 = 5;

/// The fields of the message header that are the sender's, not the entry's.
#[derive(Debug, Clone)]
pub struct Origin {
    /// This machine's name (printable ASCII, at most 255 characters), `-` when unknown.
    pub hostname: String,
    pub pid: u32,
}

impl Origin {
    pub fn of_this_process() -> Origin {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        Origin {
            hostname: header_field(name.trim(), 255),
            pid: std::process::id(),
        }
    }
}

/// A header field: printable ASCII without spaces, at most `max` long; `-` (nil) when empty.
fn header_field(value: &str, max: usize) -> String {
    let printable: String = value
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if printable.is_empty() {
        "-".into()
    } else {
        printable
    }
}

/// A PARAM-VALUE: `"`, `\` and `]` escaped with a backslash (RFC 5424 6.3.3).
fn param(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, " {name}=\"");
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// The message for one entry.
pub fn message(entry: &Stored, origin: &Origin) -> String {
    let severity = if entry.outcome == "success" {
        NOTICE
    } else {
        WARNING
    };
    let timestamp = time::OffsetDateTime::from_unix_timestamp(entry.at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".into());
    let mut out = String::with_capacity(512);
    let _ = write!(
        out,
        "<{}>1 {timestamp} {} claribi {} {} [{SD_ID}",
        AUTHPRIV * 8 + severity,
        origin.hostname,
        origin.pid,
        header_field(&entry.action, 32),
    );
    param(&mut out, "id", &entry.id.to_string());
    param(&mut out, "hash", entry.hash.as_deref().unwrap_or(""));
    let optional = [
        ("org", entry.organization_id.map(|v| v.to_string())),
        ("outcome", Some(entry.outcome.clone())),
        ("user", entry.user_id.map(|v| v.to_string())),
        (
            "service_account",
            entry.service_account_id.map(|v| v.to_string()),
        ),
        ("key", entry.api_key_prefix.clone()),
        ("ip", entry.ip.clone()),
        ("target_type", entry.target_type.clone()),
        ("target_id", entry.target_id.map(|v| v.to_string())),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            param(&mut out, name, &value);
        }
    }
    out.push_str("] \u{FEFF}");
    out.push_str(&canonical(entry));
    out
}

/// `message` framed for TCP and TLS: its length in octets, a space, the message.
pub fn octet_counted(message: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(message.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(message.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Stored {
        Stored {
            id: 42,
            at: 1_796_601_600, // 2026-12-07T00:00:00Z
            organization_id: Some(1),
            action: "api_key.revoked".into(),
            outcome: "success".into(),
            user_id: Some(3),
            api_key_prefix: Some("claribi_key_ab12".into()),
            ip: Some("203.0.113.9".into()),
            user_agent: Some("curl/8 \"quoted\" ]".into()),
            target_type: Some("api_key".into()),
            target_id: Some(7),
            details: r#"{"reason":"left \"the\" team]"}"#.into(),
            hash: Some("ab".repeat(32)),
            user_email: None,
            service_account_id: None,
        }
    }

    fn origin() -> Origin {
        Origin {
            hostname: "bi-1".into(),
            pid: 4242,
        }
    }

    #[test]
    fn the_header_and_structured_data_name_the_entry() {
        let text = message(&entry(), &origin());
        let (head, msg) = text.split_once("] \u{FEFF}").unwrap();
        assert_eq!(
            head,
            format!(
                "<85>1 2026-12-07T00:00:00Z bi-1 claribi 4242 api_key.revoked [claribi@32473 \
                 id=\"42\" hash=\"{}\" org=\"1\" outcome=\"success\" user=\"3\" \
                 key=\"claribi_key_ab12\" ip=\"203.0.113.9\" target_type=\"api_key\" target_id=\"7\"",
                "ab".repeat(32)
            )
        );
        // The message is the canonical content the hash covers, whatever it holds.
        assert_eq!(msg, canonical(&entry()));
    }

    #[test]
    fn a_failure_is_a_warning_and_values_are_escaped() {
        let mut e = entry();
        e.outcome = "denied".into();
        e.api_key_prefix = Some(r#"a"b\c]d"#.into());
        e.organization_id = None;
        let text = message(&e, &origin());
        assert!(text.starts_with("<84>1 "), "{text}");
        assert!(text.contains(r#" key="a\"b\\c\]d""#), "{text}");
        assert!(!text.contains(" org="), "{text}");
        assert!(!text.contains(" service_account="), "{text}");
        // A service account's entry names it after the user.
        e.service_account_id = e.user_id;
        let text = message(&e, &origin());
        assert!(
            text.contains(r#" user="3" service_account="3" key="#),
            "{text}"
        );
    }

    #[test]
    fn header_fields_are_printable_ascii_or_nil() {
        assert_eq!(header_field("bi 1\u{e9}x", 255), "bi1x");
        assert_eq!(header_field("", 255), "-");
        assert_eq!(header_field(&"a".repeat(40), 32).len(), 32);
    }

    #[test]
    fn frames_count_octets_not_characters() {
        let mut out = Vec::new();
        octet_counted("é", &mut out);
        octet_counted("ab", &mut out);
        assert_eq!(out, "2 é2 ab".as_bytes());
    }
}
