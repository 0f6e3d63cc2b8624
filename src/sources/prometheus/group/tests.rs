use super::*;

type Labels = BTreeMap<String, String>;

/// One sample of an answer, with all its labels.
struct Sample {
    labels: Labels,
    value: f64,
}

/// Feeds the samples to a [`HistogramGrouper`] as the decoders do: the
/// `group_by` values, then `le`, a missing label as `""`.
fn group_windows(samples: Vec<Sample>, group_by: &[String]) -> BTreeMap<ModelKey, GroupedWindow> {
    let mut grouper = HistogramGrouper::default();
    for sample in &samples {
        let labels: Vec<Cow<'_, str>> = grouper_labels(group_by)
            .into_iter()
            .map(|name| Cow::Borrowed(sample.labels.get(name).map_or("", String::as_str)))
            .collect();
        grouper.sample(&labels, sample.value);
    }
    grouper.finish(group_by)
}

/// [`group_windows`]' histograms.
fn group_histograms(
    samples: Vec<Sample>,
    group_by: &[String],
) -> BTreeMap<ModelKey, Result<Histogram, SignalError>> {
    group_windows(samples, group_by)
        .into_iter()
        .map(|(key, window)| (key, window.histogram))
        .collect()
}

fn sample(model: &str, le: Option<&str>, value: f64) -> Sample {
    let mut labels = Labels::new();
    labels.insert("model".to_owned(), model.to_owned());
    labels.insert("version".to_owned(), "v1".to_owned());
    if let Some(le) = le {
        labels.insert("le".to_owned(), le.to_owned());
    }
    Sample { labels, value }
}

fn key(model: &str) -> ModelKey {
    ModelKey(vec![
        ("model".to_owned(), model.to_owned()),
        ("version".to_owned(), "v1".to_owned()),
    ])
}

fn histogram(bounds: &[f64], cumulative: &[f64], sum: Option<f64>) -> Histogram {
    Histogram {
        bounds: bounds.to_vec(),
        cumulative: cumulative.to_vec(),
        sum,
    }
}

fn group_by() -> Vec<String> {
    vec!["model".to_owned(), "version".to_owned()]
}

fn check(samples: &[(&str, Option<&str>, f64)], expected: Result<Histogram, SignalError>) {
    let samples = samples
        .iter()
        .map(|(model, le, value)| sample(model, *le, *value))
        .collect();
    let grouped = group_histograms(samples, &group_by());
    assert_eq!(grouped.len(), 1, "{grouped:?}");
    assert_eq!(grouped.get(&key("a")), Some(&expected));
}

#[test]
fn builds_cumulative_buckets_sorted_by_bound() {
    check(
        &[
            ("a", Some("+Inf"), 10.0),
            ("a", Some("1"), 8.0),
            ("a", Some("0.05"), 1.0),
            ("a", Some("sum"), 4.5),
            ("a", Some("0.5"), 5.0),
        ],
        Ok(histogram(
            &[0.05, 0.5, 1.0],
            &[1.0, 5.0, 8.0, 10.0],
            Some(4.5),
        )),
    );
    check(
        &[
            ("a", Some("1e-3"), 1.0),
            ("a", Some("5"), 2.0),
            ("a", Some("-1"), 0.0),
            ("a", Some("+Inf"), 3.0),
        ],
        Ok(histogram(&[-1.0, 0.001, 5.0], &[0.0, 1.0, 2.0, 3.0], None)),
    );
    check(
        &[("a", Some("+Inf"), 0.0)],
        Ok(histogram(&[], &[0.0], None)),
    );
}

#[test]
fn passes_non_finite_counts_through() {
    let grouped = group_histograms(
        vec![
            sample("a", Some("1"), f64::NAN),
            sample("a", Some("+Inf"), f64::INFINITY),
        ],
        &group_by(),
    );
    let histogram = grouped[&key("a")].as_ref().unwrap();
    assert!(histogram.cumulative[0].is_nan());
    assert_eq!(histogram.cumulative[1], f64::INFINITY);
}

