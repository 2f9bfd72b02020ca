//! Argon2id hashing of passwords and client secrets, with OWASP's minimum parameters
//! (m = 19 MiB, t = 2, p = 1), and the [`Hasher`] that bounds how much of it runs at once.
//!
//! One hash takes 19 MiB and tens of milliseconds of a core. Unbounded, a flood of wrong
//! passwords starts one hash per request on the blocking pool (up to 512 threads per worker):
//! gigabytes of memory, every login slow. The [`Hasher`] runs at most `LOGIN_HASH_CONCURRENCY`
//! hashes at once on the blocking pool, lets at most `LOGIN_HASH_QUEUE` requests wait for one
//! (each at most `LOGIN_HASH_WAIT_MS`), and refuses the rest at once ([`HashError::Busy`], a 503
//! with `Retry-After`). Stored hashes whose parameters ask for more memory or time than these
//! bounds are refused rather than computed.
//!
//! The 19 MiB each hash works in is allocated once per permit and reused: allocating it per
//! hash on whichever blocking thread runs it leaves freed blocks in many malloc arenas (glibc
//! keeps them), and identity's memory grows by tens of megabytes per thread that ever hashed.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use argon2::{
    password_hash::{
        Output, ParamsString, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
    },
    Algorithm, Argon2, Block, Params, Version,
};
use tokio::sync::Semaphore;

/// Memory per hash in KiB (19 MiB, OWASP's minimum for Argon2id).
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Passes.
pub const ITERATIONS: u32 = 2;
/// Lanes.
pub const PARALLELISM: u32 = 1;
/// The most passes a stored hash may ask for.
const MAX_ITERATIONS: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("hashing failed: {0}")]
    Hash(String),
    #[error("the hashing task failed: {0}")]
    Task(String),
    /// Too many hashes running and waiting: try again later.
    #[error("too many logins at once")]
    Busy,
}

fn argon2() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|e| HashError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_now(secret: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut rand::thread_rng());
    argon2()?
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Hash(e.to_string()))
}

/// Refuses a stored hash that would take more memory, passes or lanes than ours.
fn check_bounds(parsed: &PasswordHash<'_>) -> Result<(), HashError> {
    let params = Params::try_from(parsed).map_err(|e| HashError::Hash(e.to_string()))?;
    if params.m_cost() > MEMORY_KIB
        || params.t_cost() > MAX_ITERATIONS
        || params.p_cost() > PARALLELISM
    {
        return Err(HashError::Hash(format!(
            "stored hash parameters m={} t={} p={} exceed the bounds",
            params.m_cost(),
            params.t_cost(),
            params.p_cost()
        )));
    }
    Ok(())
}

fn verify_now(secret: &str, phc: &str) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(phc).map_err(|e| HashError::Hash(e.to_string()))?;
    check_bounds(&parsed)?;
    Ok(argon2()?
        .verify_password(secret.as_bytes(), &parsed)
        .is_ok())
}

fn hash_error(e: impl std::fmt::Display) -> HashError {
    HashError::Hash(e.to_string())
}

/// Working memory for one hash at our parameters, reused from hash to hash.
type Memory = Vec<Block>;

fn new_memory() -> Memory {
    vec![Block::default(); MEMORY_KIB as usize]
}

/// [`verify_now`] computed in `memory` instead of a fresh allocation.
fn verify_in(secret: &str, phc: &str, memory: &mut [Block]) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(phc).map_err(hash_error)?;
    check_bounds(&parsed)?;
    let params = Params::try_from(&parsed).map_err(hash_error)?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(hash_error)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(hash_error)?
        .unwrap_or_default();
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(HashError::Hash(
            "the stored hash has no salt or output".into(),
        ));
    };
    let mut salt_buf = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buf).map_err(hash_error)?;
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = out
        .get_mut(..expected.len())
        .ok_or_else(|| HashError::Hash("the stored hash output is too long".into()))?;
    let blocks = memory
        .get_mut(..params.block_count())
        .ok_or_else(|| HashError::Hash("the stored hash needs more memory".into()))?;
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(secret.as_bytes(), salt, out, blocks)
        .map_err(hash_error)?;
    // `Output`'s equality is constant-time.
    Ok(Output::new(out).map_err(hash_error)? == expected)
}

