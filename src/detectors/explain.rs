//! Explanations of drift decisions: which buckets moved most, where the
//! cumulative distributions differ most (for KS), how the mean and the
//! p50, p95 and p99 shifted, and one line that says it at a glance, all
//! computed from the two windows the detector just compared, as
//! `docs/statistics.md` (section 10) defines them.
//!
//! Like the detectors, this is pure: no clock, no I/O. The buckets are
//! ranked by the deciding detector's own per-bucket terms where it has them
//! (PSI's, chi-square's on its pooled buckets), so an explanation names the
//! buckets that made the score; the other detectors rank by the share
//! difference.

use serde::{Deserialize, Serialize};

use super::chi_square::{pool_term, pools};
use super::ks::largest_gap;
use super::{Method, Windows};
use crate::stats::Distribution;

/// How many buckets an explanation names, largest contribution first (one
/// more when these all moved the same way; see [`Explanation::buckets`]).
pub const TOP_BUCKETS: usize = 3;

/// Up, down or not at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
    Unchanged,
}

/// One bucket (or pooled range of buckets) and how its share moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketShift {
    /// The range as the summary line writes it, such as `0.90-1.00`.
    pub range: String,
    /// Lower edge; `None` below the lowest bound when it is at or below 0.
    pub lower: Option<f64>,
    /// Upper edge (`le`); `None` for the `+Inf` bucket.
    pub upper: Option<f64>,
    /// Share of the reference window's observations, 0 to 1.
    pub reference_share: f64,
    /// Share of the current window's observations, 0 to 1.
    pub current_share: f64,
    /// The bucket's term in the ranking: its PSI or chi-square term, or the
    /// absolute share difference.
    pub contribution: f64,
}

impl BucketShift {
    /// Whether the bucket holds more of the current window than of the
    /// reference.
    pub fn gained(&self) -> bool {
        self.current_share > self.reference_share
    }
}

/// Where the cumulative proportions differ most.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CdfGap {
    /// The bucket bound (`le`).
    pub bound: f64,
    /// Share of the reference window at or below it.
    pub reference: f64,
    /// Share of the current window at or below it.
    pub current: f64,
}

/// A statistic in both windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shift {
    pub reference: f64,
    pub current: f64,
    /// `current - reference`, in the signal's unit.
    pub change: f64,
    pub direction: Direction,
}

impl Shift {
    pub fn new(reference: f64, current: f64) -> Shift {
        let change = current - reference;
        let direction = if change > 0.0 {
            Direction::Up
        } else if change < 0.0 {
            Direction::Down
        } else {
            Direction::Unchanged
        };
        Shift {
            reference,
            current,
            change,
            direction,
        }
    }
}

/// What moved between the reference and the current window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub method: Method,
    /// The [`TOP_BUCKETS`] largest contributions, largest first, and when
    /// they all gained share (or all lost some) the largest that moved the
    /// other way after them; buckets that contribute nothing are left out.
    pub buckets: Vec<BucketShift>,
    /// For KS only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdf_gap: Option<CdfGap>,
    pub mean: Shift,
    pub p50: Shift,
    pub p95: Shift,
    pub p99: Shift,
    /// The one line a person reads, such as `confidence mass moved from
    /// 0.90-1.00 (62% -> 41%) to 0.70-0.80 (5% -> 19%); p50 0.93 -> 0.81`.
    pub summary: String,
}

