//! The engines' own query limits, told apart from other errors: a query
//! refused because it reads too much (too long a range, too many series,
//! chunks or samples) fails with the reason `limit`, so an operator knows
//! to raise the engine's limit or shrink the monitor's window rather than
//! look for an outage. The engine's message is kept whole in the error.
//!
//! The fragments are the engines' own wording:
//!
//! - Prometheus (and Thanos Query, Cortex and Mimir, which run its engine):
//!   `query processing would load too many samples into memory in query
//!   execution` (HTTP 422, `execution`).
//! - Mimir: `the query time range exceeds the limit (query length: 721h,
//!   limit: 720h) (err-mimir-max-query-length)`, `the query exceeded the
//!   maximum number of series (limit: 100000 series)
//!   (err-mimir-max-series-per-query)`, and the same for chunks, chunk
//!   bytes and estimated chunks (HTTP 422 or 400).
//! - Cortex: `the query time range exceeds the limit (query length: ...,
//!   limit: ...)`, `expanding series: the query hit the max number of
//!   chunks limit (limit: ...)`, `... max number of series limit ...`.
//! - VictoriaMetrics: `cannot select more than -search.maxSamplesPerQuery=
//!   1000000000 samples; possible solutions: ...`, `the number of matching
//!   timeseries exceeds 300000; either narrow down the search or increase
//!   -search.max* command-line flag values ...`, and `too many points for
//!   the given step` (HTTP 422 or 400).

/// Lower-case fragments that only an engine's limit errors contain.
const LIMIT_FRAGMENTS: [&str; 8] = [
    "would load too many samples",
    "the query time range exceeds the limit",
    "the query exceeded the maximum number of",
    "the query hit the max number of",
    "max number of samples",
    "cannot select more than -search.max",
    "the number of matching timeseries exceeds",
    "too many points for the given step",
];

/// Whether an engine's error message says the query hit one of its limits.
pub(super) fn is_limit_message(message: &str) -> bool {
    let message = message.to_lowercase();
    LIMIT_FRAGMENTS
        .iter()
        .any(|fragment| message.contains(fragment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_engines_limit_errors() {
        let limits = [
            "query processing would load too many samples into memory in query execution",
            "the query time range exceeds the limit (query length: 721h0m0s, limit: 720h0m0s) (err-mimir-max-query-length)",
            "the query exceeded the maximum number of series (limit: 100000 series) (err-mimir-max-series-per-query). Consider reducing the time range and/or number of series selected by the query.",
            "the query exceeded the maximum number of chunks (limit: 2000000 chunks) (err-mimir-max-chunks-per-query)",
            "expanding series: the query hit the max number of chunks limit (limit: 2000000 chunks)",
            "expanding series: max number of samples exceeded",
            "cannot select more than -search.maxSamplesPerQuery=1000000000 samples; possible solutions: increase the -search.maxSamplesPerQuery; reduce time range for the query; use more specific label filters in order to select fewer series",
            "the number of matching timeseries exceeds 300000; either narrow down the search or increase -search.max* command-line flag values at vmselect (the most likely limit is -search.maxUniqueTimeseries)",
        ];
        for message in limits {
            assert!(is_limit_message(message), "{message}");
        }
        for other in [
            "1:11: parse error: unexpected identifier",
            "no org id",
            "context deadline exceeded",
            "",
        ] {
            assert!(!is_limit_message(other), "{other}");
        }
    }
}