/// [`hash_now`] computed in `memory`.
fn hash_in(secret: &str, memory: &mut [Block]) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut rand::thread_rng());
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(hash_error)?;
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).map_err(hash_error)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(secret.as_bytes(), salt_bytes, &mut out, memory)
        .map_err(hash_error)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(hash_error)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(hash_error)?),
    };
    Ok(phc.to_string())
}

/// The PHC string of `secret` with a fresh salt, on the blocking pool and outside any bound
/// (startup and tests; requests go through [`Hasher`]).
pub async fn hash(secret: String) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || hash_now(&secret))
        .await
        .map_err(|e| HashError::Task(e.to_string()))?
}

/// Whether `secret` matches the PHC string, on the blocking pool and outside any bound (startup
/// only; requests go through [`Hasher`]).
pub async fn verify(secret: String, phc: String) -> Result<bool, HashError> {
    tokio::task::spawn_blocking(move || verify_now(&secret, &phc))
        .await
        .map_err(|e| HashError::Task(e.to_string()))?
}

/// Whose secret a hash checks, for the share of the queue it may wait in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// An account or client that exists and is not locked out: failures against it are
    /// bounded by its lockout, so it may use the whole queue.
    Account,
    /// An unknown username or client id (a dummy hash, for equal timing): at most half the
    /// queue, so a flood of made-up names from many addresses cannot crowd out real users.
    Unknown,
}

/// Bounded Argon2 work: a semaphore of `concurrency` permits and a queue of at most `queue`
/// waiters (at most half of them for [`Lane::Unknown`]), each waiting at most `wait`.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    waiting_unknown: Arc<AtomicUsize>,
    queue: usize,
    wait: Duration,
    /// Working memory of hashes not running now; never more than `concurrency` exist.
    memory: Arc<std::sync::Mutex<Vec<Memory>>>,
}

