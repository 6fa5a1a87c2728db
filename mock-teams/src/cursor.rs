//! Opaque paging links: what a `nextLink` or `deltaLink` stands for, sealed with an HMAC so that
//! a forged or altered link is refused rather than served [CDR-PAGING].

use hmac::{Hmac, Mac};
use oc_protocol::signing::hex;
use oc_protocol::{ReconClass, UnixMillis};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::store::recon::ItemsPosition;

/// What a link continues. Positions are feed positions or keys, never offsets into a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k")]
pub(crate) enum Cursor {
    /// `GET /numbers`, after a number.
    #[serde(rename = "n")]
    Numbers {
        c: u16,
        tenant: Option<String>,
        assigned: bool,
        after: String,
        size: u32,
    },
    /// `GET /cdrs/delta` from a feed position.
    #[serde(rename = "d")]
    CdrDelta { c: u16, pos: u64, size: u32 },
    /// `GET /quality/delta` from a feed position.
    #[serde(rename = "q")]
    QualityDelta { c: u16, pos: u64, size: u32 },
    /// `GET /cdrs?from&to`, scanning the feed from a position.
    #[serde(rename = "w")]
    CdrWindow {
        c: u16,
        from: UnixMillis,
        to: UnixMillis,
        pos: u64,
        size: u32,
    },
    /// `GET /reconciliation/items`.
    #[serde(rename = "i")]
    Items {
        c: u16,
        class: ReconClass,
        from: UnixMillis,
        to: UnixMillis,
        /// A call index, or the last unmatched call id.
        call: Option<u32>,
        after: Option<String>,
        size: u32,
    },
    /// Graph's `getPstnCalls` over a window (both ends inclusive), from a call index.
    #[serde(rename = "g")]
    PstnCalls {
        c: u16,
        from: UnixMillis,
        to: UnixMillis,
        pos: u32,
    },
}

impl Cursor {
    /// The carrier the link was issued to.
    pub(crate) fn carrier(&self) -> u16 {
        match self {
            Self::Numbers { c, .. }
            | Self::CdrDelta { c, .. }
            | Self::QualityDelta { c, .. }
            | Self::CdrWindow { c, .. }
            | Self::Items { c, .. }
            | Self::PstnCalls { c, .. } => *c,
        }
    }

    pub(crate) fn items_position(call: Option<u32>, after: Option<String>) -> ItemsPosition {
        match call {
            Some(index) => ItemsPosition::Calls(index),
            None => ItemsPosition::Unmatched(after),
        }
    }
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CursorError {
    #[error("the link's token is not one this server issued (malformed)")]
    Malformed,
    #[error("the link's token was altered or forged (its seal does not match)")]
    Forged,
}

const TAG_LEN: usize = 16;

/// Seals and opens cursors with a key of its own.
#[derive(Clone)]
pub(crate) struct CursorCodec {
    key: [u8; 32],
}

impl CursorCodec {
    /// A codec whose key comes from `seed`, so that the same run issues the same links.
    pub(crate) fn new(seed: u64) -> Self {
        let key = oc_protocol::signing::hmac_sha256(b"oc-harness cursor key", &seed.to_le_bytes());
        Self { key }
    }

    fn tag(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of every length"),
        };
        mac.update(payload);
        mac
    }

    pub(crate) fn seal(&self, cursor: &Cursor) -> String {
        let payload = serde_json::to_vec(cursor).unwrap_or_default();
        let tag = self.tag(&payload).finalize().into_bytes();
        let mut out = hex(&payload);
        out.push_str(&hex(&tag[..TAG_LEN]));
        out
    }

    pub(crate) fn open(&self, token: &str) -> Result<Cursor, CursorError> {
        let bytes = unhex(token).ok_or(CursorError::Malformed)?;
        if bytes.len() <= TAG_LEN {
            return Err(CursorError::Malformed);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        self.tag(payload)
            .verify_truncated_left(tag)
            .map_err(|_| CursorError::Forged)?;
        serde_json::from_slice(payload).map_err(|_| CursorError::Malformed)
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 4096 {
        return None;
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_cursors_open_and_tampering_is_caught() {
        let codec = CursorCodec::new(7);
        let cursor = Cursor::CdrDelta {
            c: 1,
            pos: 1234,
            size: 500,
        };
        let token = codec.seal(&cursor);
        assert_eq!(codec.open(&token), Ok(cursor.clone()));
        assert_eq!(codec.seal(&cursor), token, "sealing is deterministic");
        // Change one digit of the payload: the seal no longer matches.
        let mut forged = token.clone().into_bytes();
        forged[10] = if forged[10] == b'0' { b'1' } else { b'0' };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(codec.open(&forged), Err(CursorError::Forged));
        assert_eq!(CursorCodec::new(8).open(&token), Err(CursorError::Forged));
        for junk in ["", "zz", "abc", "00", &"0".repeat(5000)] {
            assert!(codec.open(junk).is_err(), "{junk}");
        }
    }
}
