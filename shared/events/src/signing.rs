//! Signed stream messages: a message that changes who may do what (a consent change, a
//! suspension, a reinstatement, a token revocation, an alert) is obeyed only when the service
//! that owns that decision signed it. Anyone who can reach Redis can XADD; nobody without the
//! producer's private key can make a consumer act on it.
//!
//! - Each producer has an Ed25519 key ([`StreamSigner`], a PEM file: `STREAM_SIGNING_KEY_FILE`,
//!   default `var/keys/<service>-stream.pem`, created 0600 when missing, its public key written
//!   beside it as `<service>-stream.pub`). The outbox relay signs every message it publishes.
//! - A message carries, beside `id` and `event`, the fields `producer` (the service's name),
//!   `kid` (the first 8 bytes of SHA-256 of the raw public key, hex) and `sig` (base64 of the
//!   64-byte signature over [`signed_bytes`]: a context string, the stream key, the event id
//!   and the exact payload bytes, each length-prefixed, so no field can be moved into another
//!   or a message replayed on another stream or deployment prefix).
//! - Consumers verify with a [`Keyring`] of trusted public keys (`STREAM_TRUSTED_KEYS_DIR`,
//!   default `var/keys`, files `<producer>-stream.pub`, and `STREAM_KEY_<PRODUCER>` variables)
//!   and an [`Authority`] per stream naming the producers it may come from (`consent` from
//!   consent, `identity` from identity, `alerts` from anomaly, `relationships` from records,
//!   `access` from records, consent, identity or anomaly). The `access` stream is verified
//!   too: it is what the ledger records and what moves the anomaly model, whose alerts suspend
//!   people, so a forged burst must not reach either.
//!
//! Signing happens in the relay, not at enqueue: the outbox table belongs to the producer and is
//! as trusted as the rest of its database (whoever can write it can change the decisions it
//! records); what needs proof is the hop through Redis, which other services and operators share.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, OnceLock, RwLock},
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use openssl::{
    pkey::{Id, PKey, Private, Public},
    sha::sha256,
};

/// The field naming the producer (a service name).
pub const PRODUCER_FIELD: &str = "producer";
/// The field naming the signing key (see [`key_id`]).
pub const KEY_ID_FIELD: &str = "kid";
/// The field holding the signature (base64, 64 bytes).
pub const SIGNATURE_FIELD: &str = "sig";

/// Domain separation: these signatures verify nothing but Custodian stream messages.
const CONTEXT: &[u8] = b"custodian stream message v1";
/// An unknown key id re-reads the trusted-keys directory at most this often, so a flood of
/// forged key ids costs no more than one directory scan a second.
const RESCAN_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("stream signing key {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("stream key: {0}")]
    Key(String),
    #[error("{0:?} is not a producer name (1-32 of a-z, 0-9, -)")]
    Producer(String),
}

impl From<SigningError> for crate::EventError {
    fn from(e: SigningError) -> Self {
        crate::EventError::Signing(e.to_string())
    }
}

/// A key that cannot be read or created is a configuration error at start.
impl From<SigningError> for custodian_telemetry::ConfigError {
    fn from(e: SigningError) -> Self {
        custodian_telemetry::ConfigError::Invalid {
            name: "STREAM_SIGNING_KEY_FILE".into(),
            reason: e.to_string(),
        }
    }
}

fn crypto(e: openssl::error::ErrorStack) -> SigningError {
    SigningError::Key(e.to_string())
}

