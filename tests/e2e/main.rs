//! End-to-end tests: the real binary, over HTTP. One test binary keeps link time down.

mod foundation;
mod sessions;
mod support;
