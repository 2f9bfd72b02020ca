//! Encryption at rest: AES-256-GCM over each stored resource version, a fresh random 96-bit
//! nonce per version, and the version's address (`type/id/version`) as associated data so a
//! ciphertext moved to another row fails to decrypt.
//!
//! Two kinds of key: the master key (from configuration) and one data key per patient
//! compartment, stored only wrapped by the master key ([`RecordCipher::wrap_key`]). Versions in
//! a compartment are sealed with that patient's data key, so destroying the wrapped key erases
//! them (crypto-erasure); resources in no compartment, and rows written before data keys
//! existed, are sealed with the master key. Which key sealed a row is said by its `sealed_by`
//! column ([`SealedBy`]). The master key also keys the MACs of erasure confirmation codes.

use std::{io::Write, path::Path};

use openssl::{
    hash::MessageDigest,
    pkey::PKey,
    rand::rand_bytes,
    sign::Signer,
    symm::{decrypt_aead, encrypt_aead, Cipher},
};

use crate::configuration::KeySource;

const NONCE: usize = 12;
const TAG: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the encryption key is invalid: {0}")]
    BadKey(String),
    #[error("the key file could not be read or created: {0}")]
    KeyFile(String),
    #[error("encryption failed: {0}")]
    Encrypt(String),
    #[error("a stored record could not be decrypted (wrong key or tampered row)")]
    Decrypt,
    #[error("a MAC could not be computed: {0}")]
    Mac(String),
}

/// Which key sealed a stored version (the `resource_versions.sealed_by` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedBy {
    /// The master key: rows in no compartment, and every row written before data keys.
    Master,
    /// The data key of the version's patient compartment.
    PatientKey,
}

impl SealedBy {
    pub fn code(self) -> i16 {
        match self {
            SealedBy::Master => 0,
            SealedBy::PatientKey => 1,
        }
    }

    /// An unknown code is refused (never guessed): the row does not open.
    pub fn from_code(code: i16) -> Result<Self, CryptoError> {
        match code {
            0 => Ok(SealedBy::Master),
            1 => Ok(SealedBy::PatientKey),
            _ => Err(CryptoError::Decrypt),
        }
    }
}

/// The records key. `Debug` never shows it.
#[derive(Clone)]
pub struct RecordCipher {
    key: [u8; 32],
}

impl Drop for RecordCipher {
    /// Best effort: the key bytes do not outlive the cipher in this copy.
    fn drop(&mut self) {
        self.key.fill(0);
        std::hint::black_box(&mut self.key);
    }
}

impl std::fmt::Debug for RecordCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordCipher(***)")
    }
}

impl RecordCipher {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// From 64 hex characters.
    pub fn from_hex(hex_key: &str) -> Result<Self, CryptoError> {
        let bytes = hex::decode(hex_key.trim()).map_err(|e| CryptoError::BadKey(e.to_string()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| CryptoError::BadKey("expected 32 bytes (64 hex characters)".into()))?;
        Ok(Self::new(key))
    }

    /// Reads the key file (32 raw bytes or 64 hex characters), creating it with mode 0600 and a
    /// random key when it does not exist.
    pub fn from_file(path: &str) -> Result<Self, CryptoError> {
        let path = Path::new(path);
        if path.exists() {
            let bytes = std::fs::read(path).map_err(|e| CryptoError::KeyFile(e.to_string()))?;
            if let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) {
                return Ok(Self::new(key));
            }
            let text = String::from_utf8_lossy(&bytes);
            return Self::from_hex(text.trim());
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| CryptoError::KeyFile(e.to_string()))?;
        }
        let mut key = [0u8; 32];
        rand_bytes(&mut key).map_err(|e| CryptoError::KeyFile(e.to_string()))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(path) {
            Ok(mut file) => {
                file.write_all(&key)
                    .map_err(|e| CryptoError::KeyFile(e.to_string()))?;
                tracing::warn!(path = %path.display(), "created a new records encryption key");
                Ok(Self::new(key))
            }
            // Another instance created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::from_file(&path.to_string_lossy())
            }
            Err(e) => Err(CryptoError::KeyFile(e.to_string())),
        }
    }

    /// A fresh random key (a patient's data key).
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = [0u8; 32];
        rand_bytes(&mut key).map_err(|e| CryptoError::Encrypt(e.to_string()))?;
        Ok(Self::new(key))
    }

    /// `data_key` sealed with this (master) key, bound to `patient_ref`: a wrapped key moved to
    /// another patient's row does not unwrap.
    pub fn wrap_key(
        &self,
        patient_ref: &str,
        data_key: &RecordCipher,
    ) -> Result<Vec<u8>, CryptoError> {
        self.seal(&wrap_aad(patient_ref), &data_key.key)
    }

    /// The data key of `patient_ref` from its wrapped form.
    pub fn unwrap_key(
        &self,
        patient_ref: &str,
        wrapped: &[u8],
    ) -> Result<RecordCipher, CryptoError> {
        let mut plain = self.open(&wrap_aad(patient_ref), wrapped)?;
        let key = <[u8; 32]>::try_from(plain.as_slice()).map_err(|_| CryptoError::Decrypt);
        plain.fill(0);
        key.map(Self::new)
    }

    /// HMAC-SHA256 of `message` under a key derived from this one for `purpose` (so a MAC of
    /// one purpose never stands for another, and the records key itself is never a MAC key).
    pub fn mac(&self, purpose: &str, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let hmac = |key: &[u8], data: &[u8]| -> Result<Vec<u8>, openssl::error::ErrorStack> {
            let pkey = PKey::hmac(key)?;
            let mut signer = Signer::new(MessageDigest::sha256(), &pkey)?;
            signer.update(data)?;
            signer.sign_to_vec()
        };
        let derived = hmac(&self.key, format!("custodian-records/{purpose}").as_bytes())
            .map_err(|e| CryptoError::Mac(e.to_string()))?;
        hmac(&derived, message).map_err(|e| CryptoError::Mac(e.to_string()))
    }

    pub fn from_source(source: &KeySource) -> Result<Self, CryptoError> {
        match source {
            KeySource::Hex(secret) => Self::from_hex(secret.expose()),
            KeySource::File(path) => Self::from_file(path),
        }
    }

    /// nonce || ciphertext || tag.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE];
        rand_bytes(&mut nonce).map_err(|e| CryptoError::Encrypt(e.to_string()))?;
        let mut tag = [0u8; TAG];
        let ciphertext = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(&nonce),
            aad.as_bytes(),
            plaintext,
            &mut tag,
        )
        .map_err(|e| CryptoError::Encrypt(e.to_string()))?;
        let mut out = Vec::with_capacity(NONCE + ciphertext.len() + TAG);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    pub fn open(&self, aad: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE + TAG {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, rest) = sealed.split_at(NONCE);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(nonce),
            aad.as_bytes(),
            ciphertext,
            tag,
        )
        .map_err(|_| CryptoError::Decrypt)
    }
}

