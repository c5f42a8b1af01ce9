//! optim.cu (through its launcher) against the CPU twin: every update rule, applied in place and
//! writing its direction, with each epilogue (L2, decay before and after), over lists with odd,
//! empty and multi-chunk tensors and a list longer than one launch takes; parameters and
//! gradients in f32, f16 and bf16.

mod common;
use common::{assert_close, gpu, Gpu};
use cudarc::driver::CudaSlice;
use half::{bf16, f16};
use kiln_kernels::cpu::optim::{self as cpu, Rule, RuleElem, RuleSlices, RuleStep, RULE_SCALARS};
use kiln_kernels::cuda::optim::{self as cuda, TensorSet};

fn values(len: usize, salt: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919 + salt * 104729) % 1009) as f32 / 500.0 - 1.0)
        .collect()
}

/// Downloaded bytes (not aligned for `T`) as `T`s.
fn unpack<T: bytemuck::Pod>(bytes: &[u8]) -> Vec<T> {
    bytes
        .chunks_exact(std::mem::size_of::<T>())
        .map(bytemuck::pod_read_unaligned)
        .collect()
}

/// A parameter type under test and its twin tolerance: one rounding of the stored parameter
/// (the same f32 math may land on either side of a tie) plus f32 noise.
trait Elem: RuleElem {
    const RTOL: f32;
}
impl Elem for f32 {
    const RTOL: f32 = 1e-5;
}
impl Elem for f16 {
    const RTOL: f32 = 1.0 / 1024.0;
}
impl Elem for bf16 {
    const RTOL: f32 = 1.0 / 128.0;
}

/// Host tensors for `lens`, with `states` state lists, and their device copies; params and grads
/// (lists 0 and 1) hold `E`, device copies as raw bytes.
struct Lists<E: Elem> {
    lens: Vec<usize>,
    host: Vec<Vec<Vec<f32>>>, // [dir, state0..state3][tensor] at index k - 2
    params: [Vec<Vec<E>>; 2], // [param, grad][tensor]
    dev: Vec<Vec<CudaSlice<u8>>>,
}

impl<E: Elem> Lists<E> {
    fn new(g: &Gpu, lens: &[usize]) -> Lists<E> {
        let list = |k: usize| -> Vec<Vec<f32>> {
            lens.iter()
                .enumerate()
                .map(|(t, &n)| {
                    let v = values(n, LISTS * t + k);
                    if k >= STATE {
                        v.iter().map(|x| x.abs()).collect() // second moments are >= 0
                    } else {
                        v
                    }
                })
                .collect()
        };
        let params = [0, 1].map(|k| {
            list(k)
                .iter()
                .map(|v| v.iter().map(|&x| E::store(x)).collect())
                .collect()
        });
        let host: Vec<Vec<Vec<f32>>> = (2..LISTS).map(list).collect();
        let mut dev: Vec<Vec<CudaSlice<u8>>> = params
            .iter()
            .map(|l: &Vec<Vec<E>>| {
                l.iter()
                    .map(|v| g.upload(bytemuck::cast_slice(v)))
                    .collect()
            })
            .collect();
        dev.extend(host.iter().map(|l| {
            l.iter()
                .map(|v| g.upload(bytemuck::cast_slice(v)))
                .collect()
        }));
        Lists {
            lens: lens.to_vec(),
            host,
            params,
            dev,
        }
    }

    fn ptrs(&self, g: &Gpu, k: usize) -> Vec<u64> {
        self.dev[k].iter().map(|d| g.ptr(d)).collect()
    }

    /// List `k`, device against host, as f32.
    fn check(&self, g: &Gpu, what: &str, k: usize) {
        for (t, d) in self.dev[k].iter().enumerate() {
            let label = format!("{what} list {k} tensor {t}");
            let bytes = g.download(d);
            if k < 2 {
                let got: Vec<f32> = unpack::<E>(&bytes).iter().map(|x| x.load()).collect();
                let want: Vec<f32> = self.params[k][t].iter().map(|x| x.load()).collect();
                assert_close(&label, &got, &want, 1e-6, E::RTOL);
            } else {
                let got: Vec<f32> = unpack(&bytes);
                assert_close(&label, &got, &self.host[k - 2][t], 1e-6, 1e-5);
            }
        }
    }
}

/// Lists per tensor: param, grad, dir, then four states.
const LISTS: usize = 7;
/// The first state list.
const STATE: usize = 3;

const LENS: [usize; 5] = [1, 4097, 300, 0, 8193];

