//! Witness cosignatures: C2SP `tlog-cosignature` `cosignature/v1`, timestamped Ed25519.
//!
//! - Key ID: the first 4 bytes of `SHA-256(name || 0x0A || 0x04 || public key)`.
//! - Signed message: `cosignature/v1\ntime <secs>\n` followed by the whole checkpoint body
//!   (the note text, with its final newline, without signature lines).
//! - Signature line: `— <name> <base64(key id || 8-byte big-endian timestamp || signature)>`.
//! - Verifier key: `<name>+<hex key id>+<base64(0x04 || public key)>`.
//!
//! Beside [`crate::signing`], which signs the log's own notes; like it, it knows nothing about
//! storage or HTTP.

use crate::signing::{
    key_error, parse_typed_verifier_key, typed_key_id, NamedKey, PrivateKeyLine, SigningError,
};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use openssl::{
    pkey::{PKey, Public},
    sign::Verifier,
};

/// Signature type byte of Ed25519 cosignatures.
pub const COSIGNATURE_TYPE: u8 = 0x04;
/// Signature type byte of plain Ed25519 note keys (accepted in key files: the same seed).
const NOTE_KEY_TYPE: u8 = 0x01;
const SIG_PREFIX: &str = "\u{2014} ";
/// Key ID, timestamp, Ed25519 signature.
const BLOB_LEN: usize = 4 + 8 + 64;

/// The 4-byte key ID of an Ed25519 cosigner key.
pub fn cosigner_key_id(name: &str, public_key: &[u8]) -> [u8; 4] {
    typed_key_id(name, COSIGNATURE_TYPE, public_key)
}

/// The message a `cosignature/v1` signs.
fn signed_message(checkpoint_body: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{checkpoint_body}")
}

/// Cosigns checkpoints as one named witness key.
pub struct Cosigner {
    key: NamedKey,
}

impl std::fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.key.fmt_debug(f, "Cosigner", COSIGNATURE_TYPE)
    }
}

impl Cosigner {
    /// A cosigner from the raw 32-byte Ed25519 private key.
    pub fn from_raw(name: &str, private_key: &[u8]) -> Result<Self, SigningError> {
        Ok(Self {
            key: NamedKey::from_raw(name, private_key)?,
        })
    }

    fn key_id(&self) -> [u8; 4] {
        self.key.key_id(COSIGNATURE_TYPE)
    }

    /// A cosigner from a private key line: type 0x04 (cosigner key ID) or 0x01 (a note key
    /// made by the usual tools; its note key ID is checked, the cosigner ID derived).
    pub fn from_private_key(line: &PrivateKeyLine) -> Result<Self, SigningError> {
        let cosigner = Self::from_raw(&line.name, &line.seed)?;
        let expected = match line.key_type {
            COSIGNATURE_TYPE => cosigner.key_id(),
            NOTE_KEY_TYPE => cosigner.key.key_id(NOTE_KEY_TYPE),
            other => {
                return Err(SigningError::Key(format!(
                    "key {} has signature type {other:#04x}, not Ed25519",
                    line.name
                )))
            }
        };
        if expected != line.key_id {
            return Err(SigningError::Key(format!(
                "the key ID of key {} does not match its key",
                line.name
            )));
        }
        Ok(cosigner)
    }

    pub fn name(&self) -> &str {
        self.key.name()
    }

    /// This key as a private key line (type 0x04), for `WITNESS_KEY_FILE`.
    pub fn private_key_line(&self) -> Result<String, SigningError> {
        self.key.private_key_line(COSIGNATURE_TYPE)
    }

    /// The raw 32-byte Ed25519 private key (to store a generated key).
    pub fn raw_private_key(&self) -> Result<Vec<u8>, SigningError> {
        self.key.raw_private_key()
    }

    /// `<name>+<hex key id>+<base64(0x04 || public key)>`.
    pub fn verifier_key(&self) -> String {
        self.key.verifier_key(COSIGNATURE_TYPE)
    }

