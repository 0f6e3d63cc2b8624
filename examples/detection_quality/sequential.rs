//! Candidates for catching a sudden shift sooner than the 5 m window alone:
//! multi-window rules (the 5 m window or its newest minute or slice, each
//! tested at half the false-alarm rate, as SRE burn-rate alerts pair a
//! long and a short window) and a CUSUM of per-slice means.

use model_monitor::config::TestRule;
use model_monitor::detectors::{
    ChiSquareDetector, DriftDetector, ExceedanceDetector, KsDetector, PsiDetector, Verdict, Windows,
};
use model_monitor::stats::Distribution;

use super::{Frame, Method, Outcome, Sequential};

/// The default rule at half the default false-alarm rate, so that two
/// windows tested together keep the default rate (Bonferroni).
fn half_rate(min_effect: f64) -> TestRule {
    TestRule {
        threshold: None,
        false_alarm_rate: 0.0005,
        min_effect,
    }
}

/// Which short window a multi-window rule tests beside the 5 m window.
#[derive(Clone, Copy)]
enum Short {
    /// The newest two slices (1 m).
    Minute,
    /// The newest slice (30 s).
    Slice,
}

fn pick(frame: &Frame, short: Short) -> &Distribution {
    match short {
        Short::Minute => &frame.short,
        Short::Slice => &frame.newest,
    }
}

/// The verdict of `detector` on the reference and `current`.
fn verdict(
    detector: &dyn DriftDetector,
    reference: &Distribution,
    current: &Distribution,
) -> Outcome {
    match detector.detect(Windows { reference, current }) {
        Ok(detection) => match detection.verdict {
            Verdict::Drift => Outcome::Alarm,
            Verdict::NoDrift => Outcome::Quiet,
            _ => Outcome::NoDecision,
        },
        Err(_) => Outcome::NoDecision,
    }
}

/// Drift when the detector says so on the 5 m window or on the short one,
/// each at half the false-alarm rate; no decision when neither decides.
fn multi_window(
    name: &'static str,
    detector: impl DriftDetector + 'static,
    short: Short,
) -> Method {
    Method {
        name,
        ours: false,
        // Unused: the frame rule decides.
        decide: Box::new(|_, _| Outcome::NoDecision),
        sequential: Some(Box::new(move |frame: &Frame| {
            let long = verdict(&detector, &frame.reference, &frame.current);
            let short = verdict(&detector, &frame.reference, pick(frame, short));
            match (long, short) {
                (Outcome::Alarm, _) | (_, Outcome::Alarm) => Outcome::Alarm,
                (Outcome::NoDecision, Outcome::NoDecision) => Outcome::NoDecision,
                _ => Outcome::Quiet,
            }
        })),
        fresh: None,
    }
}

/// Two-sided CUSUM on the newest slice's mean in standard errors against
/// the reference, `z = (mean_slice - mean_ref) / (sd_ref / sqrt(n_slice))`:
/// `S+ = max(0, S+ + z - k)`, `S- = max(0, S- - z - k)`, an alarm when
/// either passes `h` (then both restart at 0). With `k = 0.5` and `h = 6`
/// the in-control run length is about 1,300 evaluations for normal `z`.
/// Slices under 30 observations are skipped (no decision).
fn cusum() -> Sequential {
    const K: f64 = 0.5;
    const H: f64 = 6.0;
    let (mut upper, mut lower) = (0.0_f64, 0.0_f64);
    Box::new(move |frame: &Frame| {
        let slice = &frame.newest;
        let spread = frame.reference.stddev();
        if slice.total() < 30.0 || frame.reference.is_empty() || spread <= 0.0 {
            return Outcome::NoDecision;
        }
        let z = (slice.mean() - frame.reference.mean()) / (spread / slice.total().sqrt());
        upper = (upper + z - K).max(0.0);
        lower = (lower - z - K).max(0.0);
        if upper > H || lower > H {
            (upper, lower) = (0.0, 0.0);
            Outcome::Alarm
        } else {
            Outcome::Quiet
        }
    })
}

/// The candidates, for both signals (`latency` adds the exceedance test's).
pub(super) fn candidates(latency: bool) -> Vec<Method> {
    let mut methods = vec![
        multi_window(
            "ks, 5m or 1m, alpha/2 each (multi-window)",
            KsDetector::new(half_rate(0.1)),
            Short::Minute,
        ),
        multi_window(
            "ks, 5m or 30s, alpha/2 each",
            KsDetector::new(half_rate(0.1)),
            Short::Slice,
        ),
        multi_window(
            "psi, 5m or 1m, alpha/2 each",
            PsiDetector::new(half_rate(0.1)),
            Short::Minute,
        ),
        multi_window(
            "chi_square, 5m or 1m, alpha/2 each",
            ChiSquareDetector::new(half_rate(0.1)),
            Short::Minute,
        ),
    ];
    if latency {
        methods.push(multi_window(
            "exceedance p99, 5m or 1m, alpha/2 each",
            ExceedanceDetector::new(0.99, half_rate(0.5)),
            Short::Minute,
        ));
    }
    methods.push(Method {
        name: "CUSUM of 30 s slice means (k 0.5, h 6), mean only",
        ours: false,
        // Unused: the CUSUM decides.
        decide: Box::new(|_, _| Outcome::NoDecision),
        sequential: Some(cusum()),
        fresh: Some(cusum),
    });
    methods
}
