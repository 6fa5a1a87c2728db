//! Webhook signing (PROTOCOL.md 1): `OC-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<raw body>">`, checked with a 300 s tolerance and a constant-time comparison.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "OC-Signature";

/// The largest distance, either way, between the signature's `t` and the receiver's clock.
pub const TOLERANCE_SECS: i64 = 300;

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = new_mac(key);
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn new_mac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length (longer ones are hashed first), so this cannot fail.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

/// The `OC-Signature` header value for `body` sent at `unix_secs` (wall-clock time).
pub fn sign(secret: &[u8], unix_secs: i64, body: &[u8]) -> String {
    Signer::new(secret).sign(unix_secs, body)
}

/// Signs under one secret, the secret's two HMAC key blocks hashed once rather than for every
/// signature: a load test signs each of tens of thousands of notifications a second with the
/// same secret, and those two blocks were two of the eleven SHA-256 blocks of a one-event
/// notification's signature.
#[derive(Clone)]
pub struct Signer {
    keyed: Hmac<Sha256>,
}

impl Signer {
    /// A signer with `secret`.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            keyed: new_mac(secret),
        }
    }

    /// The `OC-Signature` header value for `body` sent at `unix_secs` (wall-clock time), as
    /// [`sign`] writes it.
    pub fn sign(&self, unix_secs: i64, body: &[u8]) -> String {
        let mut t = itoa::Buffer::new();
        let t = t.format(unix_secs);
        let mut mac = self.keyed.clone();
        mac.update(t.as_bytes());
        mac.update(b".");
        mac.update(body);
        // Written into one string: a load test signs every notification it sends, and the
        // timestamp formatted apart, then `format!` around hex pushed a char at a time, took
        // about 1,100 instructions more a signature (callgrind).
        let mut header = String::with_capacity(t.len() + 68);
        header.push_str("t=");
        header.push_str(t);
        header.push_str(",v1=");
        push_hex(&mut header, &mac.finalize().into_bytes());
        header
    }

    /// [`verify`] under this signer's secret: a receiver keeps one for the secret it shares,
    /// and each notification it checks costs two SHA-256 blocks less.
    pub fn verify(
        &self,
        header: Option<&str>,
        body: &[u8],
        now_unix_secs: i64,
    ) -> Result<(), SignatureError> {
        let (t, signatures) = parse(header, now_unix_secs)?;
        let mut mac = self.keyed.clone();
        mac.update(t.as_bytes());
        mac.update(b".");
        mac.update(body);
        let matched = signatures
            .iter()
            .any(|sig| mac.clone().verify_slice(sig).is_ok());
        if matched {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// Why a webhook's signature was refused; each is a `401` [SEC-SIGNATURE].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `OC-Signature` header.
    #[error("the OC-Signature header is missing")]
    Missing,
    /// The header is not `t=<digits>,v1=<64 hex digits>`.
    #[error("the OC-Signature header is malformed: {0}")]
    Malformed(&'static str),
    /// `t` is more than [`TOLERANCE_SECS`] from the receiver's clock.
    #[error(
        "the OC-Signature timestamp is {} s {} the receiver's clock (at most {TOLERANCE_SECS} s allowed)",
        .skew_secs.unsigned_abs(),
        if *.skew_secs < 0 { "behind" } else { "ahead of" }
    )]
    OutsideTolerance {
        /// `t − now`, in seconds.
        skew_secs: i64,
    },
    /// No `v1` value is the HMAC of this body under this secret.
    #[error("the OC-Signature does not match the body under the shared secret")]
    Mismatch,
}

/// Checks everything of an `OC-Signature` header that does not need the body: present, well
/// formed, its timestamp within the tolerance of `now_unix_secs`. Every error [`verify`] can
/// return but [`SignatureError::Mismatch`], found without computing an HMAC: a receiver can
/// refuse a bad header before it reads the body.
pub fn check_header(header: Option<&str>, now_unix_secs: i64) -> Result<(), SignatureError> {
    parse(header, now_unix_secs).map(|_| ())
}