/// A producer's name: a service name, `a-z 0-9 -`, at most 32 characters.
fn valid_producer(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// What a signature covers: the context, the stream key (with its prefix), the event id and the
/// payload exactly as XADDed, each preceded by its length as a big-endian u64.
pub fn signed_bytes(stream: &str, id: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CONTEXT.len() + stream.len() + id.len() + payload.len() + 32);
    for part in [CONTEXT, stream.as_bytes(), id.as_bytes(), payload] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// A key's id: the first 8 bytes of SHA-256 of its 32 raw public bytes, as hex.
pub fn key_id(public_raw: &[u8]) -> String {
    hex::encode(&sha256(public_raw)[..8])
}

/// The public key file beside a private key file: `x-stream.pem` -> `x-stream.pub`.
pub fn public_key_path(private: &Path) -> PathBuf {
    private.with_extension("pub")
}

/// A producer's signing key. The key file is OpenSSL's (PKCS#8 PEM); the signatures are
/// computed by `ed25519-dalek`, which signs and verifies the same RFC 8032 signatures faster
/// (every access event is signed once and verified twice).
pub struct StreamSigner {
    producer: String,
    kid: String,
    key: PKey<Private>,
    signing: SigningKey,
    public_raw: Vec<u8>,
}

impl std::fmt::Debug for StreamSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSigner")
            .field("producer", &self.producer)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl StreamSigner {
    fn from_key(producer: &str, key: PKey<Private>) -> Result<Self, SigningError> {
        if !valid_producer(producer) {
            return Err(SigningError::Producer(producer.to_string()));
        }
        if key.id() != Id::ED25519 {
            return Err(SigningError::Key("not an Ed25519 key".into()));
        }
        let public_raw = key.raw_public_key().map_err(crypto)?;
        let seed: [u8; 32] = key
            .raw_private_key()
            .map_err(crypto)?
            .try_into()
            .map_err(|_| SigningError::Key("an Ed25519 private key is 32 bytes".into()))?;
        let signing = SigningKey::from_bytes(&seed);
        if signing.verifying_key().as_bytes().as_slice() != public_raw.as_slice() {
            return Err(SigningError::Key(
                "the private key does not match its public key".into(),
            ));
        }
        Ok(Self {
            producer: producer.to_string(),
            kid: key_id(&public_raw),
            key,
            signing,
            public_raw,
        })
    }

    /// A new random key (not stored anywhere).
    pub fn generate(producer: &str) -> Result<Self, SigningError> {
        Self::from_key(producer, PKey::generate_ed25519().map_err(crypto)?)
    }

    /// A key from its PKCS#8 PEM.
    pub fn from_private_pem(producer: &str, pem: &[u8]) -> Result<Self, SigningError> {
        Self::from_key(producer, PKey::private_key_from_pem(pem).map_err(crypto)?)
    }

    /// Reads the key at `path`, or creates it (mode 0600, directory 0700 when created) when the
    /// file does not exist. Writes the public key beside it ([`public_key_path`]) when missing,
    /// so consumers on this machine find it.
    pub fn load_or_create(producer: &str, path: &Path) -> Result<Self, SigningError> {
        let file_error = |reason: String| SigningError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        let signer = match std::fs::read(path) {
            Ok(pem) => {
                Self::from_private_pem(producer, &pem).map_err(|e| file_error(e.to_string()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let signer = Self::generate(producer)?;
                let pem = signer.key.private_key_to_pem_pkcs8().map_err(crypto)?;
                match write_new(path, &pem, 0o600) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), producer, kid = %signer.kid, "stream signing key created");
                        signer
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let pem = std::fs::read(path).map_err(|e| file_error(e.to_string()))?;
                        Self::from_private_pem(producer, &pem)
                            .map_err(|e| file_error(e.to_string()))?
                    }
                    Err(e) => return Err(file_error(e.to_string())),
                }
            }
            Err(e) => return Err(file_error(e.to_string())),
        };
        let public = public_key_path(path);
        if !public.exists() {
            let pem = signer.public_key_pem()?;
            match write_new(&public, &pem, 0o644) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    tracing::warn!(path = %public.display(), error = %e, "public stream key not written")
                }
            }
        }
        Ok(signer)
    }

    /// The path `STREAM_SIGNING_KEY_FILE` names (default `var/keys/<producer>-stream.pem`).
    pub fn path_from_env(producer: &str) -> PathBuf {
        PathBuf::from(custodian_telemetry::Env.string(
            "STREAM_SIGNING_KEY_FILE",
            &format!("var/keys/{producer}-stream.pem"),
        ))
    }

    /// The service's key from `STREAM_SIGNING_KEY_FILE` (default `var/keys/<producer>-stream.pem`),
    /// created when missing. The process trusts its own key ([`Keyring::shared`]).
    pub fn from_env(producer: &str) -> Result<Self, SigningError> {
        Self::load_trusted(producer, &Self::path_from_env(producer))
    }

    /// [`StreamSigner::load_or_create`], and the process's keyring trusts the key (a service
    /// reads its own stream too: identity tails the identity stream).
    pub fn load_trusted(producer: &str, path: &Path) -> Result<Self, SigningError> {
        let signer = Self::load_or_create(producer, path)?;
        Keyring::shared().trust_signer(&signer);
        Ok(signer)
    }

    /// A fresh key the shared keyring of this process trusts: for tests that publish as a
    /// producer would.
    pub fn ephemeral(producer: &str) -> Result<Self, SigningError> {
        let signer = Self::generate(producer)?;
        Keyring::shared().trust_signer(&signer);
        Ok(signer)
    }

    pub fn producer(&self) -> &str {
        &self.producer
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The 32 raw bytes of the public key.
    pub fn public_key_raw(&self) -> &[u8] {
        &self.public_raw
    }

    /// The public key as SubjectPublicKeyInfo PEM (what `<producer>-stream.pub` holds).
    pub fn public_key_pem(&self) -> Result<Vec<u8>, SigningError> {
        self.key.public_key_to_pem().map_err(crypto)
    }

    /// The base64 signature of one message.
    pub fn sign(&self, stream: &str, id: &str, payload: &[u8]) -> Result<String, SigningError> {
        let signature = self.signing.sign(&signed_bytes(stream, id, payload));
        Ok(STANDARD.encode(signature.to_bytes()))
    }

    /// Every field of a signed message (`id`, `event`, `producer`, `kid`, `sig`), for XADD.
    pub fn fields(
        &self,
        stream: &str,
        id: &str,
        payload: &str,
    ) -> Result<Vec<(&'static str, String)>, SigningError> {
        Ok(vec![
            ("id", id.to_string()),
            ("event", payload.to_string()),
            (PRODUCER_FIELD, self.producer.clone()),
            (KEY_ID_FIELD, self.kid.clone()),
            (SIGNATURE_FIELD, self.sign(stream, id, payload.as_bytes())?),
        ])
    }
}

