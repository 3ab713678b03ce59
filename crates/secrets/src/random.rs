//! The one random source of the crate.

use std::cell::RefCell;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

thread_local! {
    // One generator per thread: no lock on the issuance path, and each is
    // seeded from the OS independently, so threads never share a stream.
    static GENERATOR: RefCell<ChaCha20Rng> = RefCell::new(ChaCha20Rng::from_os_rng());
}

/// Returns `len` characters drawn uniformly from `alphabet` (ASCII only).
pub fn random_string(alphabet: &[u8], len: usize) -> String {
    debug_assert!(alphabet.is_ascii() && !alphabet.is_empty());
    GENERATOR.with(|generator| {
        let mut generator = generator.borrow_mut();
        (0..len)
            .map(|_| char::from(alphabet[generator.random_range(0..alphabet.len())]))
            .collect()
    })
}

/// Fills `bytes` from the generator.
pub fn fill_bytes(bytes: &mut [u8]) {
    GENERATOR.with(|generator| generator.borrow_mut().fill(bytes));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_only_from_the_alphabet_and_differs_between_calls() {
        let first = random_string(b"ab", 64);
        let second = random_string(b"ab", 64);
        assert_eq!(first.len(), 64);
        assert!(first.bytes().all(|b| b == b'a' || b == b'b'));
        // 2^-64 chance of a false failure.
        assert_ne!(first, second);
    }
}