/// Scalars for `rule` shaped like the host's (one-minus weights, bias corrections).
fn scalars(rule: Rule, variant: usize) -> Vec<f32> {
    let first = (variant % 2) as f32;
    match rule {
        Rule::Sgd => vec![
            0.9 * (variant % 3) as f32,
            0.9 - 0.9 * first,
            1.0 - first,
            0.9,
        ],
        Rule::Adam => vec![0.1, 0.999, 0.001, 0.1 * first, 2.0, 0.5, 1.2, 1e-8],
        Rule::Adamax => vec![0.1, 0.999, 1e-8, 1.5],
        Rule::RmsProp => vec![0.1, 1e-10 * first, 1e-8, 0.9 * first, 0.01],
        Rule::Adagrad => vec![1e-8],
        Rule::Adadelta => vec![0.9, 0.1, 1e-6],
        Rule::Lion => vec![0.1, 0.01],
        Rule::LaProp => vec![0.9, 0.999, 0.001, 0.3, 1e-15, 0.001],
        Rule::Adopt => vec![0.1, 0.9999, 1e-4, 1e-6, 2.0, first],
        Rule::AdaBelief => vec![0.1, 0.999, 0.001, 1e-16, 1.5, 1.2, 1e-8],
        Rule::Adan => vec![0.02, 0.92, 0.08, 0.99, 0.01, 1.2, 0.5, 1.1, 1e-8, first],
        Rule::Madgrad => vec![0.01, 1e-6, 0.1],
        Rule::AdEMAMix => vec![0.1, 0.999, 0.001, 1e-4, 1.2, 5.0, 1.1, 1e-8],
    }
}

/// `k` zero-padded to the kernel's scalar count.
fn pad(k: &[f32]) -> [f32; RULE_SCALARS] {
    let mut out = [0.0; RULE_SCALARS];
    out[..k.len()].copy_from_slice(k);
    out
}

const RULES: [Rule; 13] = [
    Rule::Sgd,
    Rule::Adam,
    Rule::Adamax,
    Rule::RmsProp,
    Rule::Adagrad,
    Rule::Adadelta,
    Rule::Lion,
    Rule::LaProp,
    Rule::Adopt,
    Rule::AdaBelief,
    Rule::Adan,
    Rule::Madgrad,
    Rule::AdEMAMix,
];

/// One rule step on the device and on the host copies; `write_dir` writes directions instead.
fn step_both<E: Elem>(g: &Gpu, l: &mut Lists<E>, h: &RuleStep, write_dir: bool) {
    let ns = h.rule.states();
    let ptrs: Vec<Vec<u64>> = (0..LISTS).map(|i| l.ptrs(g, i)).collect();
    let state: Vec<&[u64]> = ptrs[STATE..STATE + ns]
        .iter()
        .map(|p| p.as_slice())
        .collect();
    let set = TensorSet {
        params: &ptrs[0],
        grads: &ptrs[1],
        dirs: if write_dir { &ptrs[2] } else { &[] },
        state: &state,
        lens: &l.lens,
    };
    cuda::rule_step::<E>(&g.kernels(), &set, h, Default::default()).unwrap();
    for t in 0..l.lens.len() {
        let [p, gr] = &mut l.params;
        let [d, s0, s1, s2, s3] = &mut l.host[..] else {
            unreachable!()
        };
        let mut states = [&mut s0[t], &mut s1[t], &mut s2[t], &mut s3[t]];
        cpu::rule_step(
            RuleSlices {
                p: &mut p[t],
                g: &gr[t],
                state: states
                    .iter_mut()
                    .take(ns)
                    .map(|s| s.as_mut_slice())
                    .collect(),
                dir: write_dir.then(|| d[t].as_mut_slice()),
            },
            h,
        );
    }
}

/// Every rule in every epilogue with params and grads of type `E`.
fn every_rule_matches_the_cpu<E: Elem>(g: &Gpu) {
    for rule in RULES {
        for variant in 0..3 {
            let h = RuleStep {
                rule,
                k: pad(&scalars(rule, variant)),
                l2: if variant == 1 { 1e-4 } else { 0.0 },
                decay: if variant == 2 { 1.0 } else { 0.999 },
                lr: 0.01,
                decay_after: (variant == 1) as i32,
            };
            let write_dir = variant == 2;
            let mut l = Lists::<E>::new(g, &LENS);
            step_both(g, &mut l, &h, write_dir);
            let what = format!("{} {rule:?} variant {variant}", E::KERNEL);
            l.check(g, &what, if write_dir { 2 } else { 0 });
            for s in 0..rule.states() {
                l.check(g, &what, STATE + s);
            }
        }
    }
}

#[test]
fn every_rule_matches_the_cpu_in_place_and_writing_directions() {
    let Some(g) = gpu() else { return };
    every_rule_matches_the_cpu::<f32>(&g);
}

