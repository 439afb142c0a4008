//! Password hashing with argon2id on its own pool of threads, off the async workers and at
//! the lowest CPU priority, so that cheap requests keep their latency during a login storm:
//! the kernel runs a request handler the moment it wakes, and hashing takes what is left.
//!
//! Hashes imported from REMP are bcrypt (`$2y$`, PHP's prefix; `$2a$`/`$2b$` too). They verify
//! on the same pool, and a correct password against one always asks for a rehash, so every
//! imported user moves to argon2id on their next sign-in.
//!
//! At most `workers` hashes run at once (one per core by default); at most `MAX_QUEUED`
//! requests wait behind them, and the rest are refused at once with `Busy` rather than piling
//! up memory (each hash takes 19 MiB).
//!
//! A sign-in for an account that does not exist (or cannot be checked) still runs one
//! verification, against a decoy hash of the configured cost: the answer takes as long as a
//! wrong password, so response time does not tell which emails have accounts.

use crate::domain::{Error, Result};
use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher as _, PasswordVerifier as _, phc::PasswordHash},
};
use std::sync::{
    Arc,
    atomic::{AtomicU64, AtomicUsize, Ordering},
};
use tokio::sync::{OnceCell, Semaphore};

/// Requests that may wait for a hashing slot. Beyond this a login storm is shed with 503s
/// instead of queueing minutes of work.
const MAX_QUEUED: usize = 1024;

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    /// Memory in KiB (OWASP minimum for argon2id: 19 MiB).
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl HashCost {
    /// OWASP's recommended argon2id parameters: m=19 MiB, t=2, p=1.
    pub const OWASP: HashCost = HashCost { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 };

    /// Whether these parameters are at least OWASP's.
    pub fn meets_owasp(&self) -> bool {
        self.memory_kib >= Self::OWASP.memory_kib && self.iterations >= Self::OWASP.iterations && self.parallelism >= 1
    }

    fn argon2(&self) -> Result<Argon2<'static>> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| Error::Internal(anyhow::anyhow!("argon2 parameters: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// Wrong password, or a stored value that is no hash at all (e.g. `GDPR Removal`).
    No,
    Yes,
    /// Correct, but the hash should be replaced (older algorithm or weaker parameters).
    YesRehash,
}

/// Work for a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// The bounded hashing pool.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    cost: HashCost,
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    jobs: std::sync::mpsc::SyncSender<Job>,
    /// Passwords checked against a stored hash (decoy checks excluded): the guesses an
    /// attacker got evaluated, exported on `/metrics`.
    evaluated: Arc<AtomicU64>,
    /// A hash of a random password at the configured cost, made on first need.
    decoy: Arc<OnceCell<String>>,
}

impl PasswordHasher {
    /// Start `workers` hashing threads; they end when the last clone of the hasher is dropped.
    pub fn new(cost: HashCost, workers: usize) -> Self {
        let workers = workers.max(1);
        // The semaphore admits at most `workers` jobs, so the channel never holds more.
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(workers);
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for n in 0..workers {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new().name(format!("argon2-{n}")).spawn(move || {
                lower_this_threads_priority();
                loop {
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-hashing thread");
            }
        }
        PasswordHasher {
            cost,
            slots: Arc::new(Semaphore::new(workers)),
            waiting: Arc::new(AtomicUsize::new(0)),
            jobs,
            evaluated: Arc::new(AtomicU64::new(0)),
            decoy: Arc::new(OnceCell::new()),
        }
    }

    /// Passwords verified against a stored hash since start (decoy verifications excluded).
    pub fn evaluated(&self) -> u64 {
        self.evaluated.load(Ordering::Relaxed)
    }

    /// Requests currently waiting for a hashing slot.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_QUEUED {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Busy("Too many sign-ins at once; try again shortly".into()));
        }
        let permit = self.slots.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let permit = permit.map_err(|e| Error::Internal(e.into()))?;
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _permit = permit;
            let _ = done.send(work());
        });
        self.jobs.send(job).map_err(|_| Error::Internal(anyhow::anyhow!("the password-hashing threads are gone")))?;
        result.await.map_err(|_| Error::Internal(anyhow::anyhow!("a password-hashing thread failed")))?
    }

    /// Hash a password to a PHC string.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_owned();
        let cost = self.cost;
        self.run(move || hash_now(cost, &password)).await
    }

    /// Check a password against a stored hash. A stored value that is no hash at all (an
    /// anonymized user) verifies nothing, after a decoy verification so it takes as long.
    pub async fn verify(&self, password: &str, stored: &str) -> Result<Verified> {
        if is_bcrypt(stored) {
            self.evaluated.fetch_add(1, Ordering::Relaxed);
            let (password, stored) = (password.to_owned(), stored.to_owned());
            return self.run(move || Ok(verify_bcrypt_now(&password, &stored))).await;
        }
        if PasswordHash::new(stored).is_err() {
            self.verify_decoy(password).await?;
            return Ok(Verified::No);
        }
        self.evaluated.fetch_add(1, Ordering::Relaxed);
        let (password, stored, cost) = (password.to_owned(), stored.to_owned(), self.cost);
        self.run(move || verify_now(cost, &password, &stored)).await
    }

    /// Spend exactly the work of checking a wrong password, against no account: for answers
    /// that must not be told apart from a wrong password by their timing.
    pub async fn verify_decoy(&self, password: &str) -> Result<()> {
        let decoy = self
            .decoy
            .get_or_try_init(|| async {
                let random = crate::domain::secret::new_token()?;
                self.hash(&random.plain).await
            })
            .await?
            .clone();
        let (password, cost) = (password.to_owned(), self.cost);
        self.run(move || verify_now(cost, &password, &decoy)).await?;
        Ok(())
    }
}