/// The fields of a message on `stream` as its rightful producer's relay would write them,
/// signed with a key generated once per producer and process and trusted by
/// [`Keyring::shared`] (unsigned on streams that need no signature). For tests that play the
/// producer: `redis.xadd(&stream, "*", &signing::test_fields(&stream, &id, &payload))`.
pub fn test_fields(stream: &str, id: &str, payload: &str) -> Vec<(&'static str, String)> {
    static SIGNERS: OnceLock<std::sync::Mutex<HashMap<&'static str, Arc<StreamSigner>>>> =
        OnceLock::new();
    let unsigned = || vec![("id", id.to_string()), ("event", payload.to_string())];
    let Authority::SignedBy(&[producer, ..]) = Authority::of_stream(stream) else {
        return unsigned();
    };
    let signer = {
        let Ok(mut signers) = SIGNERS.get_or_init(Default::default).lock() else {
            return unsigned();
        };
        match signers.get(producer) {
            Some(signer) => signer.clone(),
            None => match StreamSigner::ephemeral(producer) {
                Ok(signer) => {
                    let signer = Arc::new(signer);
                    signers.insert(producer, signer.clone());
                    signer
                }
                Err(_) => return unsigned(),
            },
        }
    };
    signer
        .fields(stream, id, payload)
        .unwrap_or_else(|_| unsigned())
}

/// Creates `path` (failing if it exists) with `mode`, writing through a temporary file and a
/// hard link so no reader ever sees a half-written file.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            builder.create(dir)?;
        }
    }
    let temp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&temp, path));
    let _ = std::fs::remove_file(&temp);
    linked
}

/// Which producers a stream's messages must be signed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// Not verified. No stream is, today.
    Unsigned,
    /// Only messages signed by a trusted key of one of these producers are handled.
    SignedBy(&'static [&'static str]),
}

impl Authority {
    /// The rule for a stream key (`<prefix>:<name>`): `consent` from consent, `identity` from
    /// identity, `alerts` from anomaly, `relationships` from records, `access` from the services
    /// that decide accesses. Any other stream is an authority no producer is trusted for, so nothing on it is handled until a rule names one.
    pub fn of_stream(stream: &str) -> Self {
        match stream_name(stream) {
            // Every producer of access events: what reaches the ledger and moves the anomaly
            // model (whose alerts suspend people) must come from a service that decided it.
            "access" => Authority::SignedBy(&["records", "consent", "identity", "anomaly"]),
            "consent" => Authority::SignedBy(&["consent"]),
            "identity" => Authority::SignedBy(&["identity"]),
            "alerts" => Authority::SignedBy(&["anomaly"]),
            // Memberships decide who a consent naming a CareTeam or Group reaches.
            "relationships" => Authority::SignedBy(&["records"]),
            _ => Authority::SignedBy(&[]),
        }
    }
}

