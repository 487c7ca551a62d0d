//! End-to-end tests: the real binary, over HTTP. One test binary keeps link time down.

mod api_keys;
// The passkey tests' software authenticator, shared with the in-process tests.
#[path = "../../src/http/in_process/authenticator.rs"]
mod authenticator;
mod browser;
mod cluster;
mod console;
mod directory;
mod foundation;
mod hardening;
mod key_lifecycle;
mod live_state;
mod notices;
mod oidc;
mod operations;
mod pg;
mod resilience;
mod sessions;
mod siem;
mod support;
mod trouble;
mod web;
