//! DropBlock against timm's `drop_block_2d` on the seed masks it drew
//! (fixtures/drop_block.safetensors, made by scripts/fixtures/make_drop_block_fixtures.py), its
//! seed rate and drop fraction, the CUDA backend against the CPU, and its place in resnet.

use kiln_engine::{manual_seed_thread, DType, Device, Tensor};
use kiln_nn::layers::{drop_blocks_from_seeds, DropBlock};
use kiln_nn::{create_model, load_safetensors, Model, ModelArgs, Module};
use std::collections::BTreeMap;
use std::path::Path;

fn fixture() -> BTreeMap<String, Tensor> {
    let path = format!(
        "{}/tests/fixtures/drop_block.safetensors",
        env!("CARGO_MANIFEST_DIR")
    );
    load_safetensors(Path::new(&path)).unwrap()
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32).unwrap().to_vec::<f32>().unwrap()
}

fn close(what: &str, got: &[f32], want: &[f32]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-6 + 1e-6 * w.abs(),
            "{what}[{i}]: {g} timm {w}"
        );
    }
}

/// The cases of the fixture: (x, seeds, timm's output, kh, kw).
fn cases() -> Vec<(Tensor, Tensor, Tensor, usize, usize)> {
    let fx = fixture();
    (0..)
        .map_while(|i| {
            let get = |k: &str| fx.get(&format!("{i}.{k}")).cloned();
            let block = f32s(&get("block")?);
            Some((
                get("x")?,
                get("seeds")?,
                get("out")?,
                block[0] as usize,
                block[1] as usize,
            ))
        })
        .collect()
}

#[test]
fn drop_block_matches_timm_on_its_seed_masks() {
    let cases = cases();
    assert_eq!(cases.len(), 6);
    for (i, (x, seeds, want, kh, kw)) in cases.iter().enumerate() {
        let got = drop_blocks_from_seeds(x, seeds, *kh, *kw).unwrap();
        assert_eq!(got.shape(), want.shape());
        close(&format!("case {i}"), &f32s(&got), &f32s(want));
    }
}

#[test]
fn drop_block_matches_on_cuda() {
    let probe = Tensor::from_vec(vec![1.0f32], &[1]).and_then(|t| t.to_device(Device::Cuda(0)));
    if let Err(e) = probe {
        eprintln!("skipped on CUDA: {e}");
        return;
    }
    for (i, (x, seeds, want, kh, kw)) in cases().iter().enumerate() {
        let on = |t: &Tensor| t.to_device(Device::Cuda(0)).unwrap();
        let got = drop_blocks_from_seeds(&on(x), &on(seeds), *kh, *kw).unwrap();
        close(&format!("cuda case {i}"), &f32s(&got), &f32s(want));
    }
}

#[test]
fn seed_rate_and_drop_fraction_follow_timms_formula() {
    let db = DropBlock {
        drop_prob: 0.1,
        block_size: 5,
        gamma_scale: 1.0,
        training: true,
    };
    // timm: γ = scale·p·H·W / (kh·kw) / ((H − kh + 1)(W − kw + 1)).
    let ((kh, kw), gamma) = db.block_and_gamma(64, 64);
    assert_eq!((kh, kw), (5, 5));
    let want = 0.1 * 4096.0 / 25.0 / (60.0 * 60.0);
    assert!((gamma - want).abs() < 1e-15, "{gamma} {want}");
    assert_eq!(db.block_and_gamma(3, 7).0, (3, 5));
    // About p of a large map is dropped (seeds overlap a little), the rest scaled to keep the mean.
    manual_seed_thread(3);
    let x = Tensor::ones(&[4, 2, 64, 64], DType::F32).unwrap();
    let y = f32s(&db.forward(&x).unwrap());
    let dropped = y.iter().filter(|v| **v == 0.0).count() as f64 / y.len() as f64;
    assert!((0.07..0.11).contains(&dropped), "dropped {dropped}");
    let mean = y.iter().map(|v| *v as f64).sum::<f64>() / y.len() as f64;
    assert!((mean - 1.0).abs() < 1e-4, "mean {mean}");
    let eval = DropBlock {
        training: false,
        ..db
    };
    assert_eq!(f32s(&eval.forward(&x).unwrap()), f32s(&x));
}

/// timm places DropBlock in the third and fourth stages only: with it, resnet18's training
/// forward changes (and still backpropagates), its eval forward does not.
/// (Training forwards move the BN statistics, so eval is compared with and without it after.)
#[test]
fn resnet_places_drop_block_in_stages_three_and_four() {
    // Residual branches whose last BN starts at zero would hide any change inside them.
    let args = ModelArgs {
        num_classes: 10,
        zero_init_last: false,
        ..ModelArgs::default()
    };
    manual_seed_thread(0);
    let mut model = create_model("resnet18", &args).unwrap();
    let x = Tensor::from_vec(
        (0..2 * 3 * 64 * 64)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect(),
        &[2, 3, 64, 64],
    )
    .unwrap();
    let forward = |m: &dyn Model| f32s(&m.forward(&x).unwrap());
    let stages = |m: &dyn Model| -> Vec<Vec<f32>> {
        let maps = m.forward_intermediates(&x).unwrap();
        maps.iter().map(f32s).collect()
    };
    let plain = stages(model.as_ref());
    model.set_drop_block(0.2).unwrap();
    let with = stages(model.as_ref());
    // act1, layer1, layer2 untouched; layer3 and layer4 dropped.
    assert_eq!(with[..3], plain[..3]);
    assert_ne!(with[3], plain[3]);
    assert_ne!(with[4], plain[4]);
    let dropped = model.forward(&x).unwrap();
    dropped.sum_all().unwrap().backward().unwrap();
    assert!(model
        .named_parameters()
        .iter()
        .all(|p| p.tensor.grad().is_some()));
    model.set_training(false);
    let eval = forward(model.as_ref());
    model.set_drop_block(0.0).unwrap();
    assert_eq!(forward(model.as_ref()), eval);
    assert!(model.set_drop_block(1.5).is_err());
}