/// The header's timestamp text and `v1` signatures, checked as [`check_header`] says.
fn parse(
    header: Option<&str>,
    now_unix_secs: i64,
) -> Result<(&str, Vec<[u8; 32]>), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed("each part must be key=value"))?;
        match key {
            "t" if t.is_some() => return Err(SignatureError::Malformed("t appears twice")),
            "t" => t = Some(value),
            "v1" => signatures
                .push(unhex(value).ok_or(SignatureError::Malformed("v1 must be 64 hex digits"))?),
            // Other schemes (a future v2) are ignored, so that senders can add them.
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed("no t= timestamp"))?;
    if t.is_empty() || t.len() > 12 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed("t must be whole Unix seconds"));
    }
    if signatures.is_empty() {
        return Err(SignatureError::Malformed("no v1= signature"));
    }
    let t_secs: i64 = t
        .parse()
        .map_err(|_| SignatureError::Malformed("t must be whole Unix seconds"))?;
    let skew_secs = t_secs - now_unix_secs;
    if skew_secs.abs() > TOLERANCE_SECS {
        return Err(SignatureError::OutsideTolerance { skew_secs });
    }
    Ok((t, signatures))
}

/// Checks an `OC-Signature` header against the raw `body`, the shared `secret` and the
/// receiver's clock `now_unix_secs`.
///
/// Several `v1=` values may be present (as during a secret rotation); one matching is enough.
/// Each comparison takes constant time.
pub fn verify(
    header: Option<&str>,
    secret: &[u8],
    body: &[u8],
    now_unix_secs: i64,
) -> Result<(), SignatureError> {
    Signer::new(secret).verify(header, body, now_unix_secs)
}

/// Lower-case hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

