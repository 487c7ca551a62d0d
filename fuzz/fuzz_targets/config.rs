//! The configuration loader: any file as `claribi.toml` loads or is refused with an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    claribi::fuzzing::config(data);
});
