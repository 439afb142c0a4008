//! Random secrets: tokens in REMP's format and generated passwords.
//!
//! Tokens are 128 bits from the OS random source, written as 32 lowercase hex characters, the
//! format REMP clients expect. Only their SHA-256 digests are stored, so a copy of the data
//! folder does not hand out working tokens.

use sha2::{Digest, Sha256};

/// Bytes of randomness in a token (REMP: `bin2hex(random_bytes(16))`).
pub const TOKEN_BYTES: usize = 16;

/// REMP's password alphabet: no i, l, o, w or 0, so generated passwords read unambiguously.
const PASSWORD_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvzxy123456789ABCDEFGHJKMNPQRSTUVZXY";

/// Length of passwords the service generates (REMP: `generatePassword(8)`).
pub const GENERATED_PASSWORD_LEN: usize = 8;

/// The SHA-256 digest of a token, the only form in which tokens are stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TokenDigest(#[serde(with = "hex_bytes")] pub [u8; 32]);

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Enough to tell digests apart in logs, not enough to matter if leaked.
        write!(f, "TokenDigest({}..)", hex::encode(&self.0[..4]))
    }
}

impl TokenDigest {
    /// Digest of the token as presented by a client.
    pub fn of(token: &str) -> Self {
        TokenDigest(Sha256::digest(token.as_bytes()).into())
    }
}

/// A freshly generated token: the plain text (shown once) and its digest (stored).
#[derive(Debug, Clone)]
pub struct NewToken {
    pub plain: String,
    pub digest: TokenDigest,
}

/// Fill a buffer from the OS random source. Failure means the OS cannot give randomness, and
/// nothing secure can be done then.
fn random_bytes<const N: usize>() -> crate::domain::Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)
        .map_err(|e| crate::domain::Error::Internal(anyhow::anyhow!("OS random source failed: {e}")))?;
    Ok(buf)
}

/// A new 32-hex-character token.
pub fn new_token() -> crate::domain::Result<NewToken> {
    let plain = hex::encode(random_bytes::<TOKEN_BYTES>()?);
    let digest = TokenDigest::of(&plain);
    Ok(NewToken { plain, digest })
}

/// Whether a presented string has the shape of one of our tokens. Anything else cannot match a
/// stored digest, so lookups for it are skipped.
pub fn looks_like_token(value: &str) -> bool {
    value.len() == TOKEN_BYTES * 2 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A password of REMP's alphabet, drawn without modulo bias.
pub fn generate_password() -> crate::domain::Result<String> {
    let mut out = String::with_capacity(GENERATED_PASSWORD_LEN);
    let n = PASSWORD_ALPHABET.len();
    // Rejection sampling: bytes at or above the largest multiple of n are redrawn.
    let limit = 256 - (256 % n);
    while out.len() < GENERATED_PASSWORD_LEN {
        for b in random_bytes::<32>()? {
            if (b as usize) < limit && out.len() < GENERATED_PASSWORD_LEN {
                out.push(PASSWORD_ALPHABET[b as usize % n] as char);
            }
        }
    }
    Ok(out)
}

/// A random 32-byte key, e.g. for `hashed_id`.
pub fn new_key() -> crate::domain::Result<[u8; 32]> {
    random_bytes::<32>()
}

/// `[u8; 32]` as 64 lowercase hex characters in serde formats.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(text.as_bytes(), &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_32_lowercase_hex_and_distinct() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_eq!(a.plain.len(), 32);
        assert!(a.plain.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_ne!(a.plain, b.plain);
        assert_eq!(a.digest, TokenDigest::of(&a.plain));
        assert!(looks_like_token(&a.plain));
        assert!(!looks_like_token("xyz"));
    }

    #[test]
    fn generated_passwords_use_remps_alphabet() {
        for _ in 0..50 {
            let p = generate_password().unwrap();
            assert_eq!(p.len(), GENERATED_PASSWORD_LEN);
            assert!(p.bytes().all(|c| PASSWORD_ALPHABET.contains(&c)), "{p}");
            assert!(!p.contains(['i', 'l', 'o', 'w', '0']));
        }
    }

    #[test]
    fn digest_round_trips_through_json() {
        let d = TokenDigest::of("abc");
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<TokenDigest>(&text).unwrap(), d);
    }
}