/// [`hex`], appended to `out`: each byte's two digits at once, ASCII, in 32-byte pieces.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for piece in bytes.chunks(32) {
        let mut digits = [0u8; 64];
        for (pair, &b) in digits.chunks_exact_mut(2).zip(piece) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0xf)];
        }
        // Hex digits only: always UTF-8.
        out.push_str(std::str::from_utf8(&digits[..2 * piece.len()]).unwrap_or_default());
    }
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let b = text.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 section 4: the HMAC-SHA256 test vectors (case 5 truncates, so it is left out).
    #[test]
    fn rfc4231_vectors() {
        let key4: Vec<u8> = (1..=25).collect();
        let cases: [(&[u8], &[u8], &str); 6] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                &[0xaa; 20],
                &[0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                &key4,
                &[0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                &[0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than \
                  block-size data. The key needs to be hashed before being used by the HMAC \
                  algorithm.",
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (i, (key, data, expected)) in cases.iter().enumerate() {
            assert_eq!(hex(&hmac_sha256(key, data)), *expected, "case {}", i + 1);
        }
    }

    /// Every byte value, across more than one 32-byte piece.
    #[test]
    fn hex_is_two_lower_case_digits_a_byte() {
        let bytes: Vec<u8> = (0..=255).collect();
        let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&bytes), expected);
        assert_eq!(hex(&bytes[..33]), expected[..66]);
        assert_eq!(hex(&[]), "");
    }

    const SECRET: &[u8] = b"whsec_test";
    const BODY: &[u8] = br#"{"notificationId":"6f1c0000-0000-4000-8000-000000000000"}"#;
    const NOW: i64 = 1_795_684_502;

    #[test]
    fn signs_t_dot_body() {
        let header = sign(SECRET, NOW, BODY);
        let mut message = b"1795684502.".to_vec();
        message.extend_from_slice(BODY);
        assert_eq!(
            header,
            format!("t=1795684502,v1={}", hex(&hmac_sha256(SECRET, &message)))
        );
        assert_eq!(verify(Some(&header), SECRET, BODY, NOW), Ok(()));
    }

    /// One signer signs any number of bodies, each as an HMAC keyed afresh would (worked out
    /// here apart from `Signer`, which `sign` itself uses): the keyed state is copied for each
    /// signature, not carried from one to the next.
    #[test]
    fn a_signer_signs_each_body_as_a_fresh_hmac_does() {
        let signer = Signer::new(SECRET);
        let bodies: [&[u8]; 4] = [BODY, b"", &[b'x'; 200], BODY];
        for (i, body) in bodies.into_iter().enumerate() {
            let t = NOW + i as i64;
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
            mac.update(format!("{t}.").as_bytes());
            mac.update(body);
            let digest: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(
                signer.sign(t, body),
                format!("t={t},v1={digest}"),
                "body {i}"
            );
        }
    }

    #[test]
    fn a_wrong_secret_or_an_altered_body_is_a_mismatch() {
        let header = sign(SECRET, NOW, BODY);
        assert_eq!(
            verify(Some(&header), b"whsec_other", BODY, NOW),
            Err(SignatureError::Mismatch)
        );
        let mut altered = BODY.to_vec();
        altered[20] ^= 1;
        assert_eq!(
            verify(Some(&header), SECRET, &altered, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused_beyond_300_s() {
        let at = |t: i64| verify(Some(&sign(SECRET, t, BODY)), SECRET, BODY, NOW);
        assert_eq!(at(NOW - 300), Ok(()));
        assert_eq!(at(NOW + 300), Ok(()));
        assert_eq!(
            at(NOW - 301),
            Err(SignatureError::OutsideTolerance { skew_secs: -301 })
        );
        assert_eq!(
            at(NOW + 301),
            Err(SignatureError::OutsideTolerance { skew_secs: 301 })
        );
        assert_eq!(
            at(NOW - 301).unwrap_err().to_string(),
            "the OC-Signature timestamp is 301 s behind the receiver's clock (at most 300 s allowed)"
        );
    }

    #[test]
    fn the_timestamp_is_signed_too() {
        // Replaying a captured signature with a fresh t must not verify.
        let header = sign(SECRET, NOW - 1000, BODY);
        let v1 = header.split_once(",v1=").unwrap().1;
        let forged = format!("t={NOW},v1={v1}");
        assert_eq!(
            verify(Some(&forged), SECRET, BODY, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_headers() {
        let good_v1 = "0".repeat(64);
        for (header, why) in [
            ("", "each part must be key=value"),
            ("t=1795684502", "no v1= signature"),
            (&format!("v1={good_v1}") as &str, "no t= timestamp"),
            ("t=1795684502,v1=abc", "v1 must be 64 hex digits"),
            (
                &format!("t=-5,v1={good_v1}"),
                "t must be whole Unix seconds",
            ),
            (
                &format!("t=17e8,v1={good_v1}"),
                "t must be whole Unix seconds",
            ),
            (&format!("t=1,t=2,v1={good_v1}"), "t appears twice"),
            (
                &format!("t=99999999999999999999,v1={good_v1}"),
                "t must be whole Unix seconds",
            ),
        ] {
            assert_eq!(
                verify(Some(header), SECRET, BODY, NOW),
                Err(SignatureError::Malformed(why)),
                "{header}"
            );
        }
        assert_eq!(
            verify(None, SECRET, BODY, NOW),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn any_matching_v1_is_enough_and_unknown_schemes_are_ignored() {
        let good = sign(SECRET, NOW, BODY);
        let v1 = good.split_once(",v1=").unwrap().1;
        let rotated = format!("t={NOW},v1={},v2=whatever,v1={v1}", "0".repeat(64));
        assert_eq!(verify(Some(&rotated), SECRET, BODY, NOW), Ok(()));
        let upper = format!("t={NOW},v1={}", v1.to_uppercase());
        assert_eq!(verify(Some(&upper), SECRET, BODY, NOW), Ok(()));
    }
}
