//! kiln's float32 error against float64, beside PyTorch's, for one model per family and per block
//! type (fixtures from scripts/fixtures/make_precision_fixtures.py).
//!
//! Each model runs in float32 and in float64 (the float32 weights cast) on the hashed weights and
//! input of the timm fixtures: eval logits, eval features, and a train-mode step's logits,
//! cross-entropy loss and the gradient of every parameter. kiln's float64 results must equal
//! timm's float64 ones (full tensors; gradients at the fixture's sampled indices) within
//! `F64_AGREEMENT`, so kiln's float64 run is the truth timm's float32 errors were measured against;
//! then kiln's float32 error against it must stay within twice PyTorch's own, per quantity (the
//! gradients': the worst parameter of either side). PyTorch's own error is the larger of its two
//! memory formats' (contiguous and channels-last, the kernels timm's train.py runs with and
//! without `--channels-last`), which differ by up to three orders of magnitude.

mod common;

use common::{fill_model, hashed_uniform, parity_input, test_args};
use kiln_engine::{DType, Tensor};
use kiln_nn::{create_model, load_safetensors, Model};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// How far kiln's and timm's float64 results may be apart, relative to the largest of each tensor:
/// both are float64 evaluations of the same formulas in different orders, and float64 rounding
/// (1.1e-16), amplified as the train-mode BatchNorms amplify float32's (up to 1e4 here), stays
/// below this by orders of magnitude, which are themselves far below either float32 error.
const F64_AGREEMENT: f64 = 1e-9;

/// The models whose timm float64 run holds float32 values, and how far its results are from
/// float64 for it: PyTorch's CPU `hardsigmoid` backward multiplies by `1.0f / 6.0f` in float64 too
/// (2.98e-8 from 1/6: the ESE, squeeze-excite and hard-swish models' gradients); XCiT's Fourier
/// position encoding and EVA-02's rotary tables are computed in float32 and cast. Their bound is
/// `F32_PARTS_AGREEMENT`; kiln computes all of these in float64.
const TIMM_F64_WITH_F32_PARTS: [&str; 7] = [
    "ese_vovnet19b_slim_dw",
    "eva02_tiny_patch14_224",
    "ghostnet_050",
    "ghostnetv2_100",
    "lcnet_050",
    "mobilenetv3_small_100",
    "xcit_nano_12_p16_224",
];

/// The agreement of the models in `TIMM_F64_WITH_F32_PARTS`: four units of float32 rounding (2^-22).
const F32_PARTS_AGREEMENT: f64 = 2.384185791015625e-7;

/// The quantities still over their bound, with kiln's error when measured: the test fails if one
/// comes within its bound (remove it here) or grows past this error by a tenth. test_nfnet's
/// logits: its features are within their bound (1.03e-6 against 1.30e-6) and its stages'
/// errors are PyTorch's channels-last ones within 16 % (8.6e-7 against 7.4e-7 after the stem,
/// 1.04e-6 against 9.5e-7 at the last stage), but the 20 logits the classifier makes of them are
/// 9.2e-7 from float64, where PyTorch's are 1.5e-7 (contiguous), 2.1e-7 (one thread) and 3.9e-7
/// (channels-last).
const STILL_OVER: [(&str, &str, f64); 2] = [
    ("test_nfnet", "eval", 9.23e-7),
    ("test_nfnet", "train", 9.23e-7),
];

/// The smallest bound on a float32 error: 8 units of float32 rounding (2^-21) at the tensor's
/// scale. Where PyTorch's own error is a unit or two (a single logit), twice it would ask kiln to
/// round the same way as PyTorch, not as well.
const F32_ROUNDING_FLOOR: f64 = 4.76837158203125e-7;

/// A gradient whose float64 values all stay below this fraction of the model's largest gradient is
/// zero by construction (the bias of a BatchNorm that a train-mode BatchNorm cancels): its float64
/// values are rounding noise, so its float32 error is measured against the model's largest
/// gradient (make_precision_fixtures.py's ZERO_BY_CONSTRUCTION).
const ZERO_BY_CONSTRUCTION: f64 = 1e-9;

/// Entries of each gradient the fixture stores (make_precision_fixtures.py's SAMPLES).
const SAMPLES: usize = 32;

/// The outputs compared whole, in the fixture's names; the gradients ("grads") are the fifth.
const OUTPUTS: [&str; 4] = ["eval", "features", "train", "loss"];

/// One run of a model in one dtype: the four outputs and every parameter's gradient.
struct Run {
    outputs: HashMap<&'static str, Vec<f64>>,
    grads: Vec<(String, Vec<f64>)>,
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap()
}

