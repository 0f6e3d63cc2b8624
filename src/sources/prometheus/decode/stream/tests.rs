use super::*;

/// Collects what the decoder hands over, owned.
#[derive(Default)]
struct Collect(Vec<(Vec<String>, f64)>);

impl VectorSink for Collect {
    fn sample(&mut self, labels: &[Cow<'_, str>], value: f64) {
        self.0
            .push((labels.iter().map(|l| l.to_string()).collect(), value));
    }
}

/// Samples as Prometheus writes them take the fast path; anything else
/// is left to serde, and a cut sample waits for more bytes.
#[test]
fn compact_samples_are_read_without_serde() {
    let wanted = ["model", "le"];
    let mut labels = vec![Cow::Borrowed(""); 2];
    let sample =
        br#"{"metric":{"le":"0.5","model":"m-1","version":"v1"},"value":[1700000000.123,"12.5"]},"#;
    match compact_sample(sample, &wanted, &mut labels) {
        Compact::Sample(end, value) => {
            assert_eq!(end, sample.len() - 1);
            assert_eq!(value, Some(12.5));
            assert_eq!(labels, ["m-1", "0.5"]);
        }
        _ => panic!("not read as a compact sample"),
    }
    for cut in 1..sample.len() - 1 {
        assert!(
            matches!(
                compact_sample(&sample[..cut], &wanted, &mut labels),
                Compact::Incomplete
            ),
            "cut at {cut}"
        );
    }
    for other in [
        &br#"{"metric": {},"value":[1,"2"]}"#[..],
        br#"{"value":[1,"2"],"metric":{}}"#,
        br#"{"metric":{"model":"a\"b"},"value":[1,"2"]}"#,
        br#"{"metric":{},"histogram":[1,{}]}"#,
        br#"{"metric":{},"value":[1,"x"]}"#,
    ] {
        assert!(
            matches!(compact_sample(other, &wanted, &mut labels), Compact::Other),
            "{}",
            String::from_utf8_lossy(other)
        );
    }
}

/// Answers on which fuzzing found the streamed reading and the whole
/// one disagreeing: each is now refused by both, as serde refuses it,
/// whether it arrives at once or byte by byte.
#[test]
fn streamed_and_whole_readings_refuse_the_same_answers() {
    let start = r#"{"status":"success","data":{"resultType":"vector","result":["#;
    let sample = r#"{"metric":{"model":"a"},"value":[1700000000,"1"]}"#;
    let bodies = [
        format!("{start},]}}}}"),
        format!("{start}{sample},]}}}}"),
        format!("{start}{sample},,{sample}]}}}}"),
        format!("{start}{sample}{sample}]}}}}"),
        format!("{start},{sample}]}}}}"),
        format!(r#"{start}{{"metric":{{}},"value":[1e999,"1"]}}]}}}}"#),
        format!(r#"{start}{{"metric":{{}},"value":[-1e999,"1"]}}]}}}}"#),
    ];
    let wanted = ["model"];
    for body in &bodies {
        let whole = parse_vector_into(200, body.as_bytes(), &wanted, &mut Collect::default());
        assert!(
            matches!(whole, Err(PromError::Decode(_))),
            "{body}: {whole:?}"
        );
        for size in [body.len(), 1] {
            let mut sink = Collect::default();
            let mut stream = VectorStream::new(200, &wanted, &mut sink);
            let streamed = body
                .as_bytes()
                .chunks(size)
                .try_for_each(|piece| stream.push(piece))
                .and_then(|()| stream.finish());
            assert!(
                matches!(streamed, Err(PromError::Decode(_))),
                "{body} in pieces of {size}: {streamed:?}"
            );
        }
    }
    let good = format!("{start}{sample} , {sample}\n]}}}}");
    let mut sink = Collect::default();
    let mut stream = VectorStream::new(200, &wanted, &mut sink);
    stream.push(good.as_bytes()).unwrap();
    assert!(stream.finish().unwrap().is_empty());
    assert_eq!(sink.0.len(), 2);
}

/// A streamed answer keeps only the sample being received, not the
/// body.
#[test]
fn a_streamed_vector_holds_one_sample_at_a_time() {
    let mut body = String::from(r#"{"status":"success","data":{"resultType":"vector","result":["#);
    for model in 0..10_000 {
        if model > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            r#"{{"metric":{{"le":"+Inf","model":"model-{model}"}},"value":[1700000000,"{model}"]}}"#
        ));
    }
    body.push_str("]}}");
    let wanted = ["model", "le"];
    let mut sink = Collect::default();
    let mut stream = VectorStream::new(200, &wanted, &mut sink);
    let mut most_held = 0;
    for piece in body.as_bytes().chunks(1000) {
        stream.push(piece).unwrap();
        most_held = most_held.max(stream.pending.len());
    }
    assert!(stream.finish().unwrap().is_empty());
    assert_eq!(sink.0.len(), 10_000);
    assert_eq!(
        sink.0[9_999],
        (vec!["model-9999".to_owned(), "+Inf".to_owned()], 9_999.0)
    );
    assert!(body.len() > 700_000);
    assert!(most_held < 1100, "held {most_held} bytes at once");
}

/// A sink that wants at most `limit` samples.
struct AtMost {
    seen: usize,
    limit: usize,
}

impl VectorSink for AtMost {
    fn sample(&mut self, _: &[Cow<'_, str>], _: f64) {
        self.seen += 1;
    }
    fn overflow(&self) -> Option<PromError> {
        (self.seen > self.limit).then_some(PromError::TooMany {
            what: "series",
            limit: self.limit,
        })
    }
}

/// Reading stops at the piece in which the sink passes its limit, for a
/// streamed answer and for one decoded whole alike.
#[test]
fn decoding_stops_once_the_sink_has_passed_its_limit() {
    let sample = r#"{"metric":{"le":"+Inf"},"value":[1,"1"]},"#;
    let mut body = String::from(r#"{"status":"success","data":{"resultType":"vector","result":["#);
    body.push_str(&sample.repeat(100));
    let mut sink = AtMost { seen: 0, limit: 10 };
    let mut stream = VectorStream::new(200, &[], &mut sink);
    let pieces: Vec<&[u8]> = body.as_bytes().chunks(sample.len()).collect();
    let failed_at = pieces
        .iter()
        .position(|piece| stream.push(piece).is_err())
        .expect("the limit stops the reading");
    assert!(failed_at < 15, "stopped only at piece {failed_at}");
    let whole = format!(
        "{{ \"status\":\"success\",\"data\":{{\"resultType\":\"vector\",\"result\":[{}]}}}}",
        sample.repeat(20).trim_end_matches(',')
    );
    let mut sink = AtMost { seen: 0, limit: 10 };
    let mut stream = VectorStream::new(200, &[], &mut sink);
    stream.push(whole.as_bytes()).unwrap();
    assert!(matches!(
        stream.finish(),
        Err(PromError::TooMany { limit: 10, .. })
    ));
}
