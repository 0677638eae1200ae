//! Round robin: the non-drained backends in list order, one pick each, then
//! around again. Weights only matter as drained (0) or not.

/// Where the next search starts. Always `< weights.len()` after a pick.
#[derive(Clone, Debug, Default)]
pub struct Cursor {
    next: usize,
}

impl Cursor {
    /// The next backend with a non-zero weight at or after the cursor,
    /// wrapping around; `None` when all are drained. O(n) only across drained
    /// backends.
    pub fn pick(&mut self, weights: &[u32]) -> Option<u32> {
        let n = weights.len();
        // The set may have shrunk since the last pick.
        let start = if self.next < n { self.next } else { 0 };
        let (tail, head) = (weights.get(start..)?, weights.get(..start)?);
        let found = tail
            .iter()
            .position(|&w| w > 0)
            .map(|p| start + p)
            .or_else(|| head.iter().position(|&w| w > 0))?;
        self.next = if found + 1 < n { found + 1 } else { 0 };
        Some(found as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks(weights: &[u32], n: usize) -> Vec<Option<u32>> {
        let mut c = Cursor::default();
        (0..n).map(|_| c.pick(weights)).collect()
    }

    #[test]
    fn cycles_in_order() {
        let got = picks(&[1, 1, 1], 7);
        let want = [0, 1, 2, 0, 1, 2, 0].map(Some);
        assert_eq!(got, want);
    }

    #[test]
    fn skips_drained() {
        let got = picks(&[0, 5, 0, 1, 0], 6);
        assert_eq!(got, [1, 3, 1, 3, 1, 3].map(Some));
    }

    #[test]
    fn ignores_weights_otherwise() {
        let got = picks(&[9, 1], 4);
        assert_eq!(got, [0, 1, 0, 1].map(Some));
    }

    #[test]
    fn all_drained_or_empty() {
        assert_eq!(picks(&[0, 0], 3), [None, None, None]);
        assert_eq!(picks(&[], 2), [None, None]);
    }

    #[test]
    fn survives_a_shorter_set() {
        let mut c = Cursor::default();
        assert_eq!(c.pick(&[1, 1, 1, 1]), Some(0));
        assert_eq!(c.pick(&[1, 1, 1, 1]), Some(1));
        assert_eq!(c.pick(&[1, 1, 1, 1]), Some(2));
        assert_eq!(c.pick(&[1, 1]), Some(0));
    }
}
