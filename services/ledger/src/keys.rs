//! The log's signing keys and their rotation.
//!
//! With `LEDGER_SIGNING_KEY_FILE` set (a Kubernetes Secret mounted as a file), the file holds
//! one or more note private keys, one per line (`PRIVATE+KEY+<origin>+<hex id>+<base64>`): the
//! first signs, the others are retired and only listed, so checkpoints they signed stay
//! verifiable. Without it, the key is generated once and kept in the database (developer
//! machines need nothing). Every verifier key that ever signed is recorded in `signing_keys`,
//! so a key dropped from the file is still listed by `GET /ledger/key`.

use std::path::Path;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{
    schema::{signing_key, signing_keys},
    signing::{self, NoteSigner, SigningError},
    storage,
};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key file {path}: {reason}")]
    File { path: String, reason: String },
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
}

/// The signer and the keys it replaced.
#[derive(Debug)]
pub struct SigningKeys {
    pub signer: NoteSigner,
    /// Verifier keys of the file's other (retired) keys.
    pub retired: Vec<String>,
}

/// Reads a key file: blank lines and `#` comments are skipped; every key must be named after
/// the log's origin (a key of another name would sign checkpoints no one can attribute).
pub fn read_key_file(path: &Path, origin: &str) -> Result<SigningKeys, KeyError> {
    let file_error = |reason: String| KeyError::File {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let mut signers = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = signing::parse_private_key(line)
            .map_err(|e| file_error(format!("line {}: {e}", n + 1)))?;
        if parsed.name != origin {
            return Err(file_error(format!(
                "line {}: the key is named {:?}, not the log's origin {origin:?}",
                n + 1,
                parsed.name
            )));
        }
        signers.push(
            NoteSigner::from_private_key(&parsed)
                .map_err(|e| file_error(format!("line {}: {e}", n + 1)))?,
        );
    }
    let mut signers = signers.into_iter();
    let signer = signers
        .next()
        .ok_or_else(|| file_error("holds no key".into()))?;
    Ok(SigningKeys {
        signer,
        retired: signers.map(|s| s.verifier_key()).collect(),
    })
}

/// The signing keys at start: from the file when given, else the database's generated key.
/// Records the signer's verifier key (and the database key's, which signed before any file
/// was used) as having signed.
pub async fn load(
    conn: &mut AsyncPgConnection,
    origin: &str,
    key_file: Option<&Path>,
) -> Result<SigningKeys, KeyError> {
    let keys = match key_file {
        Some(path) => read_key_file(path, origin)?,
        None => {
            let private_key = storage::load_or_create_key(conn, || {
                let private = signing::generate_private_key()?;
                let public = NoteSigner::from_raw(origin, &private)?
                    .public_key()
                    .to_vec();
                Ok::<_, SigningError>((private, public))
            })
            .await
            .map_err(|e| match e {
                storage::LoadKeyError::Database(e) => KeyError::Database(e),
                storage::LoadKeyError::Generate(e) => KeyError::Signing(e),
            })?;
            SigningKeys {
                signer: NoteSigner::from_raw(origin, &private_key)?,
                retired: Vec::new(),
            }
        }
    };
    // The generated key signed everything before the key file was introduced.
    let generated: Option<Vec<u8>> = signing_key::table
        .select(signing_key::private_key)
        .first(conn)
        .await
        .optional()?;
    if let Some(private_key) = generated {
        record(
            conn,
            &NoteSigner::from_raw(origin, &private_key)?.verifier_key(),
        )
        .await?;
    }
    record(conn, &keys.signer.verifier_key()).await?;
    Ok(keys)
}

/// Records that a verifier key signs (idempotent).
pub async fn record(conn: &mut AsyncPgConnection, verifier_key: &str) -> QueryResult<()> {
    diesel::insert_into(signing_keys::table)
        .values(signing_keys::verifier_key.eq(verifier_key))
        .on_conflict(signing_keys::verifier_key)
        .do_nothing()
        .execute(conn)
        .await
        .map(|_| ())
}

/// Every verifier key that ever signed, oldest first, with when it was first used.
pub async fn recorded(conn: &mut AsyncPgConnection) -> QueryResult<Vec<(String, DateTime<Utc>)>> {
    signing_keys::table
        .order((
            signing_keys::first_used_at.asc(),
            signing_keys::verifier_key.asc(),
        ))
        .select((signing_keys::verifier_key, signing_keys::first_used_at))
        .load(conn)
        .await
}

/// What `GET /ledger/key` lists beside the current key: the file's retired keys and the
/// configured witnesses (the ones recorded in the database are read per request).
#[derive(Debug, Clone, Default)]
pub struct KeyDirectory {
    pub retired: Vec<String>,
    /// `(name, verifier key)` of each configured witness.
    pub witnesses: Vec<(String, String)>,
    pub witness_quorum: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(lines: &[String]) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("ledger-keys-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, lines.join("\n")).unwrap();
        path
    }

    fn line(name: &str) -> (String, String) {
        let s = NoteSigner::from_raw(name, &signing::generate_private_key().unwrap()).unwrap();
        (s.private_key_line().unwrap(), s.verifier_key())
    }

    #[test]
    fn the_first_key_signs_and_the_others_are_retired() {
        let (b, b_vkey) = line("log");
        let (a, a_vkey) = line("log");
        let path = write(&[b, "# retired".into(), String::new(), a]);
        let keys = read_key_file(&path, "log").unwrap();
        assert_eq!(keys.signer.verifier_key(), b_vkey);
        assert_eq!(keys.retired, vec![a_vkey]);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn bad_files_are_refused_without_echoing_keys() {
        let (other, _) = line("other-origin");
        let path = write(std::slice::from_ref(&other));
        let err = read_key_file(&path, "log").unwrap_err().to_string();
        assert!(err.contains("not the log's origin"), "{err}");
        std::fs::remove_file(path).unwrap();

        let (good, _) = line("log");
        let mangled = format!("{}A", good.trim_end_matches('='));
        let path = write(std::slice::from_ref(&mangled));
        let err = read_key_file(&path, "log").unwrap_err().to_string();
        assert!(!err.contains(&mangled[20..]), "the secret leaked: {err}");
        std::fs::remove_file(path).unwrap();

        let path = write(&["# nothing".into()]);
        assert!(read_key_file(&path, "log").is_err());
        std::fs::remove_file(path).unwrap();
        assert!(read_key_file(Path::new("/nonexistent/key"), "log").is_err());
    }
}
