//! Model EMA against timm 1.0's ModelEmaV2 and ModelEmaV3 (plain and with warmup) on the fixture
//! of scripts/fixtures/make_ema_fixtures.py: a Linear + BatchNorm1d state set before each update.

use kiln_engine::Tensor;
use kiln_train::callbacks::{ema_step, EmaDecay};
use serde_json::Value;

/// The module's state as kiln tensors, by timm's names, at `step` (-1 = the initial state).
fn state(step: i64) -> Vec<(&'static str, Tensor)> {
    let float = |n: usize| -> Tensor {
        let v: Vec<f32> = (0..n)
            .map(|i| (0.37 * (step + 1) as f64 * (i + 1) as f64).sin() as f32)
            .collect();
        Tensor::from_vec(v, &[n]).unwrap()
    };
    vec![
        ("0.weight", float(12)),
        ("0.bias", float(4)),
        ("1.weight", float(4)),
        ("1.bias", float(4)),
        ("1.running_mean", float(4)),
        ("1.running_var", float(4)),
        (
            "1.num_batches_tracked",
            Tensor::from_vec(vec![step + 1], &[1]).unwrap(),
        ),
    ]
}

fn check(case: &str, decay: EmaDecay, compare_ints: bool) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ema/ema.json"
    ))
    .unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let trace = fixture["cases"][case].as_array().unwrap();
    let ema = state(-1);
    for (step, want) in trace.iter().enumerate() {
        let model = state(step as i64);
        let e: Vec<Tensor> = ema.iter().map(|(_, t)| t.clone()).collect();
        let m: Vec<Tensor> = model.iter().map(|(_, t)| t.clone()).collect();
        ema_step(&e, &m, decay.at(step + 1)).unwrap();
        for (name, t) in &ema {
            let is_int = name.ends_with("num_batches_tracked");
            if is_int && !compare_ints {
                continue;
            }
            let got = t.to_vec_f32().unwrap();
            let want: Vec<f64> = want[*name]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (f64::from(*g) - w).abs() <= 1e-6 * (1.0 + w.abs()),
                    "{case} step {step} {name}: {g} vs timm {w}"
                );
            }
        }
    }
}

#[test]
fn ema_v2_constant_decay() {
    // V2 lerps integer buffers and truncates them; kiln copies them (V3), so only floats compare.
    check("v2_decay0.9", EmaDecay::Constant(0.9), false);
}

#[test]
fn ema_v3_first_update_copies_then_decays() {
    check(
        "v3_decay0.9",
        EmaDecay::Scheduled {
            decay: 0.9,
            warmup: false,
        },
        true,
    );
}

#[test]
fn ema_v3_warmup() {
    check(
        "v3_warmup_decay0.99",
        EmaDecay::Scheduled {
            decay: 0.99,
            warmup: true,
        },
        true,
    );
}
