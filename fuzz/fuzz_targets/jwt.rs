//! The JWT verifier: any text as an access or refresh token is refused without a panic (the
//! fuzzer cannot forge HS256), and a token it signed itself, with fuzzed claims and then one
//! byte changed, verifies only while unchanged and only as its own type.
#![no_main]

use arbitrary::Arbitrary;
use claribi::fuzzing::token::{Claims, TokenKeys, TokenType};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    text: String,
    sub: String,
    /// The session secret a token carries (absent in tokens of older sessions).
    sst: Option<String>,
    org: i64,
    sid: i64,
    jti: String,
    exp_in: u16,
    refresh: bool,
    flip_at: usize,
    flip_to: u8,
}

fuzz_target!(|input: Input| {
    let keys = TokenKeys::from_secret(b"fuzzing-secret-fuzzing-secret-32", "claribi");
    for expected in [TokenType::Access, TokenType::Refresh] {
        assert!(
            keys.verify(&input.text, expected).is_err(),
            "accepted a token it did not sign: {:?}",
            input.text
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let typ = if input.refresh {
        TokenType::Refresh
    } else {
        TokenType::Access
    };
    let claims = Claims {
        iss: "claribi".into(),
        sub: input.sub,
        org: input.org,
        sid: input.sid,
        sst: input.sst,
        jti: input.jti,
        iat: now,
        exp: now + 60 + i64::from(input.exp_in),
        typ,
    };
    let Ok(token) = keys.issue(&claims) else {
        return;
    };
    let verified = keys.verify(&token, typ).expect("its own token");
    assert_eq!(verified.sid, claims.sid);
    assert_eq!(verified.sst, claims.sst);
    let other = if input.refresh {
        TokenType::Access
    } else {
        TokenType::Refresh
    };
    assert!(keys.verify(&token, other).is_err(), "accepted as the other type");
    let mut bytes = token.clone().into_bytes();
    let at = input.flip_at % bytes.len();
    bytes[at] = input.flip_to;
    if let Ok(changed) = String::from_utf8(bytes) {
        if changed != token && keys.verify(&changed, typ).is_ok() {
            // Only a segment's last base64url character may differ in unused low bits.
            let last_of_segment = at + 1 == token.len() || token.as_bytes()[at + 1] == b'.';
            assert!(last_of_segment, "a changed token verified: {changed:?}");
        }
    }
});
