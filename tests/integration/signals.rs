//! From a Prometheus answer to per-model histograms: the grouped query's
//! answer, as Prometheus 2.42 returns it, decoded and grouped by model.

use model_monitor::model::ModelKey;
use model_monitor::sources::prometheus::{
    AnswerDecoder, HistogramGrouper, SignalError, VectorStream, grouper_labels,
};
use model_monitor::stats::{Histogram, HistogramError};

/// The shape of a real answer to the grouped confidence query: buckets with
/// `le` as the client library wrote it (`1.0`), the window's sum under
/// `le="sum"`, the count of series at the window's start under
/// `le="start"`, a model whose series are younger than the window (no
/// `le="start"`), a model without a `+Inf` bucket and a model without a version.
const ANSWER: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
{"metric":{"le":"+Inf","model":"churn","version":"v2"},"value":[1795785936.716,"200"]},
{"metric":{"le":"0.25","model":"churn","version":"v2"},"value":[1795785936.716,"20"]},
{"metric":{"le":"0.5","model":"churn","version":"v2"},"value":[1795785936.716,"60"]},
{"metric":{"le":"1.0","model":"churn","version":"v2"},"value":[1795785936.716,"200"]},
{"metric":{"le":"sum","model":"churn","version":"v2"},"value":[1795785936.716,"140"]},
{"metric":{"le":"start","model":"churn","version":"v2"},"value":[1795785936.716,"8"]},
{"metric":{"le":"0.5","model":"fraud","version":"v1"},"value":[1795785936.716,"3"]},
{"metric":{"le":"sum","model":"fraud","version":"v1"},"value":[1795785936.716,"1.5"]},
{"metric":{"le":"+Inf","model":"legacy"},"value":[1795785936.716,"NaN"]},
{"metric":{"le":"1","model":"legacy"},"value":[1795785936.716,"NaN"]}
]}}"#;

fn key(model: &str, version: &str) -> ModelKey {
    ModelKey(vec![
        ("model".to_owned(), model.to_owned()),
        ("version".to_owned(), version.to_owned()),
    ])
}

#[test]
fn turns_a_grouped_answer_into_one_histogram_per_model() {
    let group_by = vec!["model".to_owned(), "version".to_owned()];
    let wanted = grouper_labels(&group_by);
    let mut grouper = HistogramGrouper::default();
    let mut stream = VectorStream::new(200, &wanted, &mut grouper);
    stream.push(ANSWER.as_bytes()).unwrap();
    assert!(stream.finish().unwrap().is_empty());
    let models = grouper.finish(&group_by);

    assert_eq!(
        models.keys().cloned().collect::<Vec<_>>(),
        vec![key("churn", "v2"), key("fraud", "v1"), key("legacy", "")]
    );
    assert_eq!(
        models[&key("churn", "v2")].histogram,
        Ok(Histogram {
            bounds: vec![0.25, 0.5, 1.0],
            cumulative: vec![20.0, 60.0, 200.0, 200.0],
            sum: Some(140.0),
        })
    );
    assert_eq!(models[&key("churn", "v2")].series_at_start, 8.0);
    assert_eq!(models[&key("fraud", "v1")].series_at_start, 0.0);
    assert_eq!(
        models[&key("fraud", "v1")].histogram,
        Err(SignalError::Histogram(HistogramError::MissingInfBucket))
    );
    let legacy = models[&key("legacy", "")].histogram.as_ref().unwrap();
    assert_eq!(legacy.bounds, vec![1.0]);
    assert!(legacy.cumulative.iter().all(|count| count.is_nan()));
    assert_eq!(legacy.sum, None);
}
