//! TOTP (RFC 6238: SHA-1, 6 digits, 30 s, one step of skew each way) with totp-rs, and
//! recovery codes. Which step a code matched is returned so the caller can refuse replays.

use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret as TotpSecret, TOTP};

pub const ISSUER: &str = "clariBI";
const STEP: u64 = 30;
pub const RECOVERY_CODES: usize = 10;

#[derive(Debug, thiserror::Error)]
#[error("TOTP: {0}")]
pub struct TotpError(String);

/// Enrolment material: the secret in base32, the otpauth URL and a QR code of it.
pub struct Enrolment {
    pub secret_base32: String,
    pub otpauth_url: String,
    pub qr_png_base64: String,
}

fn totp(secret_base32: &str, account: &str) -> Result<TOTP, TotpError> {
    let bytes = TotpSecret::Encoded(secret_base32.to_string())
        .to_bytes()
        .map_err(|e| TotpError(format!("{e:?}")))?;
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP,
        bytes,
        Some(ISSUER.to_string()),
        account.to_string(),
    )
    .map_err(|e| TotpError(e.to_string()))
}

/// A new 160-bit secret for `account` (the user's email).
pub fn enrol(account: &str) -> Result<Enrolment, TotpError> {
    let mut bytes = [0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    let secret_base32 = TotpSecret::Raw(bytes.to_vec()).to_encoded().to_string();
    let totp = totp(&secret_base32, account)?;
    let otpauth_url = totp.get_url();
    Ok(Enrolment {
        qr_png_base64: qr_png_base64(&otpauth_url)?,
        otpauth_url,
        secret_base32,
    })
}

/// `text` as a QR code (error correction M) in a PNG, base64: black modules of 8 by 8 pixels
/// on white, with the 4-module quiet zone readers need.
fn qr_png_base64(text: &str) -> Result<String, TotpError> {
    use base64::Engine as _;
    const SCALE: usize = 8;
    const QUIET: usize = 4;
    let qr = qrcodegen::QrCode::encode_text(text, qrcodegen::QrCodeEcc::Medium)
        .map_err(|e| TotpError(e.to_string()))?;
    let modules = qr.size() as usize;
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for y in 0..modules {
        for x in 0..modules {
            if qr.get_module(x as i32, y as i32) {
                for row in 0..SCALE {
                    let start = ((QUIET + y) * SCALE + row) * side + (QUIET + x) * SCALE;
                    pixels[start..start + SCALE].fill(0);
                }
            }
        }
    }
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&pixels))
        .map_err(|e| TotpError(e.to_string()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(png_bytes))
}

/// The time step a 6-digit `code` is valid for at `now` (now, one before, one after), if any.
pub fn matching_step(secret_base32: &str, account: &str, code: &str, now: u64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret_base32, account).ok()?;
    let current = now / STEP;
    let mut found = None;
    // Every candidate is computed and compared, so timing does not tell which one matched.
    for step in [current.saturating_sub(1), current, current + 1] {
        let expected = totp.generate(step * STEP);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step as i64);
        }
    }
    found
}

/// Ten fresh recovery codes like `k7qm-x2hd-9fwp` (60 random bits each) and their hashes.
pub fn new_recovery_codes() -> (Vec<String>, Vec<String>) {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let mut raw = [0u8; 12];
            OsRng.fill_bytes(&mut raw);
            let chars: String = raw
                .iter()
                .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
                .collect();
            format!("{}-{}-{}", &chars[0..4], &chars[4..8], &chars[8..12])
        })
        .collect();
    let hashes = codes.iter().map(|c| hash_recovery_code(c)).collect();
    (codes, hashes)
}

/// SHA-256 of the code without dashes, spaces or case: what is stored and looked up.
pub fn hash_recovery_code(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    crate::domain::hex(&Sha256::digest(normal.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 column: the secret is ASCII "12345678901234567890".
    #[test]
    fn rfc_6238_test_vectors() {
        let totp = TOTP::new_unchecked(
            Algorithm::SHA1,
            8,
            1,
            30,
            b"12345678901234567890".to_vec(),
            None,
            String::new(),
        );
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp.generate(time), code, "t = {time}");
        }
    }

    #[test]
    fn codes_match_within_one_step_of_skew_only() {
        let enrolment = enrol("ada@example.com").unwrap();
        assert!(enrolment
            .otpauth_url
            .starts_with("otpauth://totp/clariBI:ada%40example.com?"));
        assert!(!enrolment.qr_png_base64.is_empty());
        let secret = &enrolment.secret_base32;
        let t = totp(secret, "ada@example.com").unwrap();
        let now = 1_800_000_015;
        let code = t.generate(now);
        assert_eq!(
            matching_step(secret, "a", &code, now),
            Some((now / 30) as i64)
        );
        assert!(matching_step(secret, "a", &code, now + 30).is_some());
        assert!(matching_step(secret, "a", &code, now - 30).is_some());
        assert_eq!(matching_step(secret, "a", &code, now + 90), None);
        assert_eq!(matching_step(secret, "a", "12345", now), None);
        assert_eq!(matching_step(secret, "a", "abcdef", now), None);
    }

    /// The PNG decodes to the QR code of the otpauth URL: each module's centre pixel is black
    /// exactly where the code has a dark module, inside a white quiet zone.
    #[test]
    fn the_qr_code_is_a_png_of_the_otpauth_url() {
        use base64::Engine as _;
        let url = "otpauth://totp/clariBI:ada%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=clariBI";
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(qr_png_base64(url).unwrap())
            .unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        let qr = qrcodegen::QrCode::encode_text(url, qrcodegen::QrCodeEcc::Medium).unwrap();
        let modules = qr.size() as usize;
        let side = frame.width as usize;
        assert_eq!((frame.width, frame.height), (side as u32, side as u32));
        assert_eq!(side, (modules + 8) * 8);
        assert_eq!(frame.color_type, png::ColorType::Grayscale);
        let at = |x: usize, y: usize| pixels[(y * 8 + 4) * side + x * 8 + 4];
        for y in 0..modules + 8 {
            for x in 0..modules + 8 {
                let inside = (4..modules + 4).contains(&x) && (4..modules + 4).contains(&y);
                let dark = inside && qr.get_module(x as i32 - 4, y as i32 - 4);
                assert_eq!(at(x, y), if dark { 0 } else { 255 }, "module ({x}, {y})");
            }
        }
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_forgivingly() {
        let (codes, hashes) = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        assert_eq!(hash_recovery_code(&codes[0]), hashes[0]);
        assert_eq!(
            hash_recovery_code(&codes[0].to_uppercase().replace('-', " ")),
            hashes[0]
        );
    }
}
