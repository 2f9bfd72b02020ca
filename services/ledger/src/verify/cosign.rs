//! Witness cosignatures (C2SP tlog-cosignature, Ed25519 type `0x04`), checked here so `verify`
//! does not depend on how the log collects them. [`count_cosigners`] is the one entry point:
//! another implementation can replace this module behind it.
//!
//! - Verifier key: `<name>+<hex key id>+<base64(0x04 || public key)>`, key ID the first 4
//!   bytes of `SHA-256(name || 0x0A || 0x04 || public key)`.
//! - Signature line: `— <name> base64(key id || u64 big-endian timestamp || signature)`.
//! - Signed message: `cosignature/v1\ntime <timestamp>\n` followed by the note text (the
//!   checkpoint body with its final newline, without the signature lines).

use base64::{engine::general_purpose::STANDARD, Engine as _};
use openssl::{
    pkey::{Id, PKey, Public},
    sign::Verifier,
};
use sha2::{Digest, Sha256};

/// Signature type of Ed25519 note signatures (the log's own key).
pub const NOTE_ED25519: u8 = 0x01;
/// Signature type of timestamped Ed25519 cosignatures.
pub const COSIGNATURE_ED25519: u8 = 0x04;
const SIG_PREFIX: &str = "\u{2014} ";

/// A parsed C2SP verifier key of a known signature type.
#[derive(Clone)]
pub struct VerifierKey {
    pub name: String,
    pub key_id: [u8; 4],
    key: PKey<Public>,
}

impl std::fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}+{}", self.name, hex::encode(self.key_id))
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}+{}", self.name, hex::encode(self.key_id))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad verifier key {key:?}: {reason}")]
pub struct KeyError {
    pub key: String,
    pub reason: String,
}

fn key_id(name: &str, signature_type: u8, public_key: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0A, signature_type]);
    h.update(public_key);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// Parses `<name>+<hex key id>+<base64(type || Ed25519 public key)>` of `signature_type`.
pub fn parse_verifier_key(vkey: &str, signature_type: u8) -> Result<VerifierKey, KeyError> {
    let bad = |reason: &str| KeyError {
        key: vkey.to_string(),
        reason: reason.to_string(),
    };
    let mut parts = vkey.trim().splitn(3, '+');
    let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected <name>+<hex id>+<base64 key>"));
    };
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(bad("invalid key name"));
    }
    let key_id_given: [u8; 4] = hex::decode(id_hex)
        .ok()
        .filter(|_| id_hex.len() == 8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("key id is not 8 hex digits"))?;
    let typed = STANDARD
        .decode(key_b64)
        .map_err(|_| bad("key is not base64"))?;
    let Some((alg, public)) = typed.split_first() else {
        return Err(bad("empty key"));
    };
    if *alg != signature_type || public.len() != 32 {
        return Err(bad(&format!(
            "not an Ed25519 key of signature type 0x{signature_type:02x}"
        )));
    }
    if key_id(name, signature_type, public) != key_id_given {
        return Err(bad("key id does not match the key"));
    }
    let key =
        PKey::public_key_from_raw_bytes(public, Id::ED25519).map_err(|e| bad(&e.to_string()))?;
    Ok(VerifierKey {
        name: name.to_string(),
        key_id: key_id_given,
        key,
    })
}

/// The signature lines of a signed note (after its last blank line), or `None` when the note
/// has no blank line.
fn signature_lines(note: &str) -> Option<(&str, impl Iterator<Item = &str>)> {
    let split = note.rfind("\n\n")?;
    let text = &note[..split + 1];
    let lines = note[split + 2..].lines();
    Some((text, lines))
}