/// The stream's name without the deployment prefix.
fn stream_name(stream: &str) -> &str {
    stream.rsplit(':').next().unwrap_or(stream)
}

/// The stream as a metric label: one of a fixed set.
pub fn stream_label(stream: &str) -> &'static str {
    match stream_name(stream) {
        "access" => "access",
        "consent" => "consent",
        "identity" => "identity",
        "alerts" => "alerts",
        "relationships" => "relationships",
        _ => "other",
    }
}

/// Why a message was refused unhandled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No signature fields at all.
    Unsigned,
    /// Some signature fields, not all, or a signature that is not 64 bytes of base64.
    Malformed,
    /// Signed by a key nobody trusts (yet).
    UnknownKey,
    /// A key trusted for another producer, or a producer not trusted for this stream.
    WrongProducer,
    /// The signature does not verify: the message was altered or forged.
    BadSignature,
}

impl Rejection {
    pub const ALL: [Rejection; 5] = [
        Rejection::Unsigned,
        Rejection::Malformed,
        Rejection::UnknownKey,
        Rejection::WrongProducer,
        Rejection::BadSignature,
    ];

    /// The metric label and log field.
    pub fn label(self) -> &'static str {
        match self {
            Rejection::Unsigned => "unsigned",
            Rejection::Malformed => "malformed",
            Rejection::UnknownKey => "unknown_key",
            Rejection::WrongProducer => "wrong_producer",
            Rejection::BadSignature => "bad_signature",
        }
    }
}

/// The fields of one stream message that verification reads.
#[derive(Debug, Default, Clone, Copy)]
pub struct Message<'a> {
    pub id: Option<&'a str>,
    pub payload: &'a str,
    pub producer: Option<&'a str>,
    pub kid: Option<&'a str>,
    pub sig: Option<&'a str>,
}

struct Trusted {
    producer: String,
    key: VerifyingKey,
}

#[derive(Default)]
struct Inner {
    keys: HashMap<String, Trusted>,
    dir: Option<PathBuf>,
    last_scan: Option<Instant>,
}

/// The public keys a consumer trusts, by key id, each for one producer. Keys are only added
/// (a rotated-out key stays trusted until the process restarts); the directory is re-read
/// when an unknown key id appears, so producers started after their consumers are found.
#[derive(Clone, Default)]
pub struct Keyring {
    inner: Arc<RwLock<Inner>>,
}

impl Keyring {
    /// An empty keyring; with `dir`, it reads `<producer>-stream.pub` files there.
    pub fn new(dir: Option<PathBuf>) -> Self {
        let keyring = Self::default();
        if let Ok(mut inner) = keyring.inner.write() {
            inner.dir = dir;
        }
        keyring.scan();
        keyring
    }

    /// `STREAM_TRUSTED_KEYS_DIR` (default `var/keys`) and every `STREAM_KEY_<PRODUCER>`
    /// variable (PEM, or base64 of the 32 raw bytes; `STREAM_KEY_IDENTITY` trusts a key of
    /// `identity`, underscores become dashes).
    pub fn from_env() -> Self {
        let dir = custodian_telemetry::Env.string("STREAM_TRUSTED_KEYS_DIR", "var/keys");
        let keyring = Self::new(Some(PathBuf::from(dir)));
        for (name, value) in std::env::vars() {
            let Some(producer) = name.strip_prefix("STREAM_KEY_") else {
                continue;
            };
            let producer = producer.to_ascii_lowercase().replace('_', "-");
            if let Err(e) = keyring.trust_encoded(&producer, &value) {
                tracing::error!(variable = %name, error = %e, "stream key variable ignored");
            }
        }
        keyring
    }