/// `name` built as the timm fixtures build it, filled with their hashed weights, cast to `dtype`,
/// run in eval mode and through one train step.
fn run(name: &str, dtype: DType) -> Run {
    let mut model: Box<dyn Model> =
        kiln_nn::init::skip_init(|| create_model(name, &test_args(name))).unwrap();
    fill_model(model.as_ref());
    model.to_dtype(dtype).unwrap();
    let x = parity_input().to_dtype(dtype).unwrap();
    model.set_training(false);
    let eval = model.forward(&x).unwrap();
    let features = model.forward_features(&x).unwrap();
    model.set_training(true);
    let train = model.forward(&x).unwrap();
    let target = Tensor::from_vec(vec![3i64, 8], &[2]).unwrap();
    let loss = train.cross_entropy(&target, 0.0).unwrap();
    loss.backward().unwrap();
    let grads = model
        .named_tensors()
        .into_iter()
        .filter_map(|t| Some((t.name, values(&t.tensor.grad()?))))
        .collect();
    let outputs = HashMap::from([
        ("eval", values(&eval)),
        ("features", values(&features)),
        ("train", values(&train.detach())),
        ("loss", values(&loss.detach())),
    ]);
    Run { outputs, grads }
}

fn largest(v: &[f64]) -> f64 {
    v.iter().fold(0f64, |m, x| m.max(x.abs()))
}

/// The largest |a - b| relative to the largest |b| (absolute where b is all zeros), as
/// make_precision_fixtures.py's `rel_err`.
fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    rel_err_to(a, b, largest(b))
}

/// The largest |a - b| relative to `scale` (absolute where it is 0).
fn rel_err_to(a: &[f64], b: &[f64], scale: f64) -> f64 {
    assert_eq!(a.len(), b.len(), "compared tensors differ in size");
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f64, f64::max);
    if scale > 0.0 {
        diff / scale
    } else {
        diff
    }
}

/// The fixture's sampled entries of the gradient `full` of parameter `name`.
fn sampled(name: &str, full: &[f64]) -> Vec<f64> {
    hashed_uniform(&format!("sample.{name}"), SAMPLES)
        .iter()
        .map(|u| full[(u * full.len() as f64) as usize])
        .collect()
}

/// timm's side of one model: its float64 results and its float32 errors.
struct Fixture {
    tensors: BTreeMap<String, Tensor>,
    /// Per quantity, timm's float32 error contiguous and channels-last.
    torch_err: HashMap<String, (f64, f64)>,
    grads_worst: String,
    grad_names: BTreeSet<String>,
    /// timm's float32 error of each gradient (the larger format's), by parameter.
    grad_torch_err: HashMap<String, f64>,
    zero_by_construction: BTreeSet<String>,
    /// The activations whose float64 input comes nearest a kink (make_precision_fixtures.py
    /// --kinks): module and distance relative to the input's largest magnitude.
    kinks: Vec<(String, f64)>,
}

impl Fixture {
    /// PyTorch's own float32 error of quantity `q`: the larger of its two memory formats'.
    fn torch_err(&self, q: &str) -> f64 {
        let (a, b) = self.torch_err[q];
        a.max(b)
    }
}

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/precision/{name}.safetensors"))
}

fn read_fixture(name: &str) -> Fixture {
    let path = fixture_path(name);
    let bytes = std::fs::read(&path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    let errors = |key: &str| -> HashMap<String, f64> {
        meta[key]
            .split(';')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.parse().unwrap())
            })
            .collect()
    };
    let (contiguous, channels_last) = (
        errors("torch_err_contiguous"),
        errors("torch_err_channels_last"),
    );
    let torch_err = contiguous
        .into_iter()
        .map(|(q, a)| {
            let b = channels_last[&q];
            (q, (a, b))
        })
        .collect();
    let tensors = load_safetensors(&path).unwrap();
    let kinks_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/precision/kinks.json");
    let kinks: serde_json::Value =
        serde_json::from_slice(&std::fs::read(kinks_path).unwrap()).unwrap();
    let kinks = kinks[name]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k[0].as_str().unwrap().to_string(), k[1].as_f64().unwrap()))
        .collect();
    let grad_torch_err = meta["grad_names"]
        .split(';')
        .map(String::from)
        .zip(tensors["grad_torch_err"].to_vec::<f64>().unwrap())
        .collect();
    Fixture {
        tensors,
        kinks,
        torch_err,
        grads_worst: meta["grads_worst"].clone(),
        grad_names: meta["grad_names"].split(';').map(String::from).collect(),
        grad_torch_err,
        zero_by_construction: meta["grads_zero_by_construction"]
            .split(';')
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect(),
    }
}