/// How many distinct `witnesses` validly cosigned `note` (a signed checkpoint note). A
/// malformed or invalid cosignature line does not count; lines by other keys are ignored.
pub fn count_cosigners(note: &str, witnesses: &[VerifierKey]) -> usize {
    let Some((text, lines)) = signature_lines(note) else {
        return 0;
    };
    let mut cosigned = vec![false; witnesses.len()];
    for line in lines {
        let Some((name, blob)) = line
            .strip_prefix(SIG_PREFIX)
            .and_then(|rest| rest.split_once(' '))
        else {
            continue;
        };
        let Ok(blob) = STANDARD.decode(blob) else {
            continue;
        };
        // key id (4) || timestamp (8) || Ed25519 signature (64)
        if blob.len() != 76 {
            continue;
        }
        let (id, rest) = blob.split_at(4);
        let (timestamp, signature) = rest.split_at(8);
        let Ok(timestamp) = <[u8; 8]>::try_from(timestamp).map(u64::from_be_bytes) else {
            continue;
        };
        if timestamp > i64::MAX as u64 {
            continue;
        }
        let message = format!("cosignature/v1\ntime {timestamp}\n{text}");
        for (i, witness) in witnesses.iter().enumerate() {
            if cosigned[i] || witness.name != name || witness.key_id[..] != *id {
                continue;
            }
            let valid = Verifier::new_without_digest(&witness.key)
                .and_then(|mut v| v.verify_oneshot(signature, message.as_bytes()))
                .unwrap_or(false);
            cosigned[i] = valid;
        }
    }
    cosigned.into_iter().filter(|c| *c).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::{pkey::Private, sign::Signer};

    struct TestWitness {
        name: String,
        key: PKey<Private>,
    }

    impl TestWitness {
        fn new(name: &str) -> Self {
            Self {
                name: name.into(),
                key: PKey::generate_ed25519().unwrap(),
            }
        }

        fn vkey(&self) -> String {
            let public = self.key.raw_public_key().unwrap();
            let mut typed = vec![COSIGNATURE_ED25519];
            typed.extend_from_slice(&public);
            format!(
                "{}+{}+{}",
                self.name,
                hex::encode(key_id(&self.name, COSIGNATURE_ED25519, &public)),
                STANDARD.encode(typed)
            )
        }

        fn cosign(&self, text: &str, timestamp: u64) -> String {
            let public = self.key.raw_public_key().unwrap();
            let message = format!("cosignature/v1\ntime {timestamp}\n{text}");
            let mut signer = Signer::new_without_digest(&self.key).unwrap();
            let signature = signer.sign_oneshot_to_vec(message.as_bytes()).unwrap();
            let mut blob = key_id(&self.name, COSIGNATURE_ED25519, &public).to_vec();
            blob.extend_from_slice(&timestamp.to_be_bytes());
            blob.extend_from_slice(&signature);
            format!("{SIG_PREFIX}{} {}\n", self.name, STANDARD.encode(blob))
        }
    }

    const TEXT: &str = "custodian.local/ledger\n3\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    #[test]
    fn counts_valid_cosignatures_of_known_witnesses_once() {
        let w1 = TestWitness::new("w1.example");
        let w2 = TestWitness::new("w2.example");
        let stranger = TestWitness::new("w3.example");
        let keys = vec![
            parse_verifier_key(&w1.vkey(), COSIGNATURE_ED25519).unwrap(),
            parse_verifier_key(&w2.vkey(), COSIGNATURE_ED25519).unwrap(),
        ];
        let log_line = "\u{2014} custodian.local/ledger AAAAAAAA\n";
        let note = format!(
            "{TEXT}\n{log_line}{}{}{}",
            w1.cosign(TEXT, 1_700_000_000),
            w1.cosign(TEXT, 1_700_000_001),
            stranger.cosign(TEXT, 1_700_000_000)
        );
        assert_eq!(count_cosigners(&note, &keys), 1);
        let both = format!("{note}{}", w2.cosign(TEXT, 5));
        assert_eq!(count_cosigners(&both, &keys), 2);
        // A cosignature of another text does not count.
        let other = TEXT.replace("\n3\n", "\n4\n");
        let wrong = format!("{TEXT}\n{}", w2.cosign(&other, 5));
        assert_eq!(count_cosigners(&wrong, &keys), 0);
        // Nor one whose timestamp was changed after signing.
        let line = w2.cosign(TEXT, 5);
        let (head, b64) = line.trim_end().rsplit_once(' ').unwrap();
        let mut blob = STANDARD.decode(b64).unwrap();
        blob[11] ^= 1;
        let forged = format!("{TEXT}\n{head} {}\n", STANDARD.encode(blob));
        assert_eq!(count_cosigners(&forged, &keys), 0);
    }

    #[test]
    fn verifier_keys_are_checked() {
        let w = TestWitness::new("w.example");
        assert!(parse_verifier_key(&w.vkey(), COSIGNATURE_ED25519).is_ok());
        assert!(parse_verifier_key(&w.vkey(), NOTE_ED25519).is_err());
        assert!(parse_verifier_key("w.example+00000000+AAAA", COSIGNATURE_ED25519).is_err());
        let mut parts: Vec<String> = w.vkey().splitn(3, '+').map(str::to_string).collect();
        parts[1] = "00000000".into();
        assert!(parse_verifier_key(&parts.join("+"), COSIGNATURE_ED25519).is_err());
    }
}
