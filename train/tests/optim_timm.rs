//! kiln's optimizers against timm 1.0's: parameter traces of every supported name over a
//! two-group MLP (fixtures/optim/traces.json, made by scripts/fixtures/make_optim_fixtures.py),
//! resnet layer-decay groups, exact resume from a state dict, and clear errors for the names
//! kiln refuses.

use kiln_engine::{DType, Device, Tensor};
use kiln_nn::{create_model, Kind, ModelArgs, NamedTensor};
use kiln_train::optim::{
    create_optimizer, layer_decay_groups, layer_decayed_params, Optimizer, OptimizerConfig,
};
use serde_json::Value;
use std::collections::BTreeMap;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/optim/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// The MLP's parameters at the fixture's initial values, on `device`.
fn mlp_params(fx: &Value, device: Device) -> Vec<NamedTensor> {
    mlp_params_as(fx, device, DType::F32)
}

/// The MLP's parameters at the fixture's initial values, on `device`, as `dtype`.
fn mlp_params_as(fx: &Value, device: Device, dtype: DType) -> Vec<NamedTensor> {
    fx["shapes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let name = s[0].as_str().unwrap().to_string();
            let shape: Vec<usize> = s[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let t = Tensor::from_vec(floats(&fx["init"][&name]), &shape)
                .unwrap()
                .to_dtype(dtype)
                .unwrap()
                .to_device(device)
                .unwrap();
            t.requires_grad_(true);
            NamedTensor {
                name,
                tensor: t,
                kind: Kind::Parameter,
            }
        })
        .collect()
}

fn args(fx: &Value, opt: &str) -> OptimizerConfig {
    OptimizerConfig {
        opt: opt.into(),
        lr: fx["lr"].as_f64(),
        momentum: fx["momentum"].as_f64().unwrap(),
        weight_decay: fx["weight_decay"].as_f64().unwrap(),
        ..OptimizerConfig::default()
    }
}

/// Gives every parameter the fixture's gradient of `step`, then steps at that step's lr.
fn step(optim: &mut dyn Optimizer, fx: &Value, step: usize) {
    for p in optim.params() {
        let g = Tensor::from_vec(floats(&fx["grads"][step][&p.name]), p.tensor.shape())
            .unwrap()
            .to_device(p.tensor.device())
            .unwrap();
        p.tensor.set_grad(Some(g));
    }
    optim.step(fx["lrs"][step].as_f64().unwrap()).unwrap();
}

fn values(optim: &dyn Optimizer) -> BTreeMap<String, Vec<f32>> {
    optim
        .params()
        .iter()
        .map(|p| {
            let t = p.tensor.to_dtype(DType::F32).unwrap();
            (p.name.clone(), t.to_vec::<f32>().unwrap())
        })
        .collect()
}

/// The first entry of `got` off `want` by more than 1e-5 relative plus `atol`.
fn mismatch_within(got: &[f32], want: &[f32], atol: f32) -> Option<(usize, f32, f32)> {
    got.iter()
        .zip(want)
        .enumerate()
        .find(|(_, (g, w))| (*g - *w).abs() > 1e-5 * w.abs() + atol)
        .map(|(i, (g, w))| (i, *g, *w))
}

/// The first entry of `got` off `want` by more than 1e-5 relative (1e-7 absolute near 0).
fn mismatch(got: &[f32], want: &[f32]) -> Option<(usize, f32, f32)> {
    mismatch_within(got, want, 1e-7)
}

/// The arguments of a fixture case: its name, its kwargs, no lr for relative steps.
fn case_args(fx: &Value, case: &Value) -> OptimizerConfig {
    let mut a = args(fx, case["opt"].as_str().unwrap());
    a.kwargs = case["kwargs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    if case["relative"].as_bool().unwrap() {
        a.lr = None;
    }
    a
}

/// The traces of fixture `file` kiln does not follow: one line per name, at its first mismatch.
fn trace_failures(file: &str) -> (usize, Vec<String>) {
    let fx = fixture(file);
    let atol = fx["atol"].as_f64().map_or(1e-7, |a| a as f32);
    let mut failures = Vec::new();
    let traces = fx["traces"].as_object().unwrap();
    for (name, case) in traces {
        let mut optim = create_optimizer(&case_args(&fx, case), mlp_params(&fx, Device::Cpu))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for (s, want) in case["trace"].as_array().unwrap().iter().enumerate() {
            step(optim.as_mut(), &fx, s);
            let got = values(optim.as_ref());
            let bad = got.iter().find_map(|(p, v)| {
                mismatch_within(v, &floats(&want[p]), atol).map(|m| (p.clone(), m))
            });
            if let Some((p, (i, g, w))) = bad {
                failures.push(format!("{name} step {s} {p}[{i}]: kiln {g} timm {w}"));
                break;
            }
        }
    }
    (traces.len(), failures)
}

