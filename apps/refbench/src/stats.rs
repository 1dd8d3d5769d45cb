//! Mean and 95% confidence interval over repeated rounds (Student's t), and grace-period
//! latency percentiles.

use serde::Serialize;

/// Student's t, two-sided 95% (the 0.975 quantile), for 1 to 30 degrees of freedom.
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The 0.975 quantile of Student's t with `df` degrees of freedom (df >= 1): the table up to
/// 30, then the Cornish-Fisher expansion around the normal's 1.96 (within 0.001 of the exact
/// value from 30 on).
pub fn t975(df: usize) -> f64 {
    assert!(df >= 1, "t needs at least one degree of freedom");
    if df <= T975.len() {
        return T975[df - 1];
    }
    let (z, v): (f64, f64) = (1.959_964, df as f64);
    z + (z.powi(3) + z) / (4.0 * v)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
}

/// A mean over rounds with its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ci {
    pub mean: f64,
    /// Half-width of the 95% interval (mean ± this); None with fewer than two rounds.
    pub half: Option<f64>,
    pub n: usize,
}

impl Ci {
    /// Mean and t-interval of `v` (rounds are independent measurements of the same quantity).
    pub fn of(v: &[f64]) -> Ci {
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n.max(1) as f64;
        let half = (n >= 2).then(|| {
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            t975(n - 1) * (var / n as f64).sqrt()
        });
        Ci { mean, half, n }
    }

    pub fn lo(&self) -> f64 {
        self.mean - self.half.unwrap_or(0.0)
    }

    pub fn hi(&self) -> f64 {
        self.mean + self.half.unwrap_or(0.0)
    }

    /// Whether the two intervals overlap: the difference is then within noise (a conservative
    /// test: disjoint 95% intervals mean a difference at well under the 5% level). Without an
    /// interval (one round) nothing can be told apart: always true.
    pub fn overlaps(&self, o: &Ci) -> bool {
        if self.half.is_none() || o.half.is_none() {
            return true;
        }
        self.lo() <= o.hi() && o.lo() <= self.hi()
    }

    /// `mean ± half` with `prec` decimals (`mean ± -` for one round).
    pub fn show(&self, prec: usize) -> String {
        match self.half {
            Some(h) => format!("{:.prec$} ± {:.prec$}", self.mean, h),
            None => format!("{:.prec$} ± -", self.mean),
        }
    }
}

/// Grace-period latency percentiles, in TSC cycles and microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_cycles: u64,
    pub p99_cycles: u64,
    pub max_cycles: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl Latency {
    /// Percentiles of `cycles` (None when empty), converted with `tsc_hz`.
    pub fn of(cycles: &[u64], tsc_hz: u64) -> Option<Latency> {
        if cycles.is_empty() {
            return None;
        }
        // 3 significant figures, auto-resizing: any latency fits.
        let mut h = hdrhistogram::Histogram::<u64>::new(3).expect("3 significant figures");
        for &c in cycles {
            h.record(c.max(1)).expect("auto-resizing histogram");
        }
        let us = |c: u64| c as f64 * 1e6 / tsc_hz.max(1) as f64;
        let (p50, p99, max) = (
            h.value_at_quantile(0.50),
            h.value_at_quantile(0.99),
            h.max(),
        );
        Some(Latency {
            count: h.len(),
            p50_cycles: p50,
            p99_cycles: p99,
            max_cycles: max,
            p50_us: us(p50),
            p99_us: us(p99),
            max_us: us(max),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_of_known_data() {
        // mean 5, sample sd sqrt(2.5), n 5: half = 2.776 * sqrt(2.5 / 5) = 1.96293...
        let c = Ci::of(&[3.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(c.mean, 5.0);
        assert!(
            (c.half.unwrap() - 2.776 * 0.5f64.sqrt()).abs() < 1e-9,
            "{c:?}"
        );
        assert_eq!(c.n, 5);
        // Identical rounds: a zero-width interval.
        assert_eq!(Ci::of(&[2.0, 2.0, 2.0]).half, Some(0.0));
        // One round: a mean, no interval.
        assert_eq!(Ci::of(&[1.5]).half, None);
        assert_eq!(Ci::of(&[1.5]).show(2), "1.50 ± -");
    }

    #[test]
    fn t_quantiles() {
        assert_eq!(t975(1), 12.706);
        assert_eq!(t975(30), 2.042);
        // Beyond the table: 40 -> 2.021, 120 -> 1.980 (exact values to 3 decimals).
        assert!((t975(40) - 2.021).abs() < 0.001, "{}", t975(40));
        assert!((t975(120) - 1.980).abs() < 0.001, "{}", t975(120));
        assert!(t975(100_000) > 1.959 && t975(100_000) < 1.961);
    }

    #[test]
    fn overlap_decides_within_noise() {
        let a = Ci::of(&[0.40, 0.45, 0.50]);
        let b = Ci::of(&[0.48, 0.51, 0.54]);
        let far = Ci::of(&[9.0, 9.1, 9.2]);
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&far) && !far.overlaps(&a));
        assert!(
            Ci::of(&[1.0]).overlaps(&far),
            "one round tells nothing apart"
        );
    }

    #[test]
    fn latency_percentiles_are_ordered() {
        // 1..=1000 cycles at 1 GHz (1 ns each): p50 ~500, p99 ~990, max 1000.
        let v: Vec<u64> = (1..=1000).collect();
        let l = Latency::of(&v, 1_000_000_000).unwrap();
        assert_eq!(l.count, 1000);
        assert!(l.p50_cycles.abs_diff(500) <= 1, "{l:?}");
        assert!(l.p99_cycles.abs_diff(990) <= 1, "{l:?}");
        assert_eq!(l.max_cycles, 1000);
        assert!(l.p50_us <= l.p99_us && l.p99_us <= l.max_us);
        assert!((l.max_us - 1.0).abs() < 1e-9);
        assert!(Latency::of(&[], 1).is_none());
    }
}
