//! Repetitions and their summary: the median, and the spread between the fastest and slowest run.
//!
//! Every figure in the report is the median of several repetitions, each measured in a fresh
//! child process. The spread is reported as half the min–max range relative to the median, so
//! `12.0 ±5%` means the repetitions fell between about 11.4 and 12.6.

use serde::Serialize;

/// The summary of the repetitions of one measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// The raw value of every repetition, in the order they ran.
    pub values: Vec<f64>,
    /// The median of `values` (the mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// Half the min–max range as a percentage of the median: [`Sample::spread_pct`].
    pub spread_pct: f64,
}

impl Sample {
    /// Summarises `values`; `None` when there are none or one is not finite.
    pub fn new(values: Vec<f64>) -> Option<Sample> {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[mid]
        } else {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        };
        let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
        let spread_pct = if median == 0.0 {
            0.0
        } else {
            (max - min) / 2.0 / median.abs() * 100.0
        };
        Some(Sample {
            median,
            min,
            max,
            spread_pct,
            values,
        })
    }

    /// Half the min–max range as a percentage of the median (0 for a single repetition).
    pub fn spread_pct(&self) -> f64 {
        self.spread_pct
    }
}

/// Formats `v` with three significant digits, switching to thousands separators for big values.
pub fn fmt_sig(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000.0 {
        group_thousands(v.round() as i64)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a == 0.0 {
        "0".to_string()
    } else {
        format!("{v:.3}")
    }
}

/// `1234567` → `1,234,567`.
fn group_thousands(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 { format!("-{out}") } else { out }
}

/// A count such as `32768` written the way people say it: `32.8k`, `1M`.
pub fn fmt_count(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000_000 {
        format!("{:.2}M", n as f64 / 1e6)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else if n >= 1_000 {
        format!("{:.1}k", n as f64 / 1e3)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_and_even() {
        let s = Sample::new(vec![3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = Sample::new(vec![4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert_eq!(s.values, vec![4.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn spread_is_half_range_over_median() {
        let s = Sample::new(vec![9.0, 10.0, 11.0]).unwrap();
        assert!((s.spread_pct() - 10.0).abs() < 1e-9);
        assert_eq!(Sample::new(vec![5.0]).unwrap().spread_pct(), 0.0);
    }

    #[test]
    fn rejects_empty_and_nan() {
        assert!(Sample::new(vec![]).is_none());
        assert!(Sample::new(vec![1.0, f64::NAN]).is_none());
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_sig(1234567.4), "1,234,567");
        assert_eq!(fmt_sig(123.4), "123");
        assert_eq!(fmt_sig(12.34), "12.3");
        assert_eq!(fmt_sig(1.234), "1.23");
        assert_eq!(fmt_sig(0.1234), "0.123");
        assert_eq!(fmt_count(32_768), "32.8k");
        assert_eq!(fmt_count(1_000_000), "1M");
        assert_eq!(fmt_count(30_000), "30k");
        assert_eq!(fmt_count(512), "512");
    }
}
