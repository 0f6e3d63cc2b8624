//! Explanations against values computed independently: the cases of
//! `tests/fixtures/explanations.json` (written from the definitions by
//! `scripts/gen_explain_fixtures.py`) and small examples worked by hand.

use serde_json::Value;

use super::*;

const FIXTURES: &str = include_str!("../../../tests/fixtures/explanations.json");

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= 1e-12 * expected.abs().max(1.0),
        "{what}: {actual} != {expected}"
    );
}

fn window(case: &Value, name: &str) -> Distribution {
    let numbers = |value: &Value| -> Vec<f64> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    Distribution::from_bucket_counts(
        numbers(&case["bounds"]),
        numbers(&case[name]),
        case[format!("{name}_sum")].as_f64(),
    )
    .unwrap()
}

/// The lower and upper edge of the buckets `first..=last`, as an
/// explanation names them.
fn edges(bounds: &[f64], first: usize, last: usize) -> (Option<f64>, Option<f64>) {
    let lower = if first == 0 {
        (bounds[0] > 0.0).then_some(0.0)
    } else {
        Some(bounds[first - 1])
    };
    (lower, bounds.get(last).copied())
}

#[test]
fn explanations_match_the_independently_computed_fixtures() {
    let fixtures: Value = serde_json::from_str(FIXTURES).unwrap();
    for case in fixtures["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (reference, current) = (window(case, "reference"), window(case, "current"));
        let windows = Windows {
            reference: &reference,
            current: &current,
        };
        for (method, key) in [
            (Method::Psi, "psi"),
            (Method::ChiSquare, "chi_square"),
            (Method::Share, "share"),
            (Method::Ks, "share"),
        ] {
            let explanation = Explanation::of(windows, method, "confidence").unwrap();
            let expected = case[key].as_array().unwrap();
            assert_eq!(
                explanation.buckets.len(),
                expected.len(),
                "{name} {method:?}: {:?}",
                explanation.buckets
            );
            for (bucket, row) in explanation.buckets.iter().zip(expected) {
                let what = format!("{name} {method:?} {row}");
                let index = |i: usize| row[i].as_u64().unwrap() as usize;
                let (lower, upper) = edges(reference.bounds(), index(0), index(1));
                assert_eq!((bucket.lower, bucket.upper), (lower, upper), "{what}");
                assert_close(bucket.reference_share, row[2].as_f64().unwrap(), &what);
                assert_close(bucket.current_share, row[3].as_f64().unwrap(), &what);
                assert_close(bucket.contribution, row[4].as_f64().unwrap(), &what);
            }
            match method {
                Method::Ks => {
                    let gap = explanation.cdf_gap.as_ref().unwrap();
                    let row = &case["cdf_gap"];
                    let bound = reference.bounds()[row[0].as_u64().unwrap() as usize];
                    assert_eq!(gap.bound, bound, "{name}");
                    assert_close(gap.reference, row[1].as_f64().unwrap(), name);
                    assert_close(gap.current, row[2].as_f64().unwrap(), name);
                }
                _ => assert_eq!(explanation.cdf_gap, None, "{name} {method:?}"),
            }
            let shifts = &case["shifts"];
            for (shift, statistic) in [
                (&explanation.mean, "mean"),
                (&explanation.p50, "p50"),
                (&explanation.p95, "p95"),
                (&explanation.p99, "p99"),
            ] {
                let what = format!("{name} {statistic}");
                let before = shifts["reference"][statistic].as_f64().unwrap();
                let after = shifts["current"][statistic].as_f64().unwrap();
                assert_close(shift.reference, before, &what);
                assert_close(shift.current, after, &what);
                assert_close(shift.change, after - before, &what);
            }
        }
    }
}

/// Reference `12, 4, 14, 10` and current `3, 11, 5, 1` on bounds 1, 2, 4:
/// the example of `docs/statistics.md` 4.3 and 10.
fn worked_example() -> (Distribution, Distribution) {
    let bounds = vec![1.0, 2.0, 4.0];
    (
        Distribution::from_bucket_counts(bounds.clone(), vec![12.0, 4.0, 14.0, 10.0], None)
            .unwrap(),
        Distribution::from_bucket_counts(bounds, vec![3.0, 11.0, 5.0, 1.0], None).unwrap(),
    )
}

#[test]
fn the_worked_example_reads_as_the_statistics_page_says() {
    let (reference, current) = worked_example();
    let windows = Windows {
        reference: &reference,
        current: &current,
    };
    let explain = |method| Explanation::of(windows, method, "x").unwrap().summary;
    // Chi-square: pools (1, 2] at 10.8, (2, +Inf) at 2.4, (0, 1] at 1.2.
    // Shares: (1, 2] 10% -> 55%, (2, +Inf) 60% -> 30%, (0, 1] 30% -> 15%.
    // Medians: rank 20 of 40 is 4 of 14 into (2, 4], 2 + 2 * 4/14 = 2.57;
    // rank 10 of 20 is 7 of 11 into (1, 2], 1.64, written to the bounds'
    // places (none). The p95 and p99 are 4 in both windows.
    assert_eq!(
        explain(Method::ChiSquare),
        "x mass moved from >2 (60% -> 30%), 0-1 (30% -> 15%) to 1-2 (10% -> 55%); p50 3 -> 2"
    );
    // PSI ranks (1, 2], then (4, +Inf) and (0, 1]; shares as above, with
    // (4, +Inf) 25% -> 5%.
    assert_eq!(
        explain(Method::Psi),
        "x mass moved from >4 (25% -> 5%), 0-1 (30% -> 15%) to 1-2 (10% -> 55%); p50 3 -> 2"
    );
    // KS ranks by share difference (45, 20 and 15 points, the same three);
    // cumulative shares 30/15, 40/70, 75/95 at 1, 2, 4; largest gap at 2.
    assert_eq!(
        explain(Method::Ks),
        "x mass moved from >4 (25% -> 5%), 0-1 (30% -> 15%) to 1-2 (10% -> 55%); share at or below 2: 40% -> 70%; p50 3 -> 2"
    );
}