/// A place in the queue, given back when dropped (also when the request is dropped).
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hasher {
    pub fn new(concurrency: usize, queue: usize, wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            waiting_unknown: Arc::new(AtomicUsize::new(0)),
            queue,
            wait,
            memory: Arc::new(std::sync::Mutex::new(Vec::new())),
        }
    }

    /// Requests waiting for a hash now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Runs `work` on the blocking pool once a permit is free. The permit moves into the
    /// blocking task, so a request dropped mid-hash (a client that hung up) still holds it
    /// until the hash is done: no more than `concurrency` hashes ever run.
    async fn run<T, F>(&self, lane: Lane, work: F) -> Result<T, HashError>
    where
        T: Send + 'static,
        F: FnOnce(&mut [Block]) -> Result<T, HashError> + Send + 'static,
    {
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let previous = self.waiting.fetch_add(1, Ordering::AcqRel);
                let place = Waiting(Arc::clone(&self.waiting));
                if previous >= self.queue {
                    return Err(HashError::Busy);
                }
                let unknown_place = match lane {
                    Lane::Account => None,
                    Lane::Unknown => {
                        let previous = self.waiting_unknown.fetch_add(1, Ordering::AcqRel);
                        let place = Waiting(Arc::clone(&self.waiting_unknown));
                        if previous >= self.queue / 2 {
                            return Err(HashError::Busy);
                        }
                        Some(place)
                    }
                };
                let acquired =
                    tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned())
                        .await;
                drop(unknown_place);
                drop(place);
                match acquired {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_)) | Err(_) => return Err(HashError::Busy),
                }
            }
        };
        let pool = Arc::clone(&self.memory);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // Holding a permit, one of at most `concurrency` memories is free or not yet made.
            let mut memory = pool
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .pop()
                .unwrap_or_else(new_memory);
            let result = work(&mut memory);
            pool.lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(memory);
            result
        })
        .await
        .map_err(|e| HashError::Task(e.to_string()))?
    }

    /// Whether `secret` matches the PHC string.
    pub async fn verify(&self, lane: Lane, secret: String, phc: String) -> Result<bool, HashError> {
        self.run(lane, move |memory| verify_in(&secret, &phc, memory))
            .await
    }

    /// The PHC string of `secret` with a fresh salt.
    pub async fn hash(&self, secret: String) -> Result<String, HashError> {
        self.run(Lane::Account, move |memory| hash_in(&secret, memory))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash_now("correct horse").unwrap();
        let b = hash_now("correct horse").unwrap();
        assert_ne!(a, b, "salts differ");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert!(verify_now("correct horse", &a).unwrap());
        assert!(!verify_now("wrong horse", &a).unwrap());
        assert!(verify_now("x", "not a hash").is_err());
    }

    #[test]
    fn reused_memory_hashes_and_verifies_like_the_library() {
        let mut memory = new_memory();
        let ours = hash_in("correct horse", &mut memory).unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        // The library verifies ours, and we verify the library's, in dirty memory.
        assert!(verify_now("correct horse", &ours).unwrap());
        let theirs = hash_now("correct horse").unwrap();
        assert!(verify_in("correct horse", &theirs, &mut memory).unwrap());
        assert!(verify_in("correct horse", &ours, &mut memory).unwrap());
        assert!(!verify_in("wrong horse", &theirs, &mut memory).unwrap());
        // Smaller parameters (an older hash) verify too.
        let salt = SaltString::generate(&mut rand::thread_rng());
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, Some(16)).unwrap(),
        )
        .hash_password(b"secret", &salt)
        .unwrap()
        .to_string();
        assert!(verify_in("secret", &small, &mut memory).unwrap());
        assert!(!verify_in("Secret", &small, &mut memory).unwrap());
        assert!(verify_in("x", "not a hash", &mut memory).is_err());
    }

    #[test]
    fn hashes_asking_for_more_memory_are_refused() {
        let salt = SaltString::generate(&mut rand::thread_rng());
        let big = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64 * 1024, 2, 1, None).unwrap(),
        )
        .hash_password(b"secret", &salt)
        .unwrap()
        .to_string();
        assert!(matches!(
            verify_now("secret", &big),
            Err(HashError::Hash(_))
        ));
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let hasher = Hasher::new(1, 1, Duration::from_secs(5));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let busy = hasher.clone();
        let running = tokio::spawn(async move {
            busy.run(Lane::Account, move |_| {
                let _ = hold.recv();
                Ok(())
            })
            .await
        });
        // Wait until the first job holds the only permit.
        while hasher.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let queued = hasher.clone();
        let waiter = tokio::spawn(async move { queued.run(Lane::Account, |_| Ok(())).await });
        while hasher.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        // The queue (1) is full: the third is refused without waiting.
        let started = std::time::Instant::now();
        assert!(matches!(
            hasher.run(Lane::Account, |_| Ok(())).await,
            Err(HashError::Busy)
        ));
        assert!(started.elapsed() < Duration::from_secs(1));
        release.send(()).unwrap();
        running.await.unwrap().unwrap();
        waiter.await.unwrap().unwrap();
        assert_eq!(hasher.waiting(), 0);
    }

    #[tokio::test]
    async fn unknown_names_wait_in_half_the_queue_at_most() {
        let hasher = Hasher::new(1, 4, Duration::from_secs(5));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let busy = hasher.clone();
        let running = tokio::spawn(async move {
            busy.run(Lane::Account, move |_| {
                let _ = hold.recv();
                Ok(())
            })
            .await
        });
        while hasher.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let mut waiters = Vec::new();
        for _ in 0..2 {
            let h = hasher.clone();
            waiters.push(tokio::spawn(async move {
                h.run(Lane::Unknown, |_| Ok(())).await
            }));
        }
        while hasher.waiting() < 2 {
            tokio::task::yield_now().await;
        }
        // Half the queue (2) is taken by unknown names: a third is refused, an account is not.
        assert!(matches!(
            hasher.run(Lane::Unknown, |_| Ok(())).await,
            Err(HashError::Busy)
        ));
        let h = hasher.clone();
        waiters.push(tokio::spawn(async move {
            h.run(Lane::Account, |_| Ok(())).await
        }));
        while hasher.waiting() < 3 {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        running.await.unwrap().unwrap();
        for w in waiters {
            w.await.unwrap().unwrap();
        }
        assert_eq!(hasher.waiting(), 0);
    }

    #[tokio::test]
    async fn waiting_too_long_answers_busy() {
        let hasher = Hasher::new(1, 8, Duration::from_millis(50));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let busy = hasher.clone();
        let running = tokio::spawn(async move {
            busy.run(Lane::Account, move |_| {
                let _ = hold.recv();
                Ok(())
            })
            .await
        });
        while hasher.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            hasher.run(Lane::Account, |_| Ok(())).await,
            Err(HashError::Busy)
        ));
        release.send(()).unwrap();
        running.await.unwrap().unwrap();
        assert_eq!(hasher.waiting(), 0);
    }
}