fn wrap_aad(patient_ref: &str) -> String {
    format!("patient-key/{patient_ref}")
}

/// Constant-time equality of two MACs.
pub fn same_mac(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

/// The associated data binding a ciphertext to its row.
pub fn aad(resource_type: &str, id: &str, version: i64) -> String {
    format!("{resource_type}/{id}/{version}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_to_its_row() {
        let cipher = RecordCipher::new([7u8; 32]);
        let sealed = cipher.seal("Patient/a/1", b"{\"name\":\"Alice\"}").unwrap();
        assert!(!sealed.windows(5).any(|w| w == b"Alice"));
        assert_eq!(
            cipher.open("Patient/a/1", &sealed).unwrap(),
            b"{\"name\":\"Alice\"}"
        );
        assert!(
            cipher.open("Patient/b/1", &sealed).is_err(),
            "AAD must bind the row"
        );
        assert!(RecordCipher::new([8u8; 32])
            .open("Patient/a/1", &sealed)
            .is_err());
    }

    #[test]
    fn data_keys_wrap_and_unwrap_bound_to_their_patient() {
        let master = RecordCipher::new([7u8; 32]);
        let dek = RecordCipher::generate().unwrap();
        let wrapped = master.wrap_key("Patient/a", &dek).unwrap();
        assert!(
            !wrapped.windows(32).any(|w| w == dek.key),
            "never stored in clear"
        );
        let unwrapped = master.unwrap_key("Patient/a", &wrapped).unwrap();
        assert_eq!(unwrapped.key, dek.key);
        let sealed = dek.seal("Observation/o/1", b"secret").unwrap();
        assert_eq!(
            unwrapped.open("Observation/o/1", &sealed).unwrap(),
            b"secret"
        );
        // Bound to her: another patient's row, or another master key, does not unwrap it.
        assert!(master.unwrap_key("Patient/b", &wrapped).is_err());
        assert!(RecordCipher::new([8u8; 32])
            .unwrap_key("Patient/a", &wrapped)
            .is_err());
        // The master key opens nothing the data key sealed.
        assert!(master.open("Observation/o/1", &sealed).is_err());
        assert_ne!(RecordCipher::generate().unwrap().key, dek.key);
        assert_eq!(format!("{dek:?}"), "RecordCipher(***)");
    }

    #[test]
    fn macs_depend_on_key_purpose_and_message() {
        let a = RecordCipher::new([7u8; 32]);
        let m = a.mac("erase", b"x").unwrap();
        assert_eq!(m.len(), 32);
        assert!(same_mac(&m, &a.mac("erase", b"x").unwrap()));
        assert!(!same_mac(&m, &a.mac("erase", b"y").unwrap()));
        assert!(!same_mac(&m, &a.mac("other", b"x").unwrap()));
        assert!(!same_mac(
            &m,
            &RecordCipher::new([8u8; 32]).mac("erase", b"x").unwrap()
        ));
        assert!(!same_mac(&m, &m[..16]));
    }

    #[test]
    fn sealed_by_codes_round_trip() {
        for s in [SealedBy::Master, SealedBy::PatientKey] {
            assert_eq!(SealedBy::from_code(s.code()).unwrap(), s);
        }
        assert!(SealedBy::from_code(7).is_err());
    }

    #[test]
    fn nonces_differ() {
        let cipher = RecordCipher::new([7u8; 32]);
        assert_ne!(
            cipher.seal("x", b"same").unwrap(),
            cipher.seal("x", b"same").unwrap()
        );
    }

    #[test]
    fn hex_keys_are_checked() {
        assert!(RecordCipher::from_hex(&"ab".repeat(32)).is_ok());
        assert!(RecordCipher::from_hex("abcd").is_err());
        assert!(RecordCipher::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir =
            std::env::temp_dir().join(format!("records-key-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join("records.key");
        let path = path.to_string_lossy().to_string();
        let first = RecordCipher::from_file(&path).unwrap();
        let second = RecordCipher::from_file(&path).unwrap();
        assert_eq!(first.key, second.key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
