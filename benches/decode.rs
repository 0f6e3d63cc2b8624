//! Decoding a grouped histogram answer: `VectorStream` feeding a
//! `HistogramGrouper`, then `finish`, on an answer shaped as Prometheus
//! writes the sidecar's query at 1,000 and 10,000 models (20 buckets, the
//! `sum` and `start` samples, bucket-major order: every model's `+Inf`
//! bucket, then every model's next bucket, as Prometheus sorts by `le`
//! before `model`), fed in 16 KB pieces as the body arrives.
//!
//! `scripts/bench-scale.py` measures the whole sidecar; this bench times
//! the decoding alone, which is most of a cycle's CPU.

mod common;

use std::hint::black_box;

use common::Numbers;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use model_monitor::sources::prometheus::{
    AnswerDecoder, HistogramGrouper, VectorStream, grouper_labels,
};

/// The answer's body for `models` models.
fn answer(models: usize) -> Vec<u8> {
    let mut numbers = Numbers(7);
    let les: Vec<String> = std::iter::once("+Inf".to_owned())
        .chain((1..20).map(|i| format!("{}", f64::from(i) * 0.05)))
        .chain(["sum".to_owned(), "start".to_owned()])
        .collect();
    // Prometheus sorts label values as strings: model-0, model-1, model-10, ...
    let mut names: Vec<String> = (0..models).map(|i| format!("model-{i}")).collect();
    names.sort();
    let mut body = String::from(r#"{"status":"success","data":{"resultType":"vector","result":["#);
    let mut first = true;
    for le in &les {
        for name in &names {
            if !first {
                body.push(',');
            }
            first = false;
            let value = 130.0 * numbers.next();
            body.push_str(&format!(
                r#"{{"metric":{{"le":"{le}","model":"{name}","version":"v1"}},"value":[1796161200,"{value}"]}}"#
            ));
        }
    }
    body.push_str("]}}");
    body.into_bytes()
}

fn bench_decode(criterion: &mut Criterion) {
    let group_by = vec!["model".to_owned(), "version".to_owned()];
    let wanted = grouper_labels(&group_by);
    let mut group = criterion.benchmark_group("decode_grouped_answer");
    group.sample_size(10);
    for models in [1_000, 10_000] {
        let body = answer(models);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(models), &body, |b, body| {
            b.iter(|| {
                let mut grouper = HistogramGrouper::default();
                let mut stream = VectorStream::new(200, &wanted, &mut grouper);
                for piece in body.chunks(16 * 1024) {
                    stream.push(piece).expect("decodes");
                }
                stream.finish().expect("ends");
                black_box(grouper.finish(&group_by))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
