//! Money as whole cents, so that what is added and split adds up exactly.

use std::{
    iter::Sum,
    ops::{Add, AddAssign, Sub},
};

/// An amount in US cents. Every reported amount is a whole number of cents: a line is its
/// exact amount rounded once, and sums and splits of lines are exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cents(pub i64);

impl Cents {
    /// An amount in USD, rounded to the nearest cent (half away from zero).
    pub fn round(usd: f64) -> Self {
        Self((usd * 100.0).round() as i64)
    }

    /// The amount in USD, as the contract carries it.
    pub fn usd(self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// Splits the amount into shares in proportion to `weights`, in whole cents that add up to
    /// it exactly: each share is rounded down, and the cents left go one each to the largest
    /// remainders (the largest-remainder method; ties to the earlier weight). All weights zero
    /// (or none positive) split it evenly.
    pub fn split(self, weights: &[f64]) -> Vec<Self> {
        if weights.is_empty() {
            return Vec::new();
        }
        let positive = |w: f64| if w.is_finite() && w > 0.0 { w } else { 0.0 };
        let total: f64 = weights.iter().copied().map(positive).sum();
        let weights: Vec<f64> = if total > 0.0 {
            weights.iter().map(|&w| positive(w) / total).collect()
        } else {
            vec![1.0 / weights.len() as f64; weights.len()]
        };
        let (sign, cents) = (self.0.signum(), self.0.unsigned_abs() as f64);
        let exact: Vec<f64> = weights.iter().map(|w| w * cents).collect();
        let mut shares: Vec<i64> = exact.iter().map(|e| e.floor() as i64).collect();
        let left = self.0.abs() - shares.iter().sum::<i64>();
        let mut order: Vec<usize> = (0..shares.len()).collect();
        order.sort_by(|&a, &b| {
            let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
            rb.total_cmp(&ra).then(a.cmp(&b))
        });
        for &i in order.iter().cycle().take(left.max(0) as usize) {
            shares[i] += 1;
        }
        shares.into_iter().map(|s| Self(sign * s)).collect()
    }
}

impl Add for Cents {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self(self.0 + other.0)
    }
}

impl AddAssign for Cents {
    fn add_assign(&mut self, other: Self) {
        self.0 += other.0;
    }
}

impl Sub for Cents {
    type Output = Self;

    fn sub(self, other: Self) -> Self {
        Self(self.0 - other.0)
    }
}

impl Sum for Cents {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        Self(iter.map(|c| c.0).sum())
    }
}

impl std::fmt::Display for Cents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let cents = self.0.unsigned_abs();
        write!(f, "{sign}${}.{:02}", cents / 100, cents % 100)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn amounts_round_to_the_nearest_cent() {
        assert_eq!(Cents::round(12.345), Cents(1235));
        assert_eq!(Cents::round(0.004), Cents(0));
        assert_eq!(Cents::round(-0.005), Cents(-1));
        assert_eq!(Cents(123_456).to_string(), "$1234.56");
        assert_eq!(Cents(-5).to_string(), "-$0.05");
    }

    #[test]
    fn the_cents_left_go_to_the_largest_remainders() {
        assert_eq!(
            Cents(100).split(&[1.0, 1.0, 1.0]),
            [Cents(34), Cents(33), Cents(33)]
        );
        assert_eq!(Cents(10).split(&[0.0, 0.0]), [Cents(5), Cents(5)], "even");
        assert_eq!(Cents(10).split(&[3.0, 0.0]), [Cents(10), Cents(0)]);
        assert_eq!(Cents(7).split(&[1.0, 2.0]), [Cents(2), Cents(5)]);
        assert!(Cents(7).split(&[]).is_empty());
    }

    proptest! {
        #[test]
        fn shares_add_up_to_the_amount_and_follow_the_weights(
            cents in -10_000_000i64..10_000_000,
            weights in proptest::collection::vec(0.0f64..1e6, 1..50),
        ) {
            let shares = Cents(cents).split(&weights);
            prop_assert_eq!(shares.len(), weights.len());
            prop_assert_eq!(shares.iter().copied().sum::<Cents>(), Cents(cents));
            let total: f64 = weights.iter().sum();
            for (share, weight) in shares.iter().zip(&weights) {
                let exact = if total > 0.0 {
                    cents as f64 * weight / total
                } else {
                    cents as f64 / weights.len() as f64
                };
                prop_assert!((share.0 as f64 - exact).abs() < 1.0 + 1e-6, "{share:?} for {exact}");
            }
        }
    }
}
