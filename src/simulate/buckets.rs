//! The bucket bounds of the histograms every simulated model exports.

/// Upper bounds of the `model_prediction_confidence` buckets, without `+Inf`.
pub const CONFIDENCE_BUCKETS: [f64; 20] = [
    0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85,
    0.9, 0.95, 1.0,
];

/// Upper bounds of the `model_request_duration_seconds` buckets (Prometheus
/// defaults), without `+Inf`.
pub const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
