//! The generators' random numbers: SplitMix64 (Steele, Lea and Flood, "Fast splittable
//! pseudorandom number generators", OOPSLA 2014; the constants are those of Vigna's
//! reference `splitmix64.c`). It passes BigCrush, needs no crate, and is fast enough to
//! fill megabytes of attachment bytes.
//!
//! Everything here is integer arithmetic (the one `f64` is built exactly from 53 random
//! bits and only compared), so a seed gives the same numbers on every machine and build;
//! no libm function (`ln`, `exp`) is involved.

/// The golden-ratio increment of SplitMix64 (2^64 / phi, odd).
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function (Stafford's "Mix13" variant, as in `splitmix64.c`).
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// An independent generator for item `index` of stream `stream` under `seed`: the
    /// state is a hash of all three, so items can be generated in any order (or in
    /// parallel) and still come out the same.
    pub fn stream(seed: u64, stream: u64, index: u64) -> Rng {
        let a = mix64(seed.wrapping_add(GOLDEN));
        let b = mix64(a ^ stream.wrapping_mul(GOLDEN).wrapping_add(1));
        Rng::new(mix64(b ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03)))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix64(self.state)
    }

    /// A number in `0..n` (Lemire's multiply-high reduction; `n` = 0 gives 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        debug_assert!(lo <= hi);
        lo + self.below(hi - lo + 1)
    }

    pub fn range_usize(&mut self, lo: usize, hi: usize) -> usize {
        self.range(lo as u64, hi as u64) as usize
    }

    /// A float in `[0, 1)` made exactly from 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A size in `lo..=hi` spread evenly on a log scale (as many messages between 2 and
    /// 4 KB as between 10 and 20 KB): a whole number of 1/16 steps, then a uniform
    /// position inside the step. Integer only.
    pub fn log_uniform(&mut self, lo: u64, hi: u64) -> u64 {
        let lo = lo.max(16);
        if lo >= hi {
            return lo;
        }
        let mut steps = 0;
        let mut v = lo;
        while v < hi {
            v = v * 17 / 16;
            steps += 1;
        }
        let mut x = lo;
        for _ in 0..self.below(steps) {
            x = x * 17 / 16;
        }
        let next = (x * 17 / 16).min(hi);
        self.range(x.min(next), next)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let last = self.next_u64().to_le_bytes();
            let n = rest.len();
            rest.copy_from_slice(&last[..n]);
        }
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.fill(&mut v);
        v
    }

    /// Fisher-Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_splitmix64() {
        // First outputs of splitmix64.c seeded with 1234567 (its usual test vector).
        let mut rng = Rng::new(1234567);
        assert_eq!(rng.next_u64(), 6457827717110365317);
        assert_eq!(rng.next_u64(), 3203168211198807973);
        assert_eq!(rng.next_u64(), 9817491932198370423);
    }

    #[test]
    fn streams_are_independent_and_repeatable() {
        let a: Vec<u64> = (0..4).map(|i| Rng::stream(7, 1, i).next_u64()).collect();
        let b: Vec<u64> = (0..4).map(|i| Rng::stream(7, 1, i).next_u64()).collect();
        assert_eq!(a, b);
        let c: Vec<u64> = (0..4).map(|i| Rng::stream(8, 1, i).next_u64()).collect();
        assert!(a.iter().zip(&c).all(|(x, y)| x != y));
        assert_ne!(
            Rng::stream(7, 1, 0).next_u64(),
            Rng::stream(7, 2, 0).next_u64()
        );
    }

    #[test]
    fn ranges_stay_in_bounds() {
        let mut rng = Rng::new(1);
        for _ in 0..10_000 {
            let x = rng.range(3, 9);
            assert!((3..=9).contains(&x));
            let s = rng.log_uniform(2_000, 20_000);
            assert!((2_000..=20_000).contains(&s), "{s}");
        }
        let mut buf = [0u8; 13];
        rng.fill(&mut buf);
        assert!(buf.iter().any(|&b| b != 0));
    }

    #[test]
    fn log_uniform_spreads_over_the_decades() {
        let mut rng = Rng::new(2);
        let draws: Vec<u64> = (0..10_000)
            .map(|_| rng.log_uniform(100_000, 5_000_000))
            .collect();
        let below_1m = draws.iter().filter(|&&d| d < 1_000_000).count();
        // ln(10)/ln(50) = 59% of a log-uniform draw lies below 1 MB.
        assert!((5_400..6_400).contains(&below_1m), "{below_1m}");
    }
}