impl Explanation {
    /// Explains the comparison of `windows` for a detector of `method` on
    /// `signal`. `None` when the windows cannot be compared bucket by
    /// bucket: different bounds, or a window without observations.
    pub fn of(windows: Windows<'_>, method: Method, signal: &str) -> Option<Explanation> {
        let Windows { reference, current } = windows;
        if reference.bounds() != current.bounds() || reference.is_empty() || current.is_empty() {
            return None;
        }
        let mut buckets = match method {
            Method::Psi => psi_buckets(reference, current),
            Method::ChiSquare => chi_square_buckets(reference, current),
            Method::Ks | Method::Share => share_buckets(reference, current),
        };
        // Stable: equal contributions keep bucket order.
        buckets.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
        buckets.retain(|bucket| bucket.contribution > 0.0);
        // Shares sum to one in both windows, so where some buckets gained
        // others lost: when the largest terms all moved one way, the largest
        // that moved the other way is named too, so the line says from where
        // and to where.
        let gained = |bucket: &RawBucket| bucket.current_share > bucket.reference_share;
        let other_way = match buckets.get(..TOP_BUCKETS) {
            Some(top) if top.iter().all(gained) || !top.iter().any(gained) => {
                let way = gained(&top[0]);
                buckets[TOP_BUCKETS..]
                    .iter()
                    .position(|bucket| gained(bucket) != way)
            }
            _ => None,
        };
        if let Some(position) = other_way {
            buckets.swap(TOP_BUCKETS, TOP_BUCKETS + position);
            buckets.truncate(TOP_BUCKETS + 1);
        } else {
            buckets.truncate(TOP_BUCKETS);
        }
        let cdf_gap = (method == Method::Ks).then(|| {
            let (index, below_reference, below_current) = largest_gap(reference, current);
            CdfGap {
                bound: reference.bounds()[index],
                reference: below_reference,
                current: below_current,
            }
        });
        let decimals = decimals(reference.bounds());
        // Not collected in place: that would keep the room of every bucket.
        let mut shifts = Vec::with_capacity(buckets.len());
        shifts.extend(
            buckets
                .into_iter()
                .map(|raw| raw.shift(reference.bounds(), decimals)),
        );
        let explanation = Explanation {
            method,
            buckets: shifts,
            cdf_gap,
            mean: Shift::new(reference.mean(), current.mean()),
            p50: Shift::new(reference.quantile(0.5), current.quantile(0.5)),
            p95: Shift::new(reference.quantile(0.95), current.quantile(0.95)),
            p99: Shift::new(reference.quantile(0.99), current.quantile(0.99)),
            summary: String::new(),
        };
        Some(explanation.summarized(signal, decimals))
    }