#[test]
fn rejects_broken_models_one_by_one() {
    let missing_inf = Err(SignalError::Histogram(HistogramError::MissingInfBucket));
    check(&[("a", Some("1"), 1.0)], missing_inf.clone());
    check(&[("a", Some("sum"), 1.0)], missing_inf);
    check(
        &[("a", Some("fast"), 1.0), ("a", Some("+Inf"), 1.0)],
        Err(SignalError::BadLe("fast".to_owned())),
    );
    check(
        &[("a", None, 1.0), ("a", Some("+Inf"), 1.0)],
        Err(SignalError::BadLe(String::new())),
    );
    check(
        &[("a", Some("NaN"), 1.0), ("a", Some("+Inf"), 1.0)],
        Err(SignalError::BadLe("NaN".to_owned())),
    );
    check(
        &[("a", Some("-Inf"), 1.0), ("a", Some("+Inf"), 1.0)],
        Err(SignalError::BadLe("-Inf".to_owned())),
    );
    check(
        &[
            ("a", Some("1"), 1.0),
            ("a", Some("1.0"), 2.0),
            ("a", Some("+Inf"), 4.0),
        ],
        Ok(Histogram {
            bounds: vec![1.0],
            cumulative: vec![3.0, 4.0],
            sum: None,
        }),
    );
    check(
        &[
            ("a", Some("sum"), 1.0),
            ("a", Some("sum"), 2.0),
            ("a", Some("+Inf"), 1.0),
        ],
        Err(SignalError::DuplicateLe("sum".to_owned())),
    );
}

/// Samples of one answer: model, `le` (if any) and value.
type Samples<'a> = &'a [(&'a str, Option<&'a str>, f64)];

#[test]
fn the_same_le_text_twice_is_an_error_unlike_two_spellings_of_one_bound() {
    let duplicate = |le: &str| Err(SignalError::DuplicateLe(le.to_owned()));
    let cases: [(Samples, _); 4] = [
        (
            &[
                ("a", Some("0.5"), 10.0),
                ("a", Some("1"), 20.0),
                ("a", Some("0.5"), 10.0),
                ("a", Some("+Inf"), 20.0),
            ],
            duplicate("0.5"),
        ),
        (
            &[("a", Some("+Inf"), 5.0), ("a", Some("+Inf"), 5.0)],
            duplicate("+Inf"),
        ),
        // The duplicate is found between two spellings of its bound too.
        (
            &[
                ("a", Some("1"), 1.0),
                ("a", Some("1.0"), 2.0),
                ("a", Some("1"), 1.0),
                ("a", Some("+Inf"), 4.0),
            ],
            duplicate("1"),
        ),
        // Two spellings of one bound, each once, are one bucket.
        (
            &[
                ("a", Some("1.0"), 2.0),
                ("a", Some("1"), 1.0),
                ("a", Some("1e0"), 4.0),
                ("a", Some("+Inf"), 8.0),
            ],
            Ok(histogram(&[1.0], &[7.0, 8.0], None)),
        ),
    ];
    for (samples, expected) in cases {
        check(samples, expected);
    }
    assert_eq!(
        SignalError::DuplicateLe("0.5".to_owned()).to_string(),
        r#"duplicate le label "0.5""#
    );
}

/// Feeds `models` models of `buckets` series each to a grouper with
/// `limits`; returns what it reports and how many models it kept.
fn feed_with_limits(
    limits: AnswerLimits,
    models: usize,
    buckets: usize,
) -> (Option<String>, usize) {
    let mut grouper = HistogramGrouper::with_limits(limits);
    for model in 0..models {
        let name = model.to_string();
        for bucket in 0..buckets {
            let le = if bucket + 1 == buckets {
                "+Inf".to_owned()
            } else {
                bucket.to_string()
            };
            let labels = [
                Cow::Borrowed(name.as_str()),
                Cow::Borrowed("v1"),
                Cow::Owned(le),
            ];
            grouper.sample(&labels, 1.0);
        }
    }
    let error = grouper.overflow().map(|error| error.to_string());
    (error, grouper.models.len())
}