/// kiln's side of one quantity: its float32 error and its float64 agreement with timm's.
struct Measured {
    err: f64,
    agreement: f64,
}

/// kiln's bound on quantity `q`: twice PyTorch's own error, at least the rounding floor. The loss
/// is a single number, its rounding luck in PyTorch no measure of precision: its bound also
/// admits what the train logits' own bound implies for it (|δL| ≤ 2 max |δz| for a mean
/// cross-entropy, since each row of ∂L/∂z = softmax − onehot sums to 2 in absolute value).
fn bound(q: &str, fx: &Fixture) -> f64 {
    let own = (2.0 * fx.torch_err(q)).max(F32_ROUNDING_FLOOR);
    if q != "loss" {
        return own;
    }
    let logits = values(&fx.tensors["train"]);
    let loss = values(&fx.tensors["loss"])[0].abs();
    let implied = 2.0 * bound("train", fx) * largest(&logits) / loss;
    own.max(implied + F32_ROUNDING_FLOOR)
}

/// The kink that explains a gradient error at parameter `worst`, if any: an activation in the
/// same block (the module's parent prefixes `worst`) whose float64 input lies within the train
/// logits' own bound of a kink, nearer than float32 arithmetic can place it on either side. The
/// derivative there is whichever side rounding picks, in PyTorch as in kiln: dla34's gradients are
/// 6.1e-5 from float64 in PyTorch's contiguous run and 5.6e-2 in its channels-last one.
fn kink_beside(worst: &str, fx: &Fixture) -> Option<String> {
    let margin = bound("train", fx);
    fx.kinks.iter().find_map(|(module, distance)| {
        let parent = module.rsplit_once('.').map_or("", |(p, _)| p);
        let beside = !parent.is_empty() && worst.starts_with(&format!("{parent}."));
        (beside && *distance <= margin).then(|| format!("{module} at {distance:.1e}"))
    })
}

/// One model's rows: per quantity, PyTorch's errors (contiguous, channels-last), kiln's, kiln's
/// bound and kiln's float64 agreement with timm; failures appended to `failures`.
fn check(name: &str, table: &mut String, failures: &mut Vec<String>) {
    let fx = read_fixture(name);
    let (k32, k64) = (run(name, DType::F32), run(name, DType::F64));
    let ours: BTreeSet<String> = k64.grads.iter().map(|(n, _)| n.clone()).collect();
    if ours != fx.grad_names {
        failures.push(format!(
            "{name}: gradients of {:?} (kiln alone) and {:?} (timm alone)",
            ours.difference(&fx.grad_names).collect::<Vec<_>>(),
            fx.grad_names.difference(&ours).collect::<Vec<_>>()
        ));
        return;
    }
    let mut measured: Vec<(&str, Measured)> = OUTPUTS
        .iter()
        .map(|&q| {
            let (a, b) = (&k32.outputs[q], &k64.outputs[q]);
            let agreement = rel_err(b, &values(&fx.tensors[q]));
            (
                q,
                Measured {
                    err: rel_err(a, b),
                    agreement,
                },
            )
        })
        .collect();
    let grads = grad_errors(name, &k32, &k64, &fx, failures);
    measured.push((
        "grads",
        Measured {
            err: grads.err,
            agreement: grads.agreement,
        },
    ));
    let agreement_bound = if TIMM_F64_WITH_F32_PARTS.contains(&name) {
        F32_PARTS_AGREEMENT
    } else {
        F64_AGREEMENT
    };
    let kink = kink_beside(&grads.worst, &fx);
    for (q, m) in measured {
        let (contiguous, channels_last) = fx.torch_err[q];
        let bound = bound(q, &fx);
        let over = m.err > bound;
        let at_kink = over && q == "grads" && kink.is_some();
        let mark = match (over, at_kink) {
            (false, _) => String::new(),
            (true, true) => format!("  KINK {}", kink.clone().unwrap_or_default()),
            (true, false) if STILL_OVER.iter().any(|(n, sq, _)| *n == name && *sq == q) => {
                "  OVER (recorded)".to_string()
            }
            (true, false) => "  OVER".to_string(),
        };
        writeln!(
            table,
            "{name:<34} {q:<9} {contiguous:>9.2e} {channels_last:>9.2e} {:>9.2e} {bound:>9.2e} \
             {:>9.1e}{mark}",
            m.err, m.agreement,
        )
        .unwrap();
        let still_over = STILL_OVER
            .iter()
            .find(|(n, sq, _)| *n == name && *sq == q)
            .map(|&(_, _, err)| err);
        if let Some(recorded) = still_over {
            if !over || m.err > 1.1 * recorded {
                failures.push(format!(
                    "{name} {q}: STILL_OVER records {recorded:.2e}, kiln's error is now {:.2e} \
                     (bound {bound:.2e}): update the record",
                    m.err
                ));
            }
        } else if over && !at_kink {
            failures.push(format!(
                "{name} {q}: kiln's float32 error {:.2e} over {bound:.2e} (PyTorch's {contiguous:.2e} \
                 contiguous, {channels_last:.2e} channels-last)",
                m.err
            ));
        }
        if m.agreement > agreement_bound {
            failures.push(format!(
                "{name} {q}: kiln's float64 results are {:.2e} from timm's",
                m.agreement
            ));
        }
    }
    writeln!(
        table,
        "{name:<34} worst gradient: PyTorch's {}, kiln's {}; {} zero by construction; the float64 \
         gradient least like timm's: {}; the furthest from PyTorch's error: {}",
        fx.grads_worst,
        grads.worst,
        grads.zero,
        grads.least_agreeing,
        grads.furthest.join(", ")
    )
    .unwrap();
}

