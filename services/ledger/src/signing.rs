//! Signed checkpoints: C2SP signed notes with Ed25519 keys.
//!
//! - Key name: the log's origin (`LEDGER_ORIGIN`).
//! - Key ID: the first 4 bytes of `SHA-256(name || 0x0A || 0x01 || public key)`.
//! - Signature line: `— <name> <base64(key id || signature)>` (U+2014 em dash), after a blank
//!   line that ends the note text; the signature covers the text including its final newline.
//! - Verifier key: `<name>+<hex key id>+<base64(0x01 || public key)>`.
//!
//! This module knows nothing about storage: the key's bytes come from the caller
//! ([`crate::storage`] keeps them in the ledger database).

use base64::{engine::general_purpose::STANDARD, Engine as _};
use openssl::{
    pkey::{Id, PKey, Private, Public},
    sign::{Signer, Verifier},
};
use sha2::{Digest, Sha256};

use crate::domain::Checkpoint;

/// Signature type byte of Ed25519 in C2SP signed notes.
const ED25519_TYPE: u8 = 0x01;
const SIG_PREFIX: &str = "\u{2014} ";

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("key error: {0}")]
    Key(String),
    #[error("malformed verifier key: {0}")]
    BadVerifierKey(String),
    #[error("malformed note: {0}")]
    MalformedNote(String),
    #[error("no valid signature by {0}")]
    NoValidSignature(String),
    /// A signature line names the key (name and ID) but does not verify: the note is forged
    /// or corrupted, not merely unsigned by that key.
    #[error("a signature by {0} does not verify")]
    InvalidSignature(String),
    #[error(transparent)]
    Checkpoint(#[from] crate::domain::checkpoint::CheckpointError),
}

pub(crate) fn key_error(e: openssl::error::ErrorStack) -> SigningError {
    SigningError::Key(e.to_string())
}

/// A key name must be non-empty and contain no whitespace or `+`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// The 4-byte key ID of an Ed25519 note key.
pub fn key_id(name: &str, public_key: &[u8]) -> [u8; 4] {
    typed_key_id(name, ED25519_TYPE, public_key)
}

/// The 4-byte key ID of a key of signature type `key_type`: the first bytes of
/// `SHA-256(name || 0x0A || type || public key)`.
pub(crate) fn typed_key_id(name: &str, key_type: u8, public_key: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0A, key_type]);
    h.update(public_key);
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The parts of `<name>+<hex key id>+<base64(type || key)>`: a verifier key, or the tail of a
/// private key line.
struct KeyParts<'a> {
    name: &'a str,
    key_id: [u8; 4],
    key_type: u8,
    key: Vec<u8>,
}

/// Splits a key into its name, stated key ID, type byte and key bytes (nothing is checked
/// against the key yet: that depends on its type).
fn key_parts(text: &str) -> Result<KeyParts<'_>, &'static str> {
    let mut parts = text.splitn(3, '+');
    let (name, id_hex, key_b64) = match (parts.next(), parts.next(), parts.next()) {
        (Some(n), Some(i), Some(k)) => (n, i, k),
        _ => return Err("expected <name>+<hex id>+<base64 key>"),
    };
    if !valid_name(name) {
        return Err("invalid key name");
    }
    let key_id: [u8; 4] = hex::decode(id_hex)
        .ok()
        .filter(|_| id_hex.len() == 8)
        .and_then(|b| b.try_into().ok())
        .ok_or("key id is not 8 hex digits")?;
    let typed = STANDARD.decode(key_b64).map_err(|_| "key is not base64")?;
    let (key_type, key) = typed.split_first().ok_or("empty key")?;
    Ok(KeyParts {
        name,
        key_id,
        key_type: *key_type,
        key: key.to_vec(),
    })
}

/// Generates a new Ed25519 private key; returns its 32 raw bytes.
pub fn generate_private_key() -> Result<Vec<u8>, SigningError> {
    PKey::generate_ed25519()
        .and_then(|k| k.raw_private_key())
        .map_err(key_error)
}

