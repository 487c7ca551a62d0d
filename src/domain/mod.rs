//! Validated domain values, parsed once at the boundary: no I/O, no warp, no SQL.

mod email;
mod role;
mod secret;
mod text;
mod time;

pub use email::Email;
pub use role::Role;
pub use secret::Secret;
pub use text::{clean_text, TextError};
pub use time::{format_rfc3339, now, Timestamp, UnixTime};

/// Ids of users, organizations, keys, sessions and resources are SQLite rowids.
pub type Id = i64;