/// The gradients' side of one model's row.
struct GradErrors {
    /// kiln's largest float32 error over every parameter's gradient.
    err: f64,
    /// The parameter it is of.
    worst: String,
    /// kiln's largest float64 difference from timm's, at the fixture's samples.
    agreement: f64,
    /// The parameter it is of.
    least_agreeing: String,
    /// How many gradients are zero by construction.
    zero: usize,
    /// The three gradients whose float32 error is the largest multiple of PyTorch's, as
    /// `name kiln's/PyTorch's`.
    furthest: Vec<String>,
}

/// kiln's float32 gradients against its float64 ones, and those against timm's samples; a
/// gradient zero by construction in one of kiln and timm alone is a failure.
fn grad_errors(
    name: &str,
    k32: &Run,
    k64: &Run,
    fx: &Fixture,
    failures: &mut Vec<String>,
) -> GradErrors {
    let mut out = GradErrors {
        err: 0.0,
        worst: String::new(),
        agreement: 0.0,
        least_agreeing: String::new(),
        zero: 0,
        furthest: Vec::new(),
    };
    let mut ratios = Vec::new();
    let top = k64.grads.iter().fold(0f64, |m, (_, g)| m.max(largest(g)));
    for ((pname, g32), (_, g64)) in k32.grads.iter().zip(&k64.grads) {
        let theirs = values(&fx.tensors[&format!("grad.{pname}")]);
        let is_zero = largest(g64) <= ZERO_BY_CONSTRUCTION * top;
        if is_zero != fx.zero_by_construction.contains(pname) {
            failures.push(format!(
                "{name}: {pname}'s gradient is zero by construction in one of kiln and timm alone"
            ));
        }
        out.zero += usize::from(is_zero);
        let scale = if is_zero { top } else { largest(g64) };
        let agreement = rel_err_to(&sampled(pname, g64), &theirs, scale);
        if agreement > out.agreement {
            (out.agreement, out.least_agreeing) = (agreement, pname.clone());
        }
        let e = rel_err_to(g32, g64, scale);
        let theirs_err = fx.grad_torch_err[pname];
        ratios.push((
            e / theirs_err.max(F32_ROUNDING_FLOOR),
            format!("{pname} {e:.1e}/{theirs_err:.1e}"),
        ));
        if e > out.err {
            (out.err, out.worst) = (e, pname.clone());
        }
    }
    ratios.sort_by(|a, b| b.0.total_cmp(&a.0));
    out.furthest = ratios.into_iter().take(3).map(|(_, s)| s).collect();
    out
}

/// Every model with a precision fixture, by file name.
fn fixture_models() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/precision");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|f| f.strip_suffix(".safetensors").map(String::from))
        .collect();
    names.sort();
    names
}

/// The list: per model and quantity, PyTorch's float32 errors against float64 (contiguous and
/// channels-last), kiln's, kiln's bound, and kiln's float64 agreement with timm's float64 run.
#[test]
fn float32_error_against_float64_is_within_twice_pytorchs() {
    let models = fixture_models();
    assert!(models.len() >= 39, "{} precision fixtures", models.len());
    let mut table = format!(
        "{:<34} {:<9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "model", "quantity", "torch", "torch CL", "kiln", "bound", "k64~t64"
    );
    let mut failures = Vec::new();
    for name in &models {
        check(name, &mut table, &mut failures);
    }
    println!("{table}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
