//! optim.cu (through its launcher) against the CPU twin: every update rule, applied in place and
//! writing its direction, with each epilogue (L2, decay before and after), over lists with odd,
//! empty and multi-chunk tensors and a list longer than one launch takes.

mod common;
use common::{assert_close, gpu, Gpu};
use cudarc::driver::CudaSlice;
use kiln_kernels::cpu::optim::{self as cpu, Rule, RuleSlices, RuleStep, RULE_SCALARS};
use kiln_kernels::cuda::optim::{self as cuda, TensorSet};

fn values(len: usize, salt: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919 + salt * 104729) % 1009) as f32 / 500.0 - 1.0)
        .collect()
}

/// Host tensors for `lens`, with `states` state lists, and their device copies.
struct Lists {
    lens: Vec<usize>,
    host: Vec<Vec<Vec<f32>>>, // [param, grad, dir, state0..state3][tensor]
    dev: Vec<Vec<CudaSlice<f32>>>,
}

impl Lists {
    fn new(g: &Gpu, lens: &[usize]) -> Lists {
        let host: Vec<Vec<Vec<f32>>> = (0..LISTS)
            .map(|k| {
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
            })
            .collect();
        let dev = host
            .iter()
            .map(|l| l.iter().map(|v| g.upload(v)).collect())
            .collect();
        Lists {
            lens: lens.to_vec(),
            host,
            dev,
        }
    }

    fn ptrs(&self, g: &Gpu, k: usize) -> Vec<u64> {
        self.dev[k].iter().map(|d| g.ptr(d)).collect()
    }

    fn check(&self, g: &Gpu, what: &str, k: usize) {
        for (t, d) in self.dev[k].iter().enumerate() {
            let label = format!("{what} list {k} tensor {t}");
            assert_close(&label, &g.download(d), &self.host[k][t], 1e-6, 1e-5);
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
fn step_both(g: &Gpu, l: &mut Lists, h: &RuleStep, write_dir: bool) {
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
    cuda::rule_step(&g.kernels(), &set, h).unwrap();
    for t in 0..l.lens.len() {
        let [p, gr, d, s0, s1, s2, s3] = &mut l.host[..] else {
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

#[test]
fn every_rule_matches_the_cpu_in_place_and_writing_directions() {
    let Some(g) = gpu() else { return };
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
            let mut l = Lists::new(&g, &LENS);
            step_both(&g, &mut l, &h, write_dir);
            let what = format!("{rule:?} variant {variant}");
            l.check(&g, &what, if write_dir { 2 } else { 0 });
            for s in 0..rule.states() {
                l.check(&g, &what, STATE + s);
            }
        }
    }
}

#[test]
fn adam_matches_the_cpu_over_more_tensors_than_one_launch() {
    let Some(g) = gpu() else { return };
    let lens: Vec<usize> = LENS
        .iter()
        .copied()
        .chain((0..36).map(|i| 3 + i * 11))
        .collect();
    let mut l = Lists::new(&g, &lens);
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
    let err = cuda::rule_step(&k, &set, &h).unwrap_err().to_string();
    assert!(err.contains("rule_step"), "{err}");
    let set = TensorSet {
        state: &[],
        grads: &[0, 0],
        ..set
    };
    let err = cuda::rule_step(&k, &set, &h).unwrap_err().to_string();
    assert!(err.contains("state lists"), "{err}");
}
