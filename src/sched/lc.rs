//! Weighted least connections: the live backend with the smallest
//! `active / weight`, lowest index on ties. Compared by cross-multiplying in
//! 64 bits (`a_i * w_j < a_j * w_i`), so there is no division and no rounding.
//! The counts are the worker's own, kept by the datapath through
//! `Scheduler::conn_opened` / `conn_closed`.

/// The backend to open the next connection to; `None` when every weight is 0.
/// `active[i]` is backend `i`'s connection count; missing entries count as 0.
pub fn pick(weights: &[u32], active: &[u32]) -> Option<u32> {
    let mut best: Option<(usize, u64, u64)> = None;
    let counts = active.iter().copied().chain(std::iter::repeat(0));
    for (i, (&w, a)) in weights.iter().zip(counts).enumerate() {
        if w == 0 {
            continue;
        }
        let (a, w) = (u64::from(a), u64::from(w));
        let better = match best {
            None => true,
            Some((_, ba, bw)) => a * bw < ba * w,
        };
        if better {
            best = Some((i, a, w));
        }
    }
    best.map(|(i, _, _)| i as u32)
}

/// The backend among `members` (indices into `weights` and `active`) to
/// open the next connection to, by the same rule; `None` when every
/// member's weight is 0.
pub fn pick_among(weights: &[u32], active: &[u32], members: &[u32]) -> Option<u32> {
    let mut best: Option<(u32, u64, u64)> = None;
    for &i in members {
        let w = u64::from(weights.get(i as usize).copied().unwrap_or(0));
        if w == 0 {
            continue;
        }
        let a = u64::from(active.get(i as usize).copied().unwrap_or(0));
        if best.is_none_or(|(_, ba, bw)| a * bw < ba * w) {
            best = Some((i, a, w));
        }
    }
    best.map(|(i, _, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_loaded_wins() {
        assert_eq!(pick(&[1, 1, 1], &[5, 2, 9]), Some(1));
        assert_eq!(pick(&[1, 1, 1], &[0, 0, 0]), Some(0));
        assert_eq!(pick(&[1, 1, 1], &[3, 1, 1]), Some(1));
    }

    #[test]
    fn weights_scale_the_load() {
        // 6 connections on weight 3 is 2 per unit; 3 on weight 1 is 3.
        assert_eq!(pick(&[1, 3], &[3, 6]), Some(1));
        assert_eq!(pick(&[1, 3], &[2, 6]), Some(0)); // tie at 2 -> lowest index
                                                     // Filling from empty converges to the weight ratio.
        let w = [1u32, 2, 3];
        let mut a = [0u32; 3];
        for _ in 0..600 {
            let i = pick(&w, &a).unwrap_or(0) as usize;
            a[i] += 1;
        }
        assert_eq!(a, [100, 200, 300]);
    }

    #[test]
    fn drained_skipped() {
        assert_eq!(pick(&[0, 1], &[0, 100]), Some(1));
        assert_eq!(pick(&[0, 0], &[0, 0]), None);
        assert_eq!(pick(&[], &[]), None);
    }

    #[test]
    fn extreme_values() {
        assert_eq!(pick(&[u32::MAX, 1], &[u32::MAX, 1]), Some(0));
        assert_eq!(pick(&[1, 1], &[u32::MAX, u32::MAX - 1]), Some(1));
        // Missing counts are zero.
        assert_eq!(pick(&[1, 1], &[4]), Some(1));
    }
}