/// A named Ed25519 private key: what a note signer and a cosigner share. The signature type
/// (0x01 note, 0x04 cosignature) is the caller's; it enters the key ID and the key's lines.
pub(crate) struct NamedKey {
    name: String,
    key: PKey<Private>,
    public_key: Vec<u8>,
}

impl NamedKey {
    /// A key from its name and raw 32-byte Ed25519 private key.
    pub(crate) fn from_raw(name: &str, private_key: &[u8]) -> Result<Self, SigningError> {
        if !valid_name(name) {
            return Err(SigningError::Key(format!(
                "{name:?} is not a valid key name"
            )));
        }
        let key = PKey::private_key_from_raw_bytes(private_key, Id::ED25519).map_err(key_error)?;
        let public_key = key.raw_public_key().map_err(key_error)?;
        Ok(Self {
            name: name.to_string(),
            key,
            public_key,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The raw 32-byte Ed25519 public key.
    pub(crate) fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// The key ID under signature type `key_type`.
    pub(crate) fn key_id(&self, key_type: u8) -> [u8; 4] {
        typed_key_id(&self.name, key_type, &self.public_key)
    }

    /// The raw 32-byte Ed25519 private key.
    pub(crate) fn raw_private_key(&self) -> Result<Vec<u8>, SigningError> {
        self.key.raw_private_key().map_err(key_error)
    }

    /// `<name>+<hex key id>+<base64(type || public key)>`.
    pub(crate) fn verifier_key(&self, key_type: u8) -> String {
        let mut typed = vec![key_type];
        typed.extend_from_slice(&self.public_key);
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id(key_type)),
            STANDARD.encode(typed)
        )
    }

    /// `PRIVATE+KEY+<name>+<hex key id>+<base64(type || seed)>`.
    pub(crate) fn private_key_line(&self, key_type: u8) -> Result<String, SigningError> {
        Ok(format_private_key(
            &self.name,
            key_type,
            self.key_id(key_type),
            &self.raw_private_key()?,
        ))
    }

    /// The 64-byte Ed25519 signature of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let mut signer = Signer::new_without_digest(&self.key).map_err(key_error)?;
        signer.sign_oneshot_to_vec(message).map_err(key_error)
    }

    /// Debug output naming the key and its ID, never the private key.
    pub(crate) fn fmt_debug(
        &self,
        f: &mut std::fmt::Formatter<'_>,
        type_name: &str,
        key_type: u8,
    ) -> std::fmt::Result {
        f.debug_struct(type_name)
            .field("name", &self.name)
            .field("key_id", &hex::encode(self.key_id(key_type)))
            .finish()
    }
}

/// Signs notes as one named key.
pub struct NoteSigner {
    key: NamedKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.key.fmt_debug(f, "NoteSigner", ED25519_TYPE)
    }
}

impl NoteSigner {
    /// A signer from the raw 32-byte Ed25519 private key.
    pub fn from_raw(name: &str, private_key: &[u8]) -> Result<Self, SigningError> {
        Ok(Self {
            key: NamedKey::from_raw(name, private_key)?,
        })
    }

    pub fn name(&self) -> &str {
        self.key.name()
    }

    fn key_id(&self) -> [u8; 4] {
        self.key.key_id(ED25519_TYPE)
    }

    /// A signer from a note private key line (type 0x01, key ID checked).
    pub fn from_private_key(line: &PrivateKeyLine) -> Result<Self, SigningError> {
        if line.key_type != ED25519_TYPE {
            return Err(SigningError::Key(format!(
                "key {} is not an Ed25519 note key",
                line.name
            )));
        }
        let signer = Self::from_raw(&line.name, &line.seed)?;
        if signer.key_id() != line.key_id {
            return Err(SigningError::Key(format!(
                "the key ID of key {} does not match its key",
                line.name
            )));
        }
        Ok(signer)
    }

