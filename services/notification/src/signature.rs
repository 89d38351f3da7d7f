//! Webhook signatures: `Livecast-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` where the
//! HMAC is keyed with the webhook's secret over `"<t>.<body>"`.
//!
//! The timestamp is signed with the body so a receiver can refuse old captures (replays) by
//! checking `t` against its clock; each attempt is signed afresh, the body stays the same.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "livecast-signature";

type HmacSha256 = Hmac<Sha256>;

/// The hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
}

/// The `Livecast-Signature` value for `body` sent at `timestamp` (Unix seconds).
pub fn header_value(secret: &str, timestamp: i64, body: &str) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, body))
}

/// Checks a `Livecast-Signature` value as a receiver would: the HMAC matches (compared in
/// constant time) and `t` is within `tolerance_seconds` of `now` (Unix seconds).
pub fn verify(secret: &str, header: &str, body: &str, now: i64, tolerance_seconds: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    if (now - timestamp).abs() > tolerance_seconds {
        return false;
    }
    signatures.into_iter().any(|signature| {
        hex::decode(signature)
            .is_ok_and(|bytes| mac(secret, timestamp, body).verify_slice(&bytes).is_ok())
    })
}

fn mac(secret: &str, timestamp: i64, body: &str) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mac_is_rfc_4231_hmac_sha256_over_timestamp_dot_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"; the data has
        // no '.', so the known answer checks the primitive and the second assertion the framing.
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let mut framed = HmacSha256::new_from_slice(b"Jefe").unwrap();
        framed.update(b"12.body");
        assert_eq!(
            sign("Jefe", 12, "body"),
            hex::encode(framed.finalize().into_bytes())
        );
    }

    #[test]
    fn a_receiver_accepts_only_the_signed_body_in_time() {
        let header = header_value("whsec_x", 1_700_000_000, r#"{"id":1}"#);
        assert!(header.starts_with("t=1700000000,v1="));
        assert!(verify(
            "whsec_x",
            &header,
            r#"{"id":1}"#,
            1_700_000_010,
            300
        ));
        assert!(!verify(
            "whsec_x",
            &header,
            r#"{"id":2}"#,
            1_700_000_010,
            300
        ));
        assert!(!verify("other", &header, r#"{"id":1}"#, 1_700_000_010, 300));
        assert!(!verify(
            "whsec_x",
            &header,
            r#"{"id":1}"#,
            1_700_001_000,
            300
        ));
        assert!(!verify(
            "whsec_x",
            "v1=00",
            r#"{"id":1}"#,
            1_700_000_000,
            300
        ));
        assert!(!verify(
            "whsec_x",
            "t=1700000000,v1=zz",
            "{}",
            1_700_000_000,
            300
        ));
    }
}
