//! Argon2id hashing of passwords and client secrets (default parameters: 19 MiB, 2 passes).
//! Hashing takes tens of milliseconds of CPU, so it runs on the blocking thread pool, never on
//! the async workers.

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("hashing failed: {0}")]
    Hash(String),
    #[error("the hashing task failed: {0}")]
    Task(String),
}

fn hash_now(secret: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut rand::thread_rng());
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Hash(e.to_string()))
}

fn verify_now(secret: &str, phc: &str) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(phc).map_err(|e| HashError::Hash(e.to_string()))?;
    Ok(Argon2::default()
        .verify_password(secret.as_bytes(), &parsed)
        .is_ok())
}

/// The PHC string of `secret` with a fresh salt.
pub async fn hash(secret: String) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || hash_now(&secret))
        .await
        .map_err(|e| HashError::Task(e.to_string()))?
}

/// Whether `secret` matches the PHC string.
pub async fn verify(secret: String, phc: String) -> Result<bool, HashError> {
    tokio::task::spawn_blocking(move || verify_now(&secret, &phc))
        .await
        .map_err(|e| HashError::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash_now("correct horse").unwrap();
        let b = hash_now("correct horse").unwrap();
        assert_ne!(a, b, "salts differ");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_now("correct horse", &a).unwrap());
        assert!(!verify_now("wrong horse", &a).unwrap());
        assert!(verify_now("x", "not a hash").is_err());
    }
}