#[test]
fn adjacent_buckets_moving_the_same_way_read_as_one_range() {
    // Bounds 0.25 .. 1: mass moves from (0.75, 1] to (0.25, 0.75], both
    // halves of which gained.
    let bounds = vec![0.25, 0.5, 0.75, 1.0];
    let reference =
        Distribution::from_bucket_counts(bounds.clone(), vec![0.0, 10.0, 10.0, 80.0, 0.0], None)
            .unwrap();
    let current =
        Distribution::from_bucket_counts(bounds, vec![0.0, 30.0, 30.0, 40.0, 0.0], None).unwrap();
    let windows = Windows {
        reference: &reference,
        current: &current,
    };
    let explanation = Explanation::of(windows, Method::Share, "confidence").unwrap();
    assert_eq!(explanation.buckets.len(), 3);
    assert_eq!(explanation.p50.direction, Direction::Down);
    assert_eq!(explanation.mean.direction, Direction::Down);
    assert_close(explanation.mean.change, -0.15, "mean");
    // Medians: rank 50 is 30 of 80 into (0.75, 1], 0.84375; rank 50 is 20
    // of 30 into (0.5, 0.75], 0.66667. The p95 moves less (0.984375 to
    // 0.96875), the p99 from 0.996875 to 0.99375. Means (representatives):
    // 0.8 to 0.65.
    assert_eq!(
        explanation.summary,
        "confidence mass moved from 0.75-1.00 (80% -> 40%) to 0.25-0.75 (20% -> 60%); p50 0.84 -> 0.67"
    );
}

#[test]
fn close_values_get_the_places_that_show_the_change() {
    assert_eq!(distinct(0.931, 0.934, 2), ("0.931".into(), "0.934".into()));
    assert_eq!(distinct(0.93, 0.93, 2), ("0.93".into(), "0.93".into()));
    assert_eq!(
        distinct(1.0, 1.0000001, 2),
        ("1.00000".into(), "1.00000".into())
    );
}

#[test]
fn ranges_name_open_ends_and_negative_bounds() {
    assert_eq!(range(Some(0.9), Some(1.0), 2), "0.90-1.00");
    assert_eq!(range(None, Some(-1.0), 2), "<=-1.00");
    assert_eq!(range(Some(-1.0), Some(0.0), 1), "-1.0 to 0.0");
    assert_eq!(range(Some(10.0), None, 3), ">10.000");
    assert_eq!(decimals(&[0.005, 0.01, 10.0]), 3);
    assert_eq!(decimals(&[1.0, 2.0, 4.0]), 0);
}

#[test]
fn identical_windows_have_nothing_that_moved() {
    let (reference, _) = worked_example();
    let windows = Windows {
        reference: &reference,
        current: &reference,
    };
    let explanation = Explanation::of(windows, Method::Psi, "x").unwrap();
    assert!(explanation.buckets.is_empty());
    assert_eq!(explanation.p50.direction, Direction::Unchanged);
    assert_eq!(explanation.summary, "x bucket shares unchanged; p50 3 -> 3");
}

#[test]
fn windows_that_cannot_be_compared_have_no_explanation() {
    let (reference, current) = worked_example();
    let empty = Distribution::from_bucket_counts(vec![1.0, 2.0, 4.0], vec![0.0; 4], None).unwrap();
    let other_bounds =
        Distribution::from_bucket_counts(vec![1.0, 2.0, 5.0], vec![1.0; 4], None).unwrap();
    for (reference, current) in [
        (&reference, &empty),
        (&empty, &current),
        (&reference, &other_bounds),
    ] {
        let windows = Windows { reference, current };
        assert_eq!(Explanation::of(windows, Method::Share, "x"), None);
    }
}

#[test]
fn when_the_largest_terms_all_gained_the_largest_loss_is_named_too() {
    let bounds = vec![1.0, 2.0, 3.0, 4.0, 5.0];
    let reference =
        Distribution::from_bucket_counts(bounds.clone(), vec![1.0, 1.0, 1.0, 1.0, 96.0, 0.0], None)
            .unwrap();
    let current =
        Distribution::from_bucket_counts(bounds, vec![10.0, 10.0, 10.0, 10.0, 60.0, 0.0], None)
            .unwrap();
    let windows = Windows {
        reference: &reference,
        current: &current,
    };
    let explanation = Explanation::of(windows, Method::Psi, "x").unwrap();
    // PSI terms: 0.171 for each of (0, 1] .. (3, 4] (1% -> 10%), 0.164 for
    // (4, 5] (96% -> 60%). The three largest gained, so (4, 5] follows.
    let named: Vec<&str> = explanation
        .buckets
        .iter()
        .map(|b| b.range.as_str())
        .collect();
    assert_eq!(named, ["0-1", "1-2", "2-3", "4-5"]);
    // Medians: 4 + 46/96 = 4.48 and 4 + 10/60 = 4.17, equal at no places.
    assert_eq!(
        explanation.summary,
        "x mass moved from 4-5 (96% -> 60%) to 0-3 (3% -> 30%); p50 4.5 -> 4.2"
    );
}
