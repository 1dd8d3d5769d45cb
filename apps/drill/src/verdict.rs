//! The verdict: each criterion's bound next to what the drill measured, pass or fail, and
//! the removal latency percentiles.

use crate::run::{Outcome, RatePoint};
use crate::spec::Criteria;
use serde::Serialize;
use serde_json::Value;

/// One row of the verdict table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    pub criterion: &'static str,
    pub bound: String,
    pub measured: String,
    /// None: not measured in this run (the reason is in `measured`); it neither passes nor
    /// fails the drill.
    pub pass: Option<bool>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    pub pass: bool,
    pub criteria: Vec<Row>,
}

impl Verdict {
    /// The criteria that failed.
    pub fn failed(&self) -> Vec<&'static str> {
        self.criteria
            .iter()
            .filter(|r| r.pass == Some(false))
            .map(|r| r.criterion)
            .collect()
    }

    /// The table, one row a line, and PASS or FAIL.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<24} {:>14} {:>22}  {}\n",
            "criterion", "bound", "measured", "result"
        );
        for r in &self.criteria {
            s += &format!(
                "{:<24} {:>14} {:>22}  {}\n",
                r.criterion,
                r.bound,
                r.measured,
                match r.pass {
                    Some(true) => "pass",
                    Some(false) => "FAIL",
                    None => "n/a",
                }
            );
        }
        s += if self.pass { "PASS\n" } else { "FAIL\n" };
        s
    }
}

/// p50, p99 and max of a set of values (nearest rank).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

pub fn percentiles(values: impl IntoIterator<Item = f64>) -> Option<Percentiles> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = |p: f64| v[((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Some(Percentiles {
        count: v.len(),
        p50: rank(50.0),
        p99: rank(99.0),
        max: v[v.len() - 1],
    })
}

/// The removal latencies over the drill, whole and by phase.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RemovalSummary {
    pub latency_us: Option<Percentiles>,
    pub grace_us: Option<Percentiles>,
    pub stop_us: Option<Percentiles>,
    pub unplug_us: Option<Percentiles>,
}

pub fn removal_summary(o: &Outcome) -> RemovalSummary {
    RemovalSummary {
        latency_us: percentiles(o.removals.iter().map(|r| r.latency_us)),
        grace_us: percentiles(o.removals.iter().filter_map(|r| r.grace_us)),
        stop_us: percentiles(o.removals.iter().filter_map(|r| r.stop_us)),
        unplug_us: percentiles(o.removals.iter().filter_map(|r| r.unplug_us)),
    }
}

/// The deepest dip of the received rate while the steps ran, in percent of the median rate
/// then: `(1 - lowest / median) * 100`. Only samples that end after the drill's start and no
/// later than `end_ms` count; None with fewer than three.
pub fn rate_dip_pct(series: &[RatePoint], end_ms: f64) -> Option<(f64, f64)> {
    let mut rx: Vec<f64> = series
        .iter()
        .filter(|p| p.t_ms > 0.0 && p.t_ms <= end_ms)
        .map(|p| p.rx_pps)
        .collect();
    if rx.len() < 3 {
        return None;
    }
    rx.sort_by(f64::total_cmp);
    let median = rx[rx.len() / 2];
    if median <= 0.0 {
        return Some((100.0, median));
    }
    Some(((1.0 - rx[0] / median) * 100.0, median))
}

/// Judges `o` by `c`.
pub fn evaluate(c: &Criteria, o: &Outcome) -> Verdict {
    let mut rows = Vec::new();
    let attach = o.mode == "attach";
    let count = |rows: &mut Vec<Row>, name: &'static str, bound: u64, v: Option<u64>, why: &str| {
        rows.push(match v {
            Some(v) => Row {
                criterion: name,
                bound: format!("<= {bound}"),
                measured: v.to_string(),
                pass: Some(v <= bound),
            },
            None => Row {
                criterion: name,
                bound: format!("<= {bound}"),
                measured: why.to_owned(),
                pass: None,
            },
        })
    };
    let p = &o.pktgen;
    let lost = if attach {
        p["missing_so_far"].as_u64()
    } else {
        p["lost"].as_u64()
    };
    count(&mut rows, "lost", c.lost, lost, "not reported");
    for (name, bound) in [
        ("duplicated", c.duplicated),
        ("reordered", c.reordered),
        ("corrupted", c.corrupted),
    ] {
        count(&mut rows, name, bound, p[name].as_u64(), "not reported");
    }
    let l = &o.l2fwd;
    let mbufs = (!attach)
        .then(|| l["mbufs_in_use_at_exit"].as_u64())
        .flatten();
    count(
        &mut rows,
        "mbufs_in_use_at_exit",
        c.mbufs_in_use_at_exit,
        mbufs,
        if attach {
            "l2fwd still runs"
        } else {
            "not reported"
        },
    );
    if c.balanced {
        let b = balanced(l);
        let pass = b.as_ref().map(|b| b.0);
        rows.push(Row {
            criterion: "balanced",
            bound: "rx=tx+drop+fly".into(),
            measured: match b {
                Some((true, _)) => "yes".into(),
                Some((false, text)) => text,
                None => "not reported".into(),
            },
            pass,
        });
    }
    let s = removal_summary(o);
    rows.push(match s.latency_us {
        Some(p) => Row {
            criterion: "removal_latency_p99_us",
            bound: format!("<= {}", c.removal_latency_p99_us),
            measured: format!("{:.1} (n={})", p.p99, p.count),
            pass: Some(p.p99 <= c.removal_latency_p99_us),
        },
        None => Row {
            criterion: "removal_latency_p99_us",
            bound: format!("<= {}", c.removal_latency_p99_us),
            measured: "no removals".into(),
            pass: None,
        },
    });
    let gap = o
        .worker_gaps
        .iter()
        .map(|g| g.max_loop_gap_us)
        .reduce(f64::max);
    rows.push(Row {
        criterion: "worker_stall_us",
        bound: format!("<= {}", c.worker_stall_us),
        measured: gap.map_or("not reported".into(), |g| format!("{g:.1}")),
        pass: gap.map(|g| g <= c.worker_stall_us),
    });
    let dip = rate_dip_pct(&o.series, o.steps_end_ms);
    rows.push(Row {
        criterion: "rate_dip_pct",
        bound: format!("<= {}", c.rate_dip_pct),
        measured: dip.map_or("too few samples".into(), |(d, _)| format!("{d:.1}")),
        pass: dip.map(|(d, _)| d <= c.rate_dip_pct),
    });
    Verdict {
        pass: rows.iter().all(|r| r.pass != Some(false)),
        criteria: rows,
    }
}

