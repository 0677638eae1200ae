//! The one source of random keys: the kernel's CSPRNG (`getrandom(2)`,
//! through the getrandom crate), for the SYN cookie master key and the
//! connection-hash seed of `rampart run`. Replay and tests use fixed keys
//! and seeds instead, so their outputs are reproducible.

/// The OS random source failed (only early in boot, or under a seccomp
/// policy that forbids `getrandom(2)`).
#[derive(Debug, thiserror::Error)]
#[error("no random bytes from the OS: {0}")]
pub struct RandomError(getrandom::Error);

/// A 128-bit key.
pub fn key() -> Result<[u8; 16], RandomError> {
    let mut k = [0u8; 16];
    getrandom::fill(&mut k).map_err(RandomError)?;
    Ok(k)
}

/// A 64-bit seed.
pub fn seed() -> Result<u64, RandomError> {
    getrandom::u64().map_err(RandomError)
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_and_seeds_differ_between_calls() {
        assert_ne!(super::key().unwrap(), super::key().unwrap());
        assert_ne!(super::seed().unwrap(), super::seed().unwrap());
    }
}