    /// The cosignature line (`— <name> <base64 blob>\n`) of a checkpoint body at `timestamp`
    /// (seconds since the epoch, never zero per the spec).
    pub fn cosign(&self, checkpoint_body: &str, timestamp: u64) -> Result<String, SigningError> {
        let signature = self
            .key
            .sign(signed_message(checkpoint_body, timestamp).as_bytes())?;
        let mut blob = Vec::with_capacity(BLOB_LEN);
        blob.extend_from_slice(&self.key_id());
        blob.extend_from_slice(&timestamp.to_be_bytes());
        blob.extend_from_slice(&signature);
        Ok(format!(
            "{SIG_PREFIX}{} {}\n",
            self.key.name(),
            STANDARD.encode(blob)
        ))
    }
}

/// A witness's public key, to check its cosignatures.
#[derive(Clone)]
pub struct CosignatureVerifier {
    name: String,
    key_id: [u8; 4],
    key: PKey<Public>,
    verifier_key: String,
}

impl std::fmt::Debug for CosignatureVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.verifier_key)
    }
}

/// A cosignature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCosignature {
    /// The signature line, with its newline.
    pub line: String,
    /// When the witness cosigned (seconds since the epoch).
    pub timestamp: u64,
}

impl CosignatureVerifier {
    /// Parses `<name>+<hex key id>+<base64(0x04 || public key)>`.
    pub fn parse(verifier_key: &str) -> Result<Self, SigningError> {
        let verifier_key = verifier_key.trim();
        let parsed = parse_typed_verifier_key(verifier_key, COSIGNATURE_TYPE)?;
        Ok(Self {
            name: parsed.name,
            key_id: parsed.key_id,
            key: parsed.key,
            verifier_key: verifier_key.to_string(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    /// Finds this witness's cosignature of `checkpoint_body` among signature lines (other
    /// keys' lines are ignored). A line with this key's name and ID that does not verify, or
    /// a timestamp of zero, is an error, as is no line at all.
    pub fn verify(
        &self,
        checkpoint_body: &str,
        signature_lines: &str,
    ) -> Result<VerifiedCosignature, SigningError> {
        let malformed = |m: &str| SigningError::MalformedNote(m.to_string());
        for line in signature_lines.lines() {
            let Some(rest) = line.strip_prefix(SIG_PREFIX) else {
                return Err(malformed("a signature line lacks the em dash"));
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                return Err(malformed("a signature line lacks a space"));
            };
            let Ok(blob) = STANDARD.decode(blob) else {
                return Err(malformed("a signature is not base64"));
            };
            if name != self.name || blob.len() < 4 || blob[..4] != self.key_id {
                continue;
            }
            if blob.len() != BLOB_LEN {
                return Err(SigningError::InvalidSignature(self.name.clone()));
            }
            let mut timestamp = [0u8; 8];
            timestamp.copy_from_slice(&blob[4..12]);
            let timestamp = u64::from_be_bytes(timestamp);
            let mut verifier = Verifier::new_without_digest(&self.key).map_err(key_error)?;
            let valid = verifier
                .verify_oneshot(
                    &blob[12..],
                    signed_message(checkpoint_body, timestamp).as_bytes(),
                )
                .map_err(key_error)?;
            if !valid || timestamp == 0 || timestamp > i64::MAX as u64 {
                return Err(SigningError::InvalidSignature(self.name.clone()));
            }
            return Ok(VerifiedCosignature {
                line: format!("{line}\n"),
                timestamp,
            });
        }
        Err(SigningError::NoValidSignature(self.name.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{format_private_key, generate_private_key, parse_private_key};

    const BODY: &str = "example.com/log\n3\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    fn cosigner(name: &str) -> Cosigner {
        Cosigner::from_raw(name, &generate_private_key().unwrap()).unwrap()
    }

    #[test]
    fn cosignatures_verify_and_carry_their_time() {
        let w = cosigner("witness.example/w1");
        let line = w.cosign(BODY, 1_679_315_147).unwrap();
        assert!(line.starts_with("\u{2014} witness.example/w1 "));
        let blob = STANDARD
            .decode(line.trim_end().rsplit_once(' ').unwrap().1)
            .unwrap();
        assert_eq!(blob.len(), 76);
        assert_eq!(&blob[4..12], &1_679_315_147u64.to_be_bytes());
        let verifier = CosignatureVerifier::parse(&w.verifier_key()).unwrap();
        let verified = verifier.verify(BODY, &line).unwrap();
        assert_eq!(verified.timestamp, 1_679_315_147);
        assert_eq!(verified.line, line);
    }

    #[test]
    fn the_key_id_uses_type_0x04() {
        let w = cosigner("w");
        let vkey = w.verifier_key();
        let parts: Vec<&str> = vkey.splitn(3, '+').collect();
        let typed = STANDARD.decode(parts[2]).unwrap();
        assert_eq!(typed[0], 0x04);
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"w\n\x04");
        h.update(&typed[1..]);
        assert_eq!(parts[1], hex::encode(&h.finalize()[..4]));
    }

    #[test]
    fn forged_or_foreign_cosignatures_fail() {
        let w = cosigner("w1");
        let verifier = CosignatureVerifier::parse(&w.verifier_key()).unwrap();
        let line = w.cosign(BODY, 100).unwrap();
        // Another checkpoint body.
        assert!(verifier
            .verify(&BODY.replace("\n3\n", "\n4\n"), &line)
            .is_err());
        // A changed timestamp.
        let (head, b64) = line.trim_end().rsplit_once(' ').unwrap();
        let mut blob = STANDARD.decode(b64).unwrap();
        blob[11] ^= 1;
        let forged = format!("{head} {}\n", STANDARD.encode(&blob));
        assert!(matches!(
            verifier.verify(BODY, &forged),
            Err(SigningError::InvalidSignature(_))
        ));
        // Only another witness's line: none of ours.
        let other = cosigner("w1").cosign(BODY, 100).unwrap();
        assert!(matches!(
            verifier.verify(BODY, &other),
            Err(SigningError::NoValidSignature(_))
        ));
        // Ours among others is found.
        let both = format!("{other}{line}");
        assert!(verifier.verify(BODY, &both).is_ok());
        // A zero timestamp is refused.
        let zero = w.cosign(BODY, 0).unwrap();
        assert!(verifier.verify(BODY, &zero).is_err());
        // A note verifier key (type 0x01) is no cosigner key.
        let note_key = crate::signing::NoteSigner::from_raw("w1", &generate_private_key().unwrap())
            .unwrap()
            .verifier_key();
        assert!(CosignatureVerifier::parse(&note_key).is_err());
    }

    #[test]
    fn cosigners_load_from_private_key_lines() {
        let seed = generate_private_key().unwrap();
        let w = Cosigner::from_raw("w", &seed).unwrap();
        let line = format_private_key("w", COSIGNATURE_TYPE, w.key_id(), &seed);
        let loaded = Cosigner::from_private_key(&parse_private_key(&line).unwrap()).unwrap();
        assert_eq!(loaded.verifier_key(), w.verifier_key());
        // A note key line (type 0x01) of the same seed gives the same cosigner.
        let note = crate::signing::NoteSigner::from_raw("w", &seed).unwrap();
        let note_line = note.private_key_line().unwrap();
        let from_note =
            Cosigner::from_private_key(&parse_private_key(&note_line).unwrap()).unwrap();
        assert_eq!(from_note.verifier_key(), w.verifier_key());
        // A wrong key ID is refused.
        let wrong = format_private_key("w", COSIGNATURE_TYPE, [0; 4], &seed);
        assert!(Cosigner::from_private_key(&parse_private_key(&wrong).unwrap()).is_err());
    }
}