/// Fails with every name of the fixture `file` whose trace leaves timm's.
fn assert_follows_timm(file: &str) {
    let (n, failures) = trace_failures(file);
    assert!(
        failures.is_empty(),
        "{} of {n} names off timm:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_supported_name_follows_timms_trace() {
    assert_follows_timm("traces.json");
}

/// Muon's names on a model with a conv weight, a tall matrix and a head timm routes to the
/// AdamW fallback. Newton–Schulz runs in bf16: where a summation order decides a rounding tie
/// the other way, an entry moves by one bf16 ulp of its step, which the fixture's `atol` allows.
#[test]
fn muon_follows_timms_trace() {
    assert_follows_timm("muon.json");
}

/// Kron's names on a conv weight (four triangular factors, or three when flattened), a matrix, a
/// bias and a scalar: timm's noise from torch's generator and coins from random.Random(1337).
#[test]
fn kron_follows_timms_trace() {
    assert_follows_timm("kron.json");
}

#[test]
fn layer_decay_groups_match_timm_for_every_family() {
    let fx = fixture("layer_decay.json");
    let decay = fx["layer_decay"].as_f64().unwrap();
    let min_scale = fx["min_scale"].as_f64().unwrap();
    let wd = fx["weight_decay"].as_f64().unwrap();
    for (model_name, want) in fx["models"].as_object().unwrap() {
        let model = create_model(model_name, &ModelArgs::default()).unwrap();
        let params = model.named_parameters();
        let names: Vec<String> = params.iter().map(|p| p.name.clone()).collect();
        assert_eq!(names.len(), want.as_object().unwrap().len(), "{model_name}");
        let layers =
            layer_decay_groups(&names, &model.group_matcher(false), decay, min_scale).unwrap();
        let grouped = layer_decayed_params(params, wd, &model.no_weight_decay(), &layers, None);
        for p in &grouped {
            let w = &want[&p.name];
            let (scale, decay) = (w["lr_scale"].as_f64().unwrap(), w["weight_decay"].as_f64());
            assert!(
                (p.lr_scale as f64 - scale).abs() < 1e-6 * scale,
                "{model_name} {}: lr scale {} timm {scale}",
                p.name,
                p.lr_scale
            );
            let decay = decay.unwrap();
            assert!(
                (p.weight_decay as f64 - decay).abs() <= 1e-7 * decay,
                "{model_name} {}: weight decay {} timm {decay}",
                p.name,
                p.weight_decay
            );
        }
    }
}

/// Steps `n` times straight through, or `k` then save, load into a fresh optimizer over fresh
/// parameters holding the same values, and step the rest: the parameters must be identical.
#[test]
fn state_dict_round_trip_resumes_exactly() {
    let (k, n) = (7, 13);
    let mlp = [
        "sgd",
        "adamw",
        "nadam",
        "radam",
        "laprop",
        "adopt",
        "cadamw",
        "rmsproptf",
        "lookahead_adamw",
        "adafactorbv",
        "kron",
        "kronc",
    ];
    let cases = mlp
        .iter()
        .map(|&name| ("traces.json", name))
        .chain([("muon.json", "adamuon"), ("muon.json", "nmuon")]);
    for (file, name) in cases {
        let fx = fixture(file);
        let mut straight =
            create_optimizer(&args(&fx, name), mlp_params(&fx, Device::Cpu)).unwrap();
        let mut first = create_optimizer(&args(&fx, name), mlp_params(&fx, Device::Cpu)).unwrap();
        for s in 0..n {
            step(straight.as_mut(), &fx, s);
        }
        for s in 0..k {
            step(first.as_mut(), &fx, s);
        }
        let saved = first.state_dict();
        let params = mlp_params(&fx, Device::Cpu);
        for (p, q) in params.iter().zip(first.params()) {
            p.tensor.copy_(&q.tensor).unwrap();
        }
        let mut resumed = create_optimizer(&args(&fx, name), params).unwrap();
        resumed.load_state_dict(&saved).unwrap();
        for s in k..n {
            step(resumed.as_mut(), &fx, s);
        }
        assert_eq!(
            values(straight.as_ref()),
            values(resumed.as_ref()),
            "{name}"
        );
    }
}

#[test]
fn refused_and_unknown_names_say_why() {
    let fx = fixture("traces.json");
    for (name, says) in [
        ("adahessian", "second-order"),
        ("bnbadamw8bit", "8-bit"),
        ("lookahead_bnblion8bit", "8-bit"),
        ("no_such_opt", "unknown optimizer"),
    ] {
        let err = match create_optimizer(&args(&fx, name), mlp_params(&fx, Device::Cpu)) {
            Ok(_) => panic!("{name} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(says) && err.contains("--opt"), "{name}: {err}");
    }
}

#[test]
fn opt_kwargs_reach_the_optimizer_and_unknown_ones_are_refused() {
    let fx = fixture("traces.json");
    let mut a = args(&fx, "momentum");
    a.kwargs = vec![("nesterov".into(), "true".into())];
    let mut with_kwarg = create_optimizer(&a, mlp_params(&fx, Device::Cpu)).unwrap();
    let mut nesterov =
        create_optimizer(&args(&fx, "nesterov"), mlp_params(&fx, Device::Cpu)).unwrap();
    for s in 0..3 {
        step(with_kwarg.as_mut(), &fx, s);
        step(nesterov.as_mut(), &fx, s);
    }
    assert_eq!(values(with_kwarg.as_ref()), values(nesterov.as_ref()));
    a.kwargs = vec![("no_such_kwarg".into(), "1".into())];
    let err = create_optimizer(&a, mlp_params(&fx, Device::Cpu))
        .err()
        .unwrap();
    assert!(err.to_string().contains("no_such_kwarg"), "{err}");
}

/// Whether a CUDA device (or the emulator) and NVRTC are there; says why not.
fn cuda_available() -> bool {
    let probe = Tensor::from_vec(vec![1.0f32], &[1])
        .and_then(|t| t.to_device(Device::Cuda(0)))
        .and_then(|t| t.add_scalar(1.0));
    if let Err(e) = &probe {
        eprintln!("skipped on CUDA: {e}");
    }
    probe.is_ok()
}

/// The first entry of `got` off `want` by more than `rtol` relative plus 1e-4.
fn off_by(got: &[f32], want: &[f32], rtol: f32) -> Option<(usize, f32, f32)> {
    got.iter()
        .zip(want)
        .enumerate()
        .find(|(_, (g, w))| (*g - *w).abs() > rtol * w.abs() + 1e-4)
        .map(|(i, (g, w))| (i, *g, *w))
}

/// f16 and bf16 parameters step through the same rules (single-pass and with parts): their
/// trace stays within a few roundings of the type of the f32 one, and CUDA equals the CPU
/// within one rounding.
#[test]
fn half_params_follow_the_f32_trace_on_cpu_and_cuda() {
    let fx = fixture("traces.json");
    let cuda = cuda_available();
    let run = |name: &str, device, dtype| {
        let mut optim = create_optimizer(&args(&fx, name), mlp_params_as(&fx, device, dtype))
            .unwrap_or_else(|e| panic!("{name} {dtype:?}: {e}"));
        for s in 0..5 {
            step(optim.as_mut(), &fx, s);
        }
        for p in optim.params() {
            assert_eq!(p.tensor.dtype(), dtype, "{name}: {} changed dtype", p.name);
        }
        values(optim.as_ref())
    };
    let mut failures = Vec::new();
    for (dtype, eps) in [(DType::F16, 1.0 / 1024.0), (DType::BF16, 1.0 / 128.0)] {
        for name in [
            "sgd",
            "adamw",
            "lion",
            "adan",
            "bnbademamix",
            "cadamw",
            "lamb",
        ] {
            let want = run(name, Device::Cpu, DType::F32);
            let cpu = run(name, Device::Cpu, dtype);
            let gpu = cuda.then(|| run(name, Device::Cuda(0), dtype));
            for (p, w) in &want {
                if let Some((i, g, w)) = off_by(&cpu[p], w, 4.0 * eps) {
                    failures.push(format!("{name} {dtype:?} {p}[{i}]: {g}, f32 {w}"));
                }
                let Some(gpu) = &gpu else { continue };
                if let Some((i, g, c)) = off_by(&gpu[p], &cpu[p], eps) {
                    failures.push(format!("{name} {dtype:?} {p}[{i}]: cuda {g} cpu {c}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every supported name steps the same on CUDA (the emulator without a GPU) as on the CPU.
#[test]
fn every_supported_name_steps_the_same_on_cuda() {
    if !cuda_available() {
        return;
    }
    let mut failures = Vec::new();
    for file in ["traces.json", "muon.json"] {
        let fx = fixture(file);
        cuda_failures(&fx, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The names of `fx` whose CUDA step differs from the CPU one, appended to `failures`.
fn cuda_failures(fx: &Value, failures: &mut Vec<String>) {
    for (name, case) in fx["traces"].as_object().unwrap() {
        let run = |device| {
            let a = case_args(fx, case);
            let mut optim = create_optimizer(&a, mlp_params(fx, device)).unwrap();
            for s in 0..7 {
                step(optim.as_mut(), fx, s);
            }
            values(optim.as_ref())
        };
        let (cpu, cuda) = (run(Device::Cpu), run(Device::Cuda(0)));
        for (p, want) in &cpu {
            if let Some((i, g, w)) = mismatch(&cuda[p], want) {
                failures.push(format!("{name} {p}[{i}]: cuda {g} cpu {w}"));
            }
        }
    }
}
