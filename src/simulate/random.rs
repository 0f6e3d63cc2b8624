//! The simulation's random numbers: xoshiro256++ streams, one per model,
//! seeded through SplitMix64, and uniform draws from them.
//!
//! The generator is written here rather than taken from `rand` because
//! `rand` documents its small generators as not reproducible across
//! releases, and the simulation promises the same output for a seed.

use rand::Rng;
use rand::rand_core::TryRng;
use std::convert::Infallible;

/// A uniform draw in [0, 1) with 53 random bits.
pub(super) fn unit(rng: &mut Xoshiro256PlusPlus) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform draw in [low, high).
pub(super) fn uniform(rng: &mut Xoshiro256PlusPlus, low: f64, high: f64) -> f64 {
    low + (high - low) * unit(rng)
}

/// SplitMix64's output function; mixes seeds into well-spread states.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The xoshiro256++ generator.
#[derive(Debug, Clone)]
pub(super) struct Xoshiro256PlusPlus {
    state: [u64; 4],
}

impl Xoshiro256PlusPlus {
    #[cfg(test)]
    fn from_state(state: [u64; 4]) -> Xoshiro256PlusPlus {
        Xoshiro256PlusPlus { state }
    }

    /// The stream of model `index` under `seed`: the pair is mixed through
    /// SplitMix64, which never yields the all-zero state from four outputs.
    pub(super) fn for_model(seed: u64, index: usize) -> Xoshiro256PlusPlus {
        let mut mixer = seed;
        let mut mixed = splitmix64(&mut mixer) ^ (index as u64);
        let mut state = [0; 4];
        for word in &mut state {
            *word = splitmix64(&mut mixed);
        }
        Xoshiro256PlusPlus { state }
    }

    fn step(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
}

impl TryRng for Xoshiro256PlusPlus {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.step() >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.step())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.step().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro_matches_the_reference_first_output() {
        // rotl(1 + 4, 23) + 1 from the reference implementation.
        let mut rng = Xoshiro256PlusPlus::from_state([1, 2, 3, 4]);
        assert_eq!(rng.next_u64(), 41_943_041);
    }

    #[test]
    fn models_get_distinct_streams() {
        let mut first = Xoshiro256PlusPlus::for_model(7, 0);
        let mut second = Xoshiro256PlusPlus::for_model(7, 1);
        let mut other_seed = Xoshiro256PlusPlus::for_model(8, 0);
        let a = first.next_u64();
        assert_ne!(a, second.next_u64());
        assert_ne!(a, other_seed.next_u64());
    }
}