    /// This key as a private key line (tests write key files with it).
    pub fn private_key_line(&self) -> Result<String, SigningError> {
        self.key.private_key_line(ED25519_TYPE)
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key(&self) -> &[u8] {
        self.key.public_key()
    }

    /// `<name>+<hex key id>+<base64(0x01 || public key)>`.
    pub fn verifier_key(&self) -> String {
        self.key.verifier_key(ED25519_TYPE)
    }

    /// The signed note of `text` (which must end with a newline).
    pub fn sign_note(&self, text: &str) -> Result<String, SigningError> {
        if !text.ends_with('\n') || text.contains("\n\n") {
            return Err(SigningError::MalformedNote(
                "text must end with one newline and hold no blank line".into(),
            ));
        }
        let signature = self.key.sign(text.as_bytes())?;
        let mut blob = self.key_id().to_vec();
        blob.extend_from_slice(&signature);
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name(),
            STANDARD.encode(blob)
        ))
    }

    /// The signed note of a checkpoint.
    pub fn sign_checkpoint(&self, checkpoint: &Checkpoint) -> Result<String, SigningError> {
        self.sign_note(&checkpoint.body())
    }
}

/// A private key in the C2SP/Go note format, `PRIVATE+KEY+<name>+<hex id>+<base64(type ||
/// seed)>`: what a key file holds (one per line).
#[derive(Clone)]
pub struct PrivateKeyLine {
    pub name: String,
    /// The signature type byte (0x01 for a note key, 0x04 for an Ed25519 cosigner key).
    pub key_type: u8,
    /// The 32-byte Ed25519 seed.
    pub seed: Vec<u8>,
    /// The key ID the line states (checked against the key by [`NoteSigner::from_private_key`]
    /// and its cosigner counterpart).
    pub key_id: [u8; 4],
}

impl std::fmt::Debug for PrivateKeyLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKeyLine")
            .field("name", &self.name)
            .field("key_id", &hex::encode(self.key_id))
            .finish_non_exhaustive()
    }
}

/// Parses one private key line; the key ID is checked by whoever knows how to derive it for
/// the key's type.
pub fn parse_private_key(line: &str) -> Result<PrivateKeyLine, SigningError> {
    // Never echo the line: it is a secret.
    let bad = |m: &str| SigningError::Key(format!("malformed private key: {m}"));
    let rest = line
        .trim()
        .strip_prefix("PRIVATE+KEY+")
        .ok_or_else(|| bad("it does not start with PRIVATE+KEY+"))?;
    let KeyParts {
        name,
        key_id,
        key_type,
        key: seed,
    } = key_parts(rest).map_err(bad)?;
    if seed.len() != 32 {
        return Err(bad("not a 32-byte Ed25519 seed"));
    }
    Ok(PrivateKeyLine {
        name: name.to_string(),
        key_type,
        seed,
        key_id,
    })
}

/// `PRIVATE+KEY+<name>+<hex id>+<base64(type || seed)>` (tests and key-generation tools).
pub fn format_private_key(name: &str, key_type: u8, key_id: [u8; 4], seed: &[u8]) -> String {
    let mut typed = vec![key_type];
    typed.extend_from_slice(seed);
    format!(
        "PRIVATE+KEY+{name}+{}+{}",
        hex::encode(key_id),
        STANDARD.encode(typed)
    )
}

/// A parsed Ed25519 verifier key of one signature type.
pub(crate) struct VerifierKey {
    pub(crate) name: String,
    pub(crate) key_id: [u8; 4],
    pub(crate) key: PKey<Public>,
}

/// Parses `<name>+<hex key id>+<base64(type || public key)>` of signature type `key_type`,
/// checking the key ID against the key.
pub(crate) fn parse_typed_verifier_key(
    vkey: &str,
    key_type: u8,
) -> Result<VerifierKey, SigningError> {
    let bad = |m: &str| SigningError::BadVerifierKey(m.to_string());
    let KeyParts {
        name,
        key_id,
        key_type: actual_type,
        key: public,
    } = key_parts(vkey.trim()).map_err(bad)?;
    if actual_type != key_type || public.len() != 32 {
        return Err(bad(&format!(
            "not an Ed25519 key of signature type {key_type:#04x}"
        )));
    }
    if typed_key_id(name, key_type, &public) != key_id {
        return Err(bad("key id does not match the key"));
    }
    let key = PKey::public_key_from_raw_bytes(&public, Id::ED25519).map_err(key_error)?;
    Ok(VerifierKey {
        name: name.to_string(),
        key_id,
        key,
    })
}

