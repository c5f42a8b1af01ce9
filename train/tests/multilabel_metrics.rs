//! kiln's multi-label metrics against scikit-learn's on the same predictions
//! (fixtures/multilabel/metrics.json, made by scripts/fixtures/make_multilabel_fixtures.py):
//! per-class AP with ties, a class without positive (AP 0, kept in the mean), mAP and micro F1.

use kiln_train::metrics::MultiLabelMeter;

#[derive(serde::Deserialize)]
struct Fixture {
    classes: usize,
    scores: Vec<Vec<f32>>,
    targets: Vec<Vec<f32>>,
    ap: Vec<f64>,
    map: f64,
    f1_micro: std::collections::BTreeMap<String, f64>,
}

#[test]
fn metrics_match_scikit_learn() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/multilabel/metrics.json"
    );
    let f: Fixture = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut meter = MultiLabelMeter::new(f.classes);
    // Two batches: the metrics are of the whole pass.
    let (a, b) = f.scores.split_at(15);
    let (ta, tb) = f.targets.split_at(15);
    meter.update(&a.concat(), &ta.concat()).unwrap();
    meter.update(&b.concat(), &tb.concat()).unwrap();
    let close = |x: f64, y: f64| (x - y).abs() < 1e-12;
    let got = meter.scores(0.5);
    assert_eq!(got.class_ap.len(), f.ap.len());
    for (c, (g, w)) in got.class_ap.iter().zip(&f.ap).enumerate() {
        assert!(close(*g, *w), "class {c}: AP {g}, scikit-learn {w}");
    }
    assert!(
        close(got.map, f.map),
        "mAP {}, scikit-learn {}",
        got.map,
        f.map
    );
    for (t, want) in &f.f1_micro {
        let got = meter.f1(t.parse().unwrap());
        assert!(close(got, *want), "F1 at {t}: {got}, scikit-learn {want}");
    }
    // The fixture holds the cases named: a class without positive and one all tied.
    assert_eq!(f.ap[3], 0.0);
    assert!(f.scores.iter().all(|r| r[5] == 0.5));
}
