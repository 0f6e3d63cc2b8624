//! What the benches share.

/// Full-precision pseudo-random numbers in [0, 1), as real scores and
/// counts are (a 64-bit linear congruential generator, its top 53 bits).
pub struct Numbers(pub u64);

impl Numbers {
    pub fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}