fn parse_verifier_key(vkey: &str) -> Result<VerifierKey, SigningError> {
    parse_typed_verifier_key(vkey, ED25519_TYPE)
}

/// The name of a verifier key (`<name>+...`), checked.
pub fn verifier_key_name(verifier_key: &str) -> Result<String, SigningError> {
    parse_verifier_key(verifier_key).map(|k| k.name)
}

/// Splits a signed note into its text (with its final newline) and its signature lines (each
/// with its newline), without verifying anything.
pub fn split_note(note: &str) -> Result<(&str, &str), SigningError> {
    let malformed = |m: &str| SigningError::MalformedNote(m.to_string());
    let split = note
        .find("\n\n")
        .ok_or_else(|| malformed("no blank line before the signatures"))?;
    let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
    if signatures.is_empty() || !signatures.ends_with('\n') {
        return Err(malformed("signatures must end with a newline"));
    }
    if signatures
        .lines()
        .any(|l| !l.starts_with(SIG_PREFIX) || l.len() == SIG_PREFIX.len())
    {
        return Err(malformed("a signature line lacks the em dash"));
    }
    Ok((text, signatures))
}

/// Verifies a signed note against one verifier key and returns its text.
///
/// The note must carry at least one valid signature from that key; signatures by other keys
/// are ignored (a checkpoint may be cosigned by witnesses).
pub fn verify_note_text(note: &str, verifier_key: &str) -> Result<String, SigningError> {
    let key = parse_verifier_key(verifier_key)?;
    let malformed = |m: &str| SigningError::MalformedNote(m.to_string());
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| malformed("no blank line before the signatures"))?;
    let text = &note[..split + 1];
    let signatures = &note[split + 2..];
    if text.contains("\n\n") {
        return Err(malformed("the text holds a blank line"));
    }
    let signatures = signatures
        .strip_suffix('\n')
        .ok_or_else(|| malformed("signatures must end with a newline"))?;
    let mut verified = false;
    for line in signatures.split('\n') {
        let rest = line
            .strip_prefix(SIG_PREFIX)
            .ok_or_else(|| malformed("a signature line lacks the em dash"))?;
        let (name, blob) = rest
            .split_once(' ')
            .ok_or_else(|| malformed("a signature line lacks a space"))?;
        let blob = STANDARD
            .decode(blob)
            .map_err(|_| malformed("a signature is not base64"))?;
        if blob.len() < 5 {
            return Err(malformed("a signature is too short"));
        }
        if name != key.name || blob[..4] != key.key_id {
            continue;
        }
        let mut verifier = Verifier::new_without_digest(&key.key).map_err(key_error)?;
        // A signature by our key that does not verify fails the note outright.
        if verifier
            .verify_oneshot(&blob[4..], text.as_bytes())
            .map_err(key_error)?
        {
            verified = true;
        } else {
            return Err(SigningError::InvalidSignature(key.name.clone()));
        }
    }
    if !verified {
        return Err(SigningError::NoValidSignature(key.name));
    }
    Ok(text.to_string())
}

