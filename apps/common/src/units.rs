//! Rates and counts as DPDK users read them: `14.88 Mpps`, `9.52 Gbit/s`, never a raw float.

/// A packet rate with a unit that keeps 3 to 5 significant digits: `950 pps`, `14.88 Kpps`,
/// `14.88 Mpps`, `148.81 Mpps`.
pub fn pps(rate: f64) -> String {
    scaled(rate, "pps", 1000.0, &["", "K", "M", "G"])
}

/// A bit rate: `100.00 Mbit/s`, `9.52 Gbit/s`.
pub fn bits_per_s(rate: f64) -> String {
    scaled(rate, "bit/s", 1000.0, &["", "k", "M", "G", "T"])
}

/// A byte count: `1.50 MB` (decimal, as link rates are).
pub fn bytes(n: u64) -> String {
    scaled(n as f64, "B", 1000.0, &["", "k", "M", "G", "T", "P"])
}

fn scaled(v: f64, unit: &str, step: f64, prefixes: &[&str]) -> String {
    if !v.is_finite() {
        return format!("- {unit}");
    }
    let mut v = v.max(0.0);
    let mut i = 0;
    while v >= step && i + 1 < prefixes.len() {
        v /= step;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {unit}")
    } else {
        format!("{v:.2} {}{unit}", prefixes[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_users_write_them() {
        assert_eq!(pps(0.0), "0 pps");
        assert_eq!(pps(950.4), "950 pps");
        assert_eq!(pps(14_880_952.0), "14.88 Mpps");
        assert_eq!(pps(148_809_523.0), "148.81 Mpps");
        assert_eq!(pps(2.5e9), "2.50 Gpps");
        assert_eq!(bits_per_s(100e6), "100.00 Mbit/s");
        assert_eq!(bits_per_s(9.52e9), "9.52 Gbit/s");
        assert_eq!(bits_per_s(1e15), "1000.00 Tbit/s");
        assert_eq!(bytes(1_500_000), "1.50 MB");
        assert_eq!(bytes(999), "999 B");
    }

    #[test]
    fn nonsense_is_not_a_number() {
        assert_eq!(pps(f64::NAN), "- pps");
        assert_eq!(bits_per_s(f64::INFINITY), "- bit/s");
        assert_eq!(pps(-1.0), "0 pps");
    }
}
