//! The API-key parser: the well-formedness check (prefix, length, alphabet, checksum) and the
//! scanner of the leak report and `api-key leak-check`, on any text.
#![no_main]

use claribi::fuzzing::api_key;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let formed = api_key::well_formed(&text);
    if formed {
        // A well-formed key names itself by its prefix and hashes like any other.
        let _ = api_key::display_prefix(&text);
        let _ = api_key::hash(&text);
    }
    // The scanner finds what the published expression matches (the checksum then tells a key
    // from a look-alike): the prefix, 36 letters or digits, and no word character after.
    for (at, found) in api_key::find_at(&text) {
        assert_eq!(&text[at..at + found.len()], found);
        let body = &found.as_bytes()["claribi_key_".len()..];
        assert!(found.starts_with("claribi_key_") && body.len() == 36, "{found:?}");
        assert!(body.iter().all(u8::is_ascii_alphanumeric), "{found:?}");
        let next = text.as_bytes().get(at + found.len());
        assert!(next.is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_')));
    }
    // A key on its own is found, whole.
    if formed {
        assert_eq!(api_key::find_in(&text).collect::<Vec<_>>(), vec![&*text]);
    }
    assert_eq!(api_key::find_in(&text).count(), api_key::find_at(&text).count());
});