/// Nice 19: a request handler that wakes up preempts hashing at once, while hashing still
/// gets every cycle nobody else wants. Best effort; a refusal leaves the default priority.
#[allow(unsafe_code)]
fn lower_this_threads_priority() {
    // SAFETY: gettid and setpriority take plain integers and touch no memory of ours.
    let refused = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19) } != 0;
    if refused {
        tracing::warn!("cannot lower the priority of a password-hashing thread");
    }
}

fn hash_now(cost: HashCost, password: &str) -> Result<String> {
    let hash = cost
        .argon2()?
        .hash_password(password.as_bytes())
        .map_err(|e| Error::Internal(anyhow::anyhow!("argon2 hashing failed: {e}")))?;
    Ok(hash.to_string())
}

/// Whether a stored hash is bcrypt in the modular crypt format (`$2y$10$` + 53 characters).
pub fn is_bcrypt(stored: &str) -> bool {
    stored.len() == BCRYPT_HASH_LEN && ["$2y$", "$2b$", "$2a$"].iter().any(|p| stored.starts_with(p))
}

/// Which algorithm a stored hash uses, for operators following a migration (never the hash):
/// `argon2id`, `bcrypt` (imported, not yet rehashed), another PHC algorithm's name, or `none`
/// for a value that verifies no password (an anonymized user).
pub fn hash_algorithm(stored: &str) -> String {
    if is_bcrypt(stored) {
        return "bcrypt".into();
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => parsed.algorithm.as_str().to_owned(),
        Err(_) => "none".into(),
    }
}

/// Length of a bcrypt hash: prefix, two-digit cost, `$`, 22 characters of salt, 31 of hash.
const BCRYPT_HASH_LEN: usize = 60;

/// Highest bcrypt cost verified. PHP's default is 10; each step doubles the work, and a hash
/// of cost 20 would hold a hashing slot for minutes per guess.
const MAX_BCRYPT_COST: u32 = 16;

fn verify_bcrypt_now(password: &str, stored: &str) -> Verified {
    let cost = stored.get(4..6).and_then(|c| c.parse::<u32>().ok());
    if cost.is_none_or(|c| c > MAX_BCRYPT_COST) {
        return Verified::No;
    }
    // A malformed hash (bad base64) verifies nothing, like any wrong password.
    match bcrypt::verify(password, stored) {
        Ok(true) => Verified::YesRehash,
        _ => Verified::No,
    }
}

fn verify_now(cost: HashCost, password: &str, stored: &str) -> Result<Verified> {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Ok(Verified::No);
    };
    // Argon2 reads its parameters from the PHC string; the configured cost only decides
    // whether the hash is due for an upgrade.
    if Argon2::default().verify_password(password.as_bytes(), &parsed).is_err() {
        return Ok(Verified::No);
    }
    let current = parsed.algorithm.as_str() == "argon2id"
        && Params::try_from(&parsed).is_ok_and(|p| {
            p.m_cost() >= cost.memory_kib && p.t_cost() >= cost.iterations && p.p_cost() >= cost.parallelism
        });
    Ok(if current { Verified::Yes } else { Verified::YesRehash })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_weaker_hashes_ask_for_rehash() {
        let weak = PasswordHasher::new(HashCost { memory_kib: 1024, iterations: 1, parallelism: 1 }, 2);
        let strong = PasswordHasher::new(HashCost::OWASP, 2);
        let h = weak.hash("secret123").await.unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert_eq!(weak.verify("secret123", &h).await.unwrap(), Verified::Yes);
        assert_eq!(weak.verify("wrong", &h).await.unwrap(), Verified::No);
        assert_eq!(strong.verify("secret123", &h).await.unwrap(), Verified::YesRehash);
        assert_eq!(strong.verify("GDPR Removal", "GDPR Removal").await.unwrap(), Verified::No);
    }

    #[tokio::test]
    async fn php_bcrypt_hashes_verify_and_always_ask_for_rehash() {
        let hasher = PasswordHasher::new(HashCost { memory_kib: 1024, iterations: 1, parallelism: 1 }, 1);
        // What PHP's password_hash('secret123', PASSWORD_DEFAULT) stores: bcrypt with `$2y$`.
        let php = bcrypt::hash("secret123", 4).unwrap().replacen("$2b$", "$2y$", 1);
        assert!(is_bcrypt(&php), "{php}");
        assert_eq!(hasher.verify("secret123", &php).await.unwrap(), Verified::YesRehash);
        assert_eq!(hasher.verify("secret124", &php).await.unwrap(), Verified::No);
        assert_eq!(hasher.verify("", &php).await.unwrap(), Verified::No);
        let broken = format!("$2y$99${}", &php[7..]);
        assert_eq!(hasher.verify("secret123", &broken).await.unwrap(), Verified::No);
        // Refused without being computed (cost 17 would take seconds).
        let too_costly = format!("$2y$17${}", &php[7..]);
        let started = std::time::Instant::now();
        assert_eq!(hasher.verify("secret123", &too_costly).await.unwrap(), Verified::No);
        assert!(started.elapsed() < std::time::Duration::from_millis(500), "{:?}", started.elapsed());
        assert!(!is_bcrypt("$2y$10$short"));
        assert_eq!(hash_algorithm(&php), "bcrypt");
        assert_eq!(hash_algorithm(&hasher.hash("x").await.unwrap()), "argon2id");
        assert_eq!(hash_algorithm("GDPR Removal"), "none");
    }
}