    /// Writes [`Explanation::summary`] from the other fields, with numbers
    /// to `decimals` places (more where that would hide a change).
    ///
    /// The buckets that lost share are "from", those that gained "to";
    /// adjacent ones moving the same way are written as one range. KS adds
    /// its CDF gap; then the quantile of p50, p95 and p99 that moved most.
    pub fn summarized(mut self, signal: &str, decimals: usize) -> Explanation {
        let mut line = String::new();
        let merged = merge_adjacent(&self.buckets, decimals);
        let side = |gained: bool| {
            merged
                .iter()
                .filter(|bucket| bucket.gained() == gained)
                .map(|b| {
                    format!(
                        "{} ({} -> {})",
                        b.range,
                        percent(b.reference_share),
                        percent(b.current_share)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (from, to) = (side(false), side(true));
        line.push_str(signal);
        match (from.is_empty(), to.is_empty()) {
            (true, true) => line.push_str(" bucket shares unchanged"),
            (false, true) => line.push_str(&format!(" mass moved from {from}")),
            (true, false) => line.push_str(&format!(" mass moved to {to}")),
            (false, false) => line.push_str(&format!(" mass moved from {from} to {to}")),
        }
        if let Some(gap) = &self.cdf_gap {
            line.push_str(&format!(
                "; share at or below {}: {} -> {}",
                fixed(gap.bound, decimals),
                percent(gap.reference),
                percent(gap.current)
            ));
        }
        let quantiles = [("p50", &self.p50), ("p95", &self.p95), ("p99", &self.p99)];
        let (name, moved) = quantiles
            .into_iter()
            .reduce(|best, next| {
                if next.1.change.abs() > best.1.change.abs() {
                    next
                } else {
                    best
                }
            })
            .expect("three quantiles");
        let (before, after) = distinct(moved.reference, moved.current, decimals);
        line.push_str(&format!("; {name} {before} -> {after}"));
        // Kept with every drifting decision: no spare room.
        line.shrink_to_fit();
        self.summary = line;
        self
    }
}

/// A bucket range before its bounds are written out.
struct RawBucket {
    /// First and last bucket index of the range (equal but for pools).
    first: usize,
    last: usize,
    reference_share: f64,
    current_share: f64,
    contribution: f64,
}

impl RawBucket {
    fn shift(self, bounds: &[f64], decimals: usize) -> BucketShift {
        let lower = match self.first {
            0 if bounds[0] > 0.0 => Some(0.0),
            0 => None,
            first => Some(bounds[first - 1]),
        };
        let upper = bounds.get(self.last).copied();
        BucketShift {
            range: range(lower, upper, decimals),
            lower,
            upper,
            reference_share: self.reference_share,
            current_share: self.current_share,
            contribution: self.contribution,
        }
    }
}

fn psi_buckets(reference: &Distribution, current: &Distribution) -> Vec<RawBucket> {
    let (m, n) = (reference.total(), current.total());
    let (_, terms) = super::psi::terms(reference, current);
    terms
        .map(|(index, term)| RawBucket {
            first: index,
            last: index,
            reference_share: reference.counts()[index] / m,
            current_share: current.counts()[index] / n,
            contribution: term,
        })
        .collect()
}

fn chi_square_buckets(reference: &Distribution, current: &Distribution) -> Vec<RawBucket> {
    let (m, n) = (reference.total(), current.total());
    pools(reference, current)
        .into_iter()
        .map(|pool| RawBucket {
            first: pool.first,
            last: pool.last,
            reference_share: pool.reference / m,
            current_share: pool.current / n,
            contribution: pool_term(&pool, m, n),
        })
        .collect()
}

fn share_buckets(reference: &Distribution, current: &Distribution) -> Vec<RawBucket> {
    let (m, n) = (reference.total(), current.total());
    reference
        .counts()
        .iter()
        .zip(current.counts())
        .enumerate()
        .map(|(index, (a, b))| RawBucket {
            first: index,
            last: index,
            reference_share: a / m,
            current_share: b / n,
            contribution: (b / n - a / m).abs(),
        })
        .collect()
}

/// The ranked buckets in bound order, adjacent ones that moved the same way
/// joined into one range (shares and contributions added).
fn merge_adjacent(buckets: &[BucketShift], decimals: usize) -> Vec<BucketShift> {
    let mut sorted: Vec<&BucketShift> = buckets.iter().collect();
    sorted.sort_by(|a, b| {
        let key = |bucket: &BucketShift| bucket.upper.unwrap_or(f64::INFINITY);
        key(a).total_cmp(&key(b))
    });
    let mut merged: Vec<BucketShift> = Vec::new();
    for bucket in sorted {
        match merged.last_mut() {
            Some(last)
                if last.upper.is_some()
                    && last.upper == bucket.lower
                    && last.gained() == bucket.gained() =>
            {
                last.upper = bucket.upper;
                last.reference_share += bucket.reference_share;
                last.current_share += bucket.current_share;
                last.contribution += bucket.contribution;
                last.range = range(last.lower, last.upper, decimals);
            }
            _ => merged.push(bucket.clone()),
        }
    }
    // Largest contribution first, as the line reads.
    merged.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
    merged
}

/// `0.90-1.00`, `<=0.00` (lowest bound at or below 0), `>10.00` (`+Inf`).
fn range(lower: Option<f64>, upper: Option<f64>, decimals: usize) -> String {
    match (lower, upper) {
        (Some(lower), Some(upper)) if lower < 0.0 => {
            format!("{} to {}", fixed(lower, decimals), fixed(upper, decimals))
        }
        (Some(lower), Some(upper)) => {
            format!("{}-{}", fixed(lower, decimals), fixed(upper, decimals))
        }
        (None, Some(upper)) => format!("<={}", fixed(upper, decimals)),
        (Some(lower), None) => format!(">{}", fixed(lower, decimals)),
        (None, None) => "all".to_owned(),
    }
}

/// The decimal places the bounds need (shortest round-trip form), at most 6.
fn decimals(bounds: &[f64]) -> usize {
    bounds
        .iter()
        .map(|bound| {
            let text = bound.to_string();
            text.split_once('.')
                .map_or(0, |(_, fraction)| fraction.len())
        })
        .max()
        .unwrap_or(0)
        .min(6)
}

fn fixed(value: f64, decimals: usize) -> String {
    format!("{value:.decimals$}")
}

/// Both values to `decimals` places, or up to three more where they would
/// otherwise read the same while they differ.
fn distinct(reference: f64, current: f64, decimals: usize) -> (String, String) {
    let mut places = decimals;
    loop {
        let (before, after) = (fixed(reference, places), fixed(current, places));
        if before != after || reference == current || places >= decimals + 3 {
            return (before, after);
        }
        places += 1;
    }
}

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

#[cfg(test)]
mod tests;