#[test]
fn an_answer_past_its_limits_is_too_large_and_kept_no_further() {
    let limits = AnswerLimits {
        series: 100,
        models: 10,
    };
    assert_eq!(feed_with_limits(limits, 10, 10), (None, 10));
    let (error, kept) = feed_with_limits(limits, 11, 1);
    assert_eq!(
        error.as_deref(),
        Some("answer exceeds the limit of 10 models (prometheus.max_models)")
    );
    assert_eq!(kept, 10);
    let (error, kept) = feed_with_limits(limits, 5, 21);
    assert_eq!(
        error.as_deref(),
        Some("answer exceeds the limit of 100 series (prometheus.max_series)")
    );
    assert_eq!(kept, 5);
    let error = PromError::TooMany {
        what: "series",
        limit: 1,
    };
    assert_eq!(error.reason(), "too_large");
    // No limit by default.
    assert_eq!(
        feed_with_limits(AnswerLimits::default(), 1000, 3),
        (None, 1000)
    );
}

#[test]
fn counts_the_series_at_the_window_start_and_drops_models_with_nothing_else() {
    let grouped = group_windows(
        vec![
            sample("a", Some("1"), 1.0),
            sample("a", Some("start"), 4.0),
            sample("a", Some("+Inf"), 2.0),
            sample("young", Some("+Inf"), 2.0),
            sample("gone", Some("start"), 2.0),
        ],
        &group_by(),
    );
    assert_eq!(
        grouped.keys().collect::<Vec<_>>(),
        vec![&key("a"), &key("young")]
    );
    assert_eq!(grouped[&key("a")].series_at_start, 4.0);
    assert_eq!(
        grouped[&key("a")].histogram,
        Ok(histogram(&[1.0], &[1.0, 2.0], None))
    );
    assert_eq!(grouped[&key("young")].series_at_start, 0.0);
    check(
        &[
            ("a", Some("start"), 1.0),
            ("a", Some("start"), 1.0),
            ("a", Some("+Inf"), 1.0),
        ],
        Err(SignalError::DuplicateLe("start".to_owned())),
    );
}

#[test]
fn one_broken_model_leaves_the_others_alone() {
    let grouped = group_histograms(
        vec![
            sample("a", Some("1"), 1.0),
            sample("b", Some("1"), 1.0),
            sample("b", Some("+Inf"), 2.0),
        ],
        &group_by(),
    );
    assert_eq!(
        grouped[&key("a")],
        Err(SignalError::Histogram(HistogramError::MissingInfBucket))
    );
    assert_eq!(grouped[&key("b")], Ok(histogram(&[1.0], &[1.0, 2.0], None)));
}

#[test]
fn groups_by_label_values_with_missing_labels_as_empty() {
    let mut unversioned = sample("c", Some("+Inf"), 1.0);
    unversioned.labels.remove("version");
    let grouped = group_histograms(
        vec![
            sample("a", Some("+Inf"), 1.0),
            unversioned,
            sample("a", Some("2"), 1.0),
        ],
        &group_by(),
    );
    let keys: Vec<&ModelKey> = grouped.keys().collect();
    let unversioned_key = ModelKey(vec![
        ("model".to_owned(), "c".to_owned()),
        ("version".to_owned(), String::new()),
    ]);
    assert_eq!(keys, vec![&key("a"), &unversioned_key]);
    assert_eq!(unversioned_key.get("version"), Some(""));
    assert_eq!(unversioned_key.get("le"), None);
    assert_eq!(grouped[&key("a")], Ok(histogram(&[2.0], &[1.0, 1.0], None)));
}