#[test]
fn every_rule_matches_the_cpu_with_f16_params() {
    let Some(g) = gpu() else { return };
    every_rule_matches_the_cpu::<f16>(&g);
}

#[test]
fn every_rule_matches_the_cpu_with_bf16_params() {
    let Some(g) = gpu() else { return };
    every_rule_matches_the_cpu::<bf16>(&g);
}

#[test]
fn adam_matches_the_cpu_over_more_tensors_than_one_launch() {
    let Some(g) = gpu() else { return };
    let lens: Vec<usize> = LENS
        .iter()
        .copied()
        .chain((0..36).map(|i| 3 + i * 11))
        .collect();
    let mut l = Lists::<bf16>::new(&g, &lens);
    let h = RuleStep {
        rule: Rule::Adam,
        k: pad(&[0.1, 0.999, 0.001, 0.0, 1.5, 0.0, 30.0, 1e-8]),
        l2: 0.0,
        decay: 1.0 - 1e-3 * 0.05,
        lr: 1e-3,
        decay_after: 0,
    };
    step_both(&g, &mut l, &h, false);
    for i in [0, STATE, STATE + 1] {
        l.check(&g, "adam", i);
    }
}

#[test]
fn mismatched_lists_are_an_error() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let h = RuleStep {
        rule: Rule::Adagrad,
        k: pad(&[1e-8]),
        l2: 0.0,
        decay: 1.0,
        lr: 0.1,
        decay_after: 0,
    };
    let set = TensorSet {
        params: &[0, 0],
        grads: &[0],
        dirs: &[],
        state: &[&[0, 0]],
        lens: &[1, 1],
    };
    let err = cuda::rule_step::<f32>(&k, &set, &h, Default::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("rule_step"), "{err}");
    let set = TensorSet {
        state: &[],
        grads: &[0, 0],
        ..set
    };
    let err = cuda::rule_step::<f32>(&k, &set, &h, Default::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("state lists"), "{err}");
}

/// The bytes of `h` as the kernel reads them from device memory.
fn step_bytes(h: &RuleStep) -> Vec<u8> {
    // SAFETY: RuleStep is repr(C) plain-old-data without padding (4-byte fields only).
    unsafe {
        std::slice::from_raw_parts((h as *const RuleStep).cast::<u8>(), size_of::<RuleStep>())
    }
    .to_vec()
}

#[test]
fn rule_step_reads_device_scalars_and_skips_on_a_device_flag() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let n = 5000;
    let adam = |lr: f32| RuleStep {
        rule: Rule::Adam,
        k: pad(&[0.1, 0.999, 0.001, 0.0, 1.11, 0.0, 1.0, 1e-8]),
        l2: 0.0,
        decay: 1.0 - lr * 0.05,
        lr,
        decay_after: 0,
    };
    // One step by value, and one whose by-value scalars are wrong but whose device scalars are
    // the first step's: the same bits.
    let run = |h: &RuleStep, dev: Option<(&RuleStep, f32)>| {
        let (p, gr) = (g.upload(&values(n, 1)), g.upload(&values(n, 2)));
        let (m, v) = (g.upload(&values(n, 3)), g.upload(&vec![0.5f32; n]));
        let dev_step = dev.map(|(d, _)| g.upload(&step_bytes(d)));
        let skip = dev.map(|(_, s)| g.upload(&[s]));
        let args = cuda::DeviceArgs {
            scalars: dev_step.as_ref().map_or(0, |d| g.ptr(d)),
            skip: skip.as_ref().map_or(0, |s| g.ptr(s)),
        };
        let (pp, gp, mp, vp) = (g.ptr(&p), g.ptr(&gr), g.ptr(&m), g.ptr(&v));
        let state = [&[mp][..], &[vp][..]];
        let set = TensorSet {
            params: &[pp],
            grads: &[gp],
            dirs: &[],
            state: &state,
            lens: &[n],
        };
        cuda::rule_step::<f32>(&k, &set, h, args).unwrap();
        [g.download(&p), g.download(&m), g.download(&v)]
    };
    let want = run(&adam(0.01), None);
    let got = run(&adam(0.5), Some((&adam(0.01), 0.0)));
    for (w, gv) in want.iter().zip(&got) {
        let (wb, gb): (Vec<u32>, Vec<u32>) = (
            w.iter().map(|x| x.to_bits()).collect(),
            gv.iter().map(|x| x.to_bits()).collect(),
        );
        assert_eq!(wb, gb, "device scalars give the by-value step's bits");
    }
    let skipped = run(&adam(0.01), Some((&adam(0.01), 1.0)));
    assert_eq!(
        skipped[0],
        values(n, 1),
        "a set skip flag leaves the parameter"
    );
    assert_eq!(skipped[1], values(n, 3), "and the state untouched");
}