    /// The process's keyring, read from the environment at first use. Consumers verify with
    /// it unless given another; a service's own signer adds its key to it.
    pub fn shared() -> &'static Keyring {
        static SHARED: OnceLock<Keyring> = OnceLock::new();
        SHARED.get_or_init(Keyring::from_env)
    }

    /// Trusts `public` for `producer`; returns its key id.
    pub fn trust(&self, producer: &str, public: PKey<Public>) -> Result<String, SigningError> {
        if !valid_producer(producer) {
            return Err(SigningError::Producer(producer.to_string()));
        }
        if public.id() != Id::ED25519 {
            return Err(SigningError::Key("not an Ed25519 key".into()));
        }
        let raw: [u8; 32] = public
            .raw_public_key()
            .map_err(crypto)?
            .try_into()
            .map_err(|_| SigningError::Key("an Ed25519 public key is 32 bytes".into()))?;
        let kid = key_id(&raw);
        let public = VerifyingKey::from_bytes(&raw)
            .map_err(|e| SigningError::Key(format!("not an Ed25519 public key: {e}")))?;
        if let Ok(mut inner) = self.inner.write() {
            inner.keys.insert(
                kid.clone(),
                Trusted {
                    producer: producer.to_string(),
                    key: public,
                },
            );
        }
        Ok(kid)
    }

    /// Trusts a key given as PEM or as base64 of its 32 raw bytes.
    pub fn trust_encoded(&self, producer: &str, text: &str) -> Result<String, SigningError> {
        let text = text.trim();
        let key = if text.starts_with("-----BEGIN") {
            PKey::public_key_from_pem(text.as_bytes()).map_err(crypto)?
        } else {
            let raw = STANDARD
                .decode(text)
                .map_err(|e| SigningError::Key(format!("not PEM or base64: {e}")))?;
            PKey::public_key_from_raw_bytes(&raw, Id::ED25519).map_err(crypto)?
        };
        self.trust(producer, key)
    }

    /// Trusts a signer's public key (a process trusts its own).
    pub fn trust_signer(&self, signer: &StreamSigner) {
        match PKey::public_key_from_raw_bytes(&signer.public_raw, Id::ED25519) {
            Ok(key) => {
                if let Err(e) = self.trust(&signer.producer, key) {
                    tracing::error!(error = %e, "own stream key not trusted");
                }
            }
            Err(e) => tracing::error!(error = %e, "own stream key not trusted"),
        }
    }

    /// Reads `<producer>-stream.pub` files of the directory (at most once a second).
    fn scan(&self) {
        let dir = {
            let Ok(mut inner) = self.inner.write() else {
                return;
            };
            if inner
                .last_scan
                .is_some_and(|t| t.elapsed() < RESCAN_INTERVAL)
            {
                return;
            }
            inner.last_scan = Some(Instant::now());
            match inner.dir.clone() {
                Some(dir) => dir,
                None => return,
            }
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(producer) = name.to_str().and_then(|n| n.strip_suffix("-stream.pub")) else {
                continue;
            };
            let loaded = std::fs::read_to_string(entry.path())
                .map_err(|e| SigningError::Key(e.to_string()))
                .and_then(|pem| self.trust_encoded(producer, &pem));
            if let Err(e) = loaded {
                tracing::warn!(path = %entry.path().display(), error = %e, "trusted stream key not loaded");
            }
        }
    }

    fn lookup(&self, kid: &str) -> Option<(String, VerifyingKey)> {
        let found = |keyring: &Keyring| {
            keyring
                .inner
                .read()
                .ok()
                .and_then(|inner| inner.keys.get(kid).map(|t| (t.producer.clone(), t.key)))
        };
        found(self).or_else(|| {
            self.scan();
            found(self)
        })
    }

    /// Whether `message`, read from `stream`, may be handled under `authority`.
    pub fn verify(
        &self,
        authority: Authority,
        stream: &str,
        message: &Message<'_>,
    ) -> Result<(), Rejection> {
        let allowed = match authority {
            Authority::Unsigned => return Ok(()),
            Authority::SignedBy(producers) => producers,
        };
        let (id, producer, kid, sig) =
            match (message.id, message.producer, message.kid, message.sig) {
                (Some(id), Some(producer), Some(kid), Some(sig)) => (id, producer, kid, sig),
                (_, None, None, None) => return Err(Rejection::Unsigned),
                _ => return Err(Rejection::Malformed),
            };
        if !allowed.contains(&producer) {
            return Err(Rejection::WrongProducer);
        }
        let signature: [u8; 64] = STANDARD
            .decode(sig)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or(Rejection::Malformed)?;
        let (owner, key) = self.lookup(kid).ok_or(Rejection::UnknownKey)?;
        if owner != producer {
            return Err(Rejection::WrongProducer);
        }
        let signed = signed_bytes(stream, id, message.payload.as_bytes());
        // Strict: also refuses the malleable encodings and weak keys RFC 8032 leaves open.
        let valid = key
            .verify_strict(&signed, &Signature::from_bytes(&signature))
            .is_ok();
        if valid {
            Ok(())
        } else {
            Err(Rejection::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "p:consent";

    fn message<'a>(fields: &'a [(&'static str, String)]) -> Message<'a> {
        let get = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        Message {
            id: get("id"),
            payload: get("event").unwrap_or_default(),
            producer: get(PRODUCER_FIELD),
            kid: get(KEY_ID_FIELD),
            sig: get(SIGNATURE_FIELD),
        }
    }

    fn keyring_with(signer: &StreamSigner) -> Keyring {
        let keyring = Keyring::new(None);
        keyring.trust_signer(signer);
        keyring
    }

    #[test]
    fn a_signed_message_verifies_and_any_change_breaks_it() {
        let signer = StreamSigner::generate("consent").unwrap();
        let keyring = keyring_with(&signer);
        let authority = Authority::of_stream(STREAM);
        let fields = signer.fields(STREAM, "e1", r#"{"a":1}"#).unwrap();
        assert_eq!(keyring.verify(authority, STREAM, &message(&fields)), Ok(()));

        let mut altered = message(&fields);
        altered.payload = r#"{"a":2}"#;
        assert_eq!(
            keyring.verify(authority, STREAM, &altered),
            Err(Rejection::BadSignature)
        );
        let mut other_id = message(&fields);
        other_id.id = Some("e2");
        assert_eq!(
            keyring.verify(authority, STREAM, &other_id),
            Err(Rejection::BadSignature)
        );
        // The same message on another deployment's stream.
        assert_eq!(
            keyring.verify(authority, "q:consent", &message(&fields)),
            Err(Rejection::BadSignature)
        );
    }

    /// The signatures are plain RFC 8032 Ed25519 over [`signed_bytes`]: what OpenSSL signs with
    /// the same key file verifies here, and what is signed here verifies with OpenSSL (an
    /// operator's own checker, or messages signed before the switch of implementation).
    #[test]
    fn signatures_are_the_same_as_openssls() {
        use openssl::sign::{Signer as OpensslSigner, Verifier as OpensslVerifier};
        let pem = PKey::generate_ed25519()
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap();
        let signer = StreamSigner::from_private_pem("consent", &pem).unwrap();
        let keyring = keyring_with(&signer);
        let authority = Authority::of_stream(STREAM);
        let openssl_key = PKey::private_key_from_pem(&pem).unwrap();
        let payload = r#"{"a":1}"#;
        let signed = signed_bytes(STREAM, "e1", payload.as_bytes());

        let by_openssl = OpensslSigner::new_without_digest(&openssl_key)
            .unwrap()
            .sign_oneshot_to_vec(&signed)
            .unwrap();
        let ours = signer.sign(STREAM, "e1", payload.as_bytes()).unwrap();
        assert_eq!(
            STANDARD.encode(&by_openssl),
            ours,
            "Ed25519 is deterministic"
        );

        let mut fields = signer.fields(STREAM, "e1", payload).unwrap();
        for (name, value) in &mut fields {
            if *name == SIGNATURE_FIELD {
                *value = STANDARD.encode(&by_openssl);
            }
        }
        assert_eq!(keyring.verify(authority, STREAM, &message(&fields)), Ok(()));

        let public = PKey::public_key_from_pem(&signer.public_key_pem().unwrap()).unwrap();
        let ours = STANDARD.decode(ours).unwrap();
        assert!(OpensslVerifier::new_without_digest(&public)
            .unwrap()
            .verify_oneshot(&ours, &signed)
            .unwrap());
    }

    #[test]
    fn unsigned_unknown_and_foreign_messages_are_refused() {
        let consent = StreamSigner::generate("consent").unwrap();
        let anomaly = StreamSigner::generate("anomaly").unwrap();
        let keyring = keyring_with(&consent);
        keyring.trust_signer(&anomaly);
        let authority = Authority::of_stream(STREAM);

        let unsigned = Message {
            id: Some("e1"),
            payload: "{}",
            ..Message::default()
        };
        assert_eq!(
            keyring.verify(authority, STREAM, &unsigned),
            Err(Rejection::Unsigned)
        );
        let mut partial = unsigned;
        partial.sig = Some("AAAA");
        assert_eq!(
            keyring.verify(authority, STREAM, &partial),
            Err(Rejection::Malformed)
        );

        // A trusted producer, but not for this stream.
        let fields = anomaly.fields(STREAM, "e1", "{}").unwrap();
        assert_eq!(
            keyring.verify(authority, STREAM, &message(&fields)),
            Err(Rejection::WrongProducer)
        );
        // Anomaly's key claiming to be consent.
        let mut claimed = message(&fields);
        claimed.producer = Some("consent");
        assert_eq!(
            keyring.verify(authority, STREAM, &claimed),
            Err(Rejection::WrongProducer)
        );
        // A key nobody trusts.
        let stranger = StreamSigner::generate("consent").unwrap();
        let fields = stranger.fields(STREAM, "e1", "{}").unwrap();
        assert_eq!(
            keyring.verify(authority, STREAM, &message(&fields)),
            Err(Rejection::UnknownKey)
        );
    }

    #[test]
    fn authorities_by_stream() {
        assert_eq!(
            Authority::of_stream("x:access"),
            Authority::SignedBy(&["records", "consent", "identity", "anomaly"])
        );
        assert_eq!(
            Authority::of_stream("custodian:alerts"),
            Authority::SignedBy(&["anomaly"])
        );
        assert_eq!(
            Authority::of_stream("custodian:identity"),
            Authority::SignedBy(&["identity"])
        );
        assert_eq!(
            Authority::of_stream("custodian:relationships"),
            Authority::SignedBy(&["records"])
        );
        assert_eq!(
            Authority::of_stream("custodian:new"),
            Authority::SignedBy(&[])
        );
        assert_eq!(stream_label("t-1:consent"), "consent");
        assert_eq!(stream_label("t-1:whatever"), "other");
        let anything = Message {
            id: Some("e"),
            payload: "{}",
            ..Message::default()
        };
        assert_eq!(
            Keyring::new(None).verify(Authority::Unsigned, "x:access", &anything),
            Ok(())
        );
    }

    #[test]
    fn key_files_are_created_private_reused_and_found_by_consumers() {
        let dir = std::env::temp_dir().join(format!("custodian-keys-{}", uuid::Uuid::new_v4()));
        let path = dir.join("consent-stream.pem");
        let first = StreamSigner::load_or_create("consent", &path).unwrap();
        let again = StreamSigner::load_or_create("consent", &path).unwrap();
        assert_eq!(first.kid(), again.kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(public_key_path(&path).exists());

        let keyring = Keyring::new(Some(dir.clone()));
        let fields = first.fields(STREAM, "e1", "{}").unwrap();
        assert_eq!(
            keyring.verify(Authority::of_stream(STREAM), STREAM, &message(&fields)),
            Ok(())
        );
        // The file names the producer: the same key is not trusted for identity.
        let fields = StreamSigner::from_private_pem("identity", &std::fs::read(&path).unwrap())
            .unwrap()
            .fields("p:identity", "e1", "{}")
            .unwrap();
        assert_eq!(
            keyring.verify(
                Authority::of_stream("p:identity"),
                "p:identity",
                &message(&fields)
            ),
            Err(Rejection::WrongProducer)
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn test_fields_are_signed_by_the_streams_producer() {
        let stream = "t:alerts";
        let fields = test_fields(stream, "e1", "{}");
        assert_eq!(
            message(&fields).producer,
            Some("anomaly"),
            "alerts come from anomaly"
        );
        assert_eq!(
            Keyring::shared().verify(Authority::of_stream(stream), stream, &message(&fields)),
            Ok(())
        );
        // Access events are signed too (by records, the first of their producers).
        let access = test_fields("t:access", "e1", "{}");
        assert_eq!(message(&access).producer, Some("records"));
    }

    #[test]
    fn raw_base64_keys_are_accepted() {
        let signer = StreamSigner::generate("identity").unwrap();
        let keyring = Keyring::new(None);
        let kid = keyring
            .trust_encoded("identity", &STANDARD.encode(signer.public_key_raw()))
            .unwrap();
        assert_eq!(kid, signer.kid());
        assert!(keyring.trust_encoded("identity", "not a key").is_err());
        assert!(keyring
            .trust_encoded("Bad Name", &STANDARD.encode([0u8; 32]))
            .is_err());
    }
}