/// Whether l2fwd's books balance (rx = tx + dropped + in flight), and the sum if not.
fn balanced(l: &Value) -> Option<(bool, String)> {
    let rx = l["rx_packets"].as_u64()?;
    let tx = l["tx_packets"].as_u64()?;
    let fly = l["in_flight"].as_u64()?;
    let dropped: u64 = l["dropped"]
        .as_object()?
        .values()
        .filter_map(Value::as_u64)
        .sum();
    Some((
        rx == tx + dropped + fly,
        format!("{rx}!={tx}+{dropped}+{fly}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{GapWindow, LcoreGap, Removal};
    use serde_json::json;

    fn outcome() -> Outcome {
        Outcome {
            mode: "start",
            steps: vec![],
            removals: (1..=100)
                .map(|i| Removal {
                    step: i,
                    t_ms: i as f64,
                    channel: "c".into(),
                    latency_us: i as f64,
                    grace_us: Some(1.0),
                    stop_us: None,
                    unplug_us: None,
                    drained: 0,
                    recopied: 0,
                })
                .collect(),
            steps_end_ms: 1000.0,
            series_source: "pktgen report",
            series: [100.0, 100.0, 50.0, 100.0, 0.0]
                .iter()
                .enumerate()
                .map(|(i, &rx)| RatePoint {
                    t_ms: 100.0 * (i as f64 + 1.0) + if rx == 0.0 { 1000.0 } else { 0.0 },
                    rx_pps: rx,
                    tx_pps: 100.0,
                })
                .collect(),
            worker_gaps: vec![GapWindow {
                window: 2,
                start_ms: 0.0,
                end_ms: 100.0,
                max_loop_gap_us: 40.0,
                lcores: vec![LcoreGap {
                    lcore: 1,
                    max_loop_gap_us: 40.0,
                    whole_window: false,
                }],
            }],
            pktgen: json!({"lost": 0, "duplicated": 0, "reordered": 2, "corrupted": 0}),
            l2fwd: json!({"rx_packets": 10, "tx_packets": 8, "in_flight": 1,
                          "dropped": {"tx_full": 1}, "mbufs_in_use_at_exit": 0}),
        }
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let p = percentiles((1..=100).map(f64::from)).unwrap();
        assert_eq!((p.count, p.p50, p.p99, p.max), (100, 50.0, 99.0, 100.0));
        let p = percentiles([7.0]).unwrap();
        assert_eq!((p.p50, p.p99), (7.0, 7.0));
        assert!(percentiles([]).is_none());
    }

    #[test]
    fn rows_name_what_failed() {
        let o = outcome();
        let v = evaluate(&Criteria::default(), &o);
        assert!(!v.pass);
        assert_eq!(v.failed(), vec!["reordered"]);
        let row = |n: &str| {
            v.criteria
                .iter()
                .find(|r| r.criterion == n)
                .unwrap()
                .clone()
        };
        assert_eq!(row("balanced").pass, Some(true));
        assert_eq!(row("removal_latency_p99_us").measured, "99.0 (n=100)");
        // The 0 pps sample is after the steps: the dip is 50 %.
        assert_eq!(row("rate_dip_pct").measured, "50.0");
        assert_eq!(row("worker_stall_us").pass, Some(true));
        let c = Criteria {
            reordered: 2,
            removal_latency_p99_us: 1.0,
            ..Criteria::default()
        };
        let v = evaluate(&c, &o);
        assert_eq!(v.failed(), vec!["removal_latency_p99_us"]);
        assert!(v.table().ends_with("FAIL\n"));
        let c = Criteria {
            reordered: 2,
            ..Criteria::default()
        };
        let v = evaluate(&c, &o);
        assert!(v.pass && v.table().ends_with("PASS\n"), "{}", v.table());
    }

    #[test]
    fn attach_mode_counts_missing_as_lost_and_skips_the_exit_count() {
        let mut o = outcome();
        o.mode = "attach";
        o.pktgen = json!({"missing_so_far": 3, "duplicated": 0, "reordered": 0, "corrupted": 0});
        o.l2fwd["rx_packets"] = json!(11);
        let v = evaluate(&Criteria::default(), &o);
        assert_eq!(v.failed(), vec!["lost", "balanced"]);
        let mbufs = &v.criteria[4];
        assert_eq!(
            (mbufs.pass, mbufs.measured.as_str()),
            (None, "l2fwd still runs")
        );
    }
}
