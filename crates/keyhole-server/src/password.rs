//! Account passwords: Argon2id (RFC 9106; the `argon2` crate's default cost, 19 MiB and two
//! passes) in PHC strings, computed on `THREADS` threads of their own, one hash at a time
//! each, each reusing one buffer for the hash's memory. A flood of logins waits its turn;
//! it neither runs a hash per blocking thread nor leaves the allocator holding 19 MiB per
//! hash it ran (it did: 500 parallel logins grew the server by 150 MiB).

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand_core::OsRng;
use subtle::ConstantTimeEq as _;

use crate::error::ApiError;

/// Threads hashing passwords.
const THREADS: usize = 2;
/// The most memory a stored hash may ask for (its `m`, in KiB): a row written by something
/// else cannot make a login take a gigabyte.
const MAX_MEMORY_KIB: u32 = 64 * 1024;

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// Runs `work` on a hashing thread, with that thread's memory, and waits for it without
/// blocking the async threads.
async fn on_hashing_thread<T: Send + 'static>(
    work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
) -> Result<T, ApiError> {
    static QUEUE: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..THREADS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    let mut memory = Vec::new();
                    loop {
                        let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        match next {
                            Ok(job) => job(&mut memory),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        tx
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    queue
        .send(Box::new(move |memory: &mut Vec<Block>| {
            let _ = tx.send(work(memory));
        }))
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("the password hashing threads stopped")))?;
    rx.await
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("password hashing failed")))
}

/// `argon` over `password` and `salt` into `out`, in `memory` (grown to what it needs).
fn run(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> argon2::Result<()> {
    let blocks = argon.params().block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    argon.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
}

/// The PHC string of `password` under a new salt.
///
/// # Errors
/// If hashing fails.
pub async fn hash(password: String) -> Result<String, ApiError> {
    on_hashing_thread(move |memory| {
        let params = Params::default();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes)?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        run(&argon, password.as_bytes(), salt_bytes, &mut out, memory)?;
        Ok::<_, argon2::password_hash::Error>(
            PasswordHash {
                algorithm: Algorithm::Argon2id.ident(),
                version: Some(Version::V0x13.into()),
                params: ParamsString::try_from(&params)?,
                salt: Some(salt.as_salt()),
                hash: Some(Output::new(&out)?),
            }
            .to_string(),
        )
    })
    .await?
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("hashing password: {e}")))
}

/// Whether `password` matches the PHC string `stored` (compared in constant time). With no
/// stored hash, a fixed dummy is checked instead, so unknown user names take as long as
/// known ones.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let known = stored.is_some();
    let phc = match stored {
        Some(phc) => phc,
        None => match DUMMY.get() {
            Some(dummy) => dummy.clone(),
            None => match hash("no such account".to_owned()).await {
                Ok(dummy) => DUMMY.get_or_init(|| dummy).clone(),
                Err(_) => return false,
            },
        },
    };
    let matched = on_hashing_thread(move |memory| matches(&password, &phc, memory)).await;
    matched.unwrap_or(false) && known
}

fn matches(password: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(stored) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) = (
        Params::try_from(&stored),
        Algorithm::try_from(stored.algorithm),
    ) else {
        return false;
    };
    let version = match stored.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
        return false;
    };
    if params.m_cost() > MAX_MEMORY_KIB {
        return false;
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    run(&argon, password.as_bytes(), salt, &mut out, memory).is_ok()
        && bool::from(out.ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use argon2::PasswordVerifier as _;

    use super::*;

    #[tokio::test]
    async fn hashes_verify_here_and_with_the_argon2_crate_and_wrong_ones_do_not() {
        let phc = hash("correct horse battery".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery".into(), Some(phc.clone())).await);
        assert!(!verify("correct horse battery!".into(), Some(phc.clone())).await);
        assert!(!verify("correct horse battery".into(), None).await);
        assert!(!verify("x".into(), Some("not a hash".into())).await);
        // The same PHC string the argon2 crate writes and reads.
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        let theirs = argon2::PasswordHasher::hash_password(
            &Argon2::default(),
            b"another one",
            &SaltString::generate(&mut OsRng),
        )
        .unwrap()
        .to_string();
        assert!(verify("another one".into(), Some(theirs)).await);
        // A stored hash asking for more memory than allowed is refused, not run.
        let greedy = "$argon2id$v=19$m=1048576,t=2,p=1$c2FsdHNhbHRzYWx0$\
                      AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(!verify("x".into(), Some(greedy.into())).await);
    }
}
