//! `Email`: trimmed, lower-cased, plausibly shaped; unique across the installation.

use std::fmt;

/// The longest address accepted anywhere, login included (RFC 5321's path limit).
pub const MAX_EMAIL_BYTES: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Normalises (trim, lower-case) and checks the shape; the message says what is wrong.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("is required");
        }
        if email.len() > MAX_EMAIL_BYTES {
            return Err("must be at most 254 bytes");
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces or control characters");
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err("is not a valid email address");
        };
        if local.is_empty() || domain.is_empty() || local.len() > 64 || local.contains('@') {
            return Err("is not a valid email address");
        }
        if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
            return Err("is not a valid email address");
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_space() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").map(|e| e.0),
            Ok("ada@example.com".to_string())
        );
        assert!(Email::parse("admin@localhost").is_ok());
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a b@c.d",
            "a@b@c",
            "a@.com",
            "a@b..c",
            "a\0@b.c",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }
}
