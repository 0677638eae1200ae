//! Smooth weighted round robin (the scheme nginx uses for upstreams).
//!
//! Each pick adds every live backend's weight to its counter, takes the
//! backend with the largest counter (lowest index on ties) and subtracts the
//! total weight from the winner. Over any `total` consecutive picks from the
//! start, each backend is picked exactly `weight` times, and a heavy backend's
//! picks are interleaved with the others' instead of coming in a burst
//! (weights 5,1,1 give a a b a c a a, not a a a a a b c).

/// The per-backend counters. Built with the weights it will be picked with.
#[derive(Clone, Debug)]
pub struct Smooth {
    current: Box<[i64]>,
    total: i64,
}

impl Smooth {
    /// Allocates the counters: control plane only.
    pub fn new(weights: &[u32]) -> Smooth {
        Smooth {
            current: vec![0; weights.len()].into_boxed_slice(),
            total: weights.iter().map(|&w| i64::from(w)).sum(),
        }
    }

    /// The next backend; `None` when every weight is 0. O(n), no allocation.
    pub fn pick(&mut self, weights: &[u32]) -> Option<u32> {
        let mut best: Option<(usize, i64)> = None;
        for (i, (&w, c)) in weights.iter().zip(self.current.iter_mut()).enumerate() {
            if w == 0 {
                continue;
            }
            *c += i64::from(w);
            if best.is_none_or(|(_, b)| *c > b) {
                best = Some((i, *c));
            }
        }
        let (i, _) = best?;
        if let Some(c) = self.current.get_mut(i) {
            *c -= self.total;
        }
        Some(i as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(weights: &[u32], n: usize) -> Vec<u32> {
        let mut s = Smooth::new(weights);
        (0..n)
            .map(|_| s.pick(weights).unwrap_or(u32::MAX))
            .collect()
    }

    fn count(seq: &[u32], n: usize) -> Vec<u32> {
        let mut c = vec![0; n];
        for &i in seq {
            c[i as usize] += 1;
        }
        c
    }

    #[test]
    fn exact_counts_every_cycle() {
        for weights in [
            vec![5u32, 1, 1],
            vec![1, 1, 1],
            vec![3, 2],
            vec![7, 0, 3, 1],
            vec![100, 1],
            vec![4, 6, 9, 2, 1],
        ] {
            let total: u32 = weights.iter().sum();
            let seq = run(&weights, total as usize * 5);
            for cycle in seq.chunks(total as usize) {
                assert_eq!(count(cycle, weights.len()), weights, "{weights:?}");
            }
        }
    }

    #[test]
    fn smooth_order() {
        assert_eq!(run(&[5, 1, 1], 7), [0, 0, 1, 0, 2, 0, 0]);
        // No backend waits longer than it must: equal weights alternate.
        assert_eq!(run(&[2, 2], 4), [0, 1, 0, 1]);
    }

    #[test]
    fn all_drained_or_empty() {
        let mut s = Smooth::new(&[0, 0]);
        assert_eq!(s.pick(&[0, 0]), None);
        let mut s = Smooth::new(&[]);
        assert_eq!(s.pick(&[]), None);
    }

    #[test]
    fn large_weights_do_not_overflow() {
        let w = [u32::MAX, u32::MAX, 1];
        let seq = run(&w, 10_000);
        assert!(seq.iter().all(|&i| i < 3));
        assert!(count(&seq, 3)[0].abs_diff(count(&seq, 3)[1]) <= 1);
    }
}