/// Verifies a signed checkpoint note and returns the checkpoint. Its origin must be the key's
/// name.
pub fn verify_note(note: &str, verifier_key: &str) -> Result<Checkpoint, SigningError> {
    let text = verify_note_text(note, verifier_key)?;
    let checkpoint = Checkpoint::parse(&text)?;
    let key = parse_verifier_key(verifier_key)?;
    if checkpoint.origin != key.name {
        return Err(SigningError::MalformedNote(
            "the checkpoint origin is not the key's name".into(),
        ));
    }
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(name: &str) -> NoteSigner {
        NoteSigner::from_raw(name, &generate_private_key().unwrap()).unwrap()
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "custodian.local/ledger".into(),
            tree_size: 3,
            root_hash: [9; 32],
        }
    }

    #[test]
    fn signed_checkpoints_verify() {
        let s = signer("custodian.local/ledger");
        let note = s.sign_checkpoint(&checkpoint()).unwrap();
        assert!(note.starts_with("custodian.local/ledger\n3\n"));
        assert!(note.contains("\n\n\u{2014} custodian.local/ledger "));
        assert_eq!(verify_note(&note, &s.verifier_key()).unwrap(), checkpoint());
    }

    #[test]
    fn verifier_key_has_the_c2sp_shape() {
        let s = signer("custodian.local/ledger");
        let vkey = s.verifier_key();
        let parts: Vec<&str> = vkey.splitn(3, '+').collect();
        assert_eq!(parts[0], "custodian.local/ledger");
        assert_eq!(parts[1].len(), 8);
        let typed = STANDARD.decode(parts[2]).unwrap();
        assert_eq!(typed.len(), 33);
        assert_eq!(typed[0], 0x01);
        assert_eq!(
            hex::encode(key_id("custodian.local/ledger", &typed[1..])),
            parts[1]
        );
    }

    /// A note signed by Go's golang.org/x/mod/sumdb/note (its package documentation example),
    /// so the format is checked against an independent implementation.
    #[test]
    fn verifies_a_note_signed_by_the_go_implementation() {
        let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let note = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n\
                    \n\
                    \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        let text = verify_note_text(note, vkey).unwrap();
        assert!(text.starts_with("If you think"));
        let tampered = note.replace("cryptography", "Cryptography");
        assert!(verify_note_text(&tampered, vkey).is_err());
        // Ed25519 is deterministic: the Go signer's key signs the same bytes here.
        let skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
        let seed = STANDARD
            .decode(skey.splitn(5, '+').nth(4).unwrap())
            .unwrap();
        let ours = NoteSigner::from_raw("PeterNeumann", &seed[1..]).unwrap();
        assert_eq!(ours.verifier_key(), vkey);
        assert_eq!(ours.sign_note(&text).unwrap(), note);
    }

    #[test]
    fn tampered_notes_fail() {
        let s = signer("custodian.local/ledger");
        let note = s.sign_checkpoint(&checkpoint()).unwrap();
        let vkey = s.verifier_key();
        // A changed tree size.
        assert!(verify_note(&note.replacen("\n3\n", "\n4\n", 1), &vkey).is_err());
        // A changed root.
        let root = STANDARD.encode([9u8; 32]);
        let other = STANDARD.encode([8u8; 32]);
        assert!(verify_note(&note.replace(&root, &other), &vkey).is_err());
        // A flipped signature byte.
        let (head, sig_line) = note.rsplit_once(' ').unwrap();
        let mut blob = STANDARD.decode(sig_line.trim_end()).unwrap();
        blob[10] ^= 1;
        let forged = format!("{head} {}\n", STANDARD.encode(blob));
        assert!(verify_note(&forged, &vkey).is_err());
        // Another key with the same name.
        let impostor = signer("custodian.local/ledger");
        assert!(verify_note(&impostor.sign_checkpoint(&checkpoint()).unwrap(), &vkey).is_err());
        // No signature at all.
        assert!(verify_note(&checkpoint().body(), &vkey).is_err());
        // A wrong key id in the verifier key.
        let mut parts: Vec<String> = vkey.splitn(3, '+').map(str::to_string).collect();
        parts[1] = "00000000".into();
        assert!(verify_note(&note, &parts.join("+")).is_err());
    }

    #[test]
    fn signatures_by_other_keys_are_ignored() {
        let s = signer("custodian.local/ledger");
        let witness = signer("witness.example");
        let note = s.sign_checkpoint(&checkpoint()).unwrap();
        let cosigned = witness.sign_note(&checkpoint().body()).unwrap();
        let extra = cosigned.rsplit_once("\n\n").unwrap().1;
        let both = format!("{note}{extra}");
        assert_eq!(verify_note(&both, &s.verifier_key()).unwrap(), checkpoint());
        assert!(
            verify_note(&both, &witness.verifier_key()).is_err(),
            "origin is not the witness"
        );
    }

    #[test]
    fn keys_reload_from_raw_bytes() {
        let raw = generate_private_key().unwrap();
        let a = NoteSigner::from_raw("log", &raw).unwrap();
        let b = NoteSigner::from_raw("log", &raw).unwrap();
        assert_eq!(a.verifier_key(), b.verifier_key());
        assert!(NoteSigner::from_raw("bad name", &raw).is_err());
    }
}
