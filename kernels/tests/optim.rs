//! optim.cu (through its launchers) against the CPU twin: multi-tensor SGD (plain, momentum,
//! Nesterov) and AdamW over lists with odd, empty and multi-chunk tensors, and a list longer than
//! one launch takes.

mod common;
use common::{assert_close, gpu, Gpu};
use cudarc::driver::CudaSlice;
use kiln_kernels::cpu::optim::{self as cpu, AdamWStep, SgdStep};
use kiln_kernels::cuda::optim::{self as cuda, TensorSet};

fn values(len: usize, salt: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919 + salt * 104729) % 1009) as f32 / 500.0 - 1.0)
        .collect()
}

/// Host tensors for `lens`, with `states` state lists, and their device copies.
struct Lists {
    lens: Vec<usize>,
    host: Vec<Vec<Vec<f32>>>, // [param, grad, state0, state1][tensor]
    dev: Vec<Vec<CudaSlice<f32>>>,
}

impl Lists {
    fn new(g: &Gpu, lens: &[usize]) -> Lists {
        let host: Vec<Vec<Vec<f32>>> = (0..4)
            .map(|k| {
                lens.iter()
                    .enumerate()
                    .map(|(t, &n)| {
                        let v = values(n, 4 * t + k);
                        if k == 3 {
                            v.iter().map(|x| x.abs()).collect() // AdamW's v is non-negative
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

const LENS: [usize; 5] = [1, 4097, 300, 0, 8193];

#[test]
fn sgd_matches_the_cpu_with_and_without_momentum() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let steps = [
        SgdStep {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.0,
            weight_decay: 1e-4,
            nesterov: true,
            first_step: false,
        },
        SgdStep {
            lr: 0.05,
            momentum: 0.8,
            dampening: 0.1,
            weight_decay: 0.0,
            nesterov: false,
            first_step: true,
        },
        SgdStep {
            lr: 0.01,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 5e-4,
            nesterov: false,
            first_step: false,
        },
    ];
    for h in steps {
        let mut l = Lists::new(&g, &LENS);
        let (p, gr, b) = (l.ptrs(&g, 0), l.ptrs(&g, 1), l.ptrs(&g, 2));
        let set = TensorSet {
            params: &p,
            grads: &gr,
            state: [if h.momentum != 0.0 { &b } else { &[] }, &[]],
            lens: &l.lens,
        };
        cuda::sgd_step(&k, &set, &h).unwrap();
        for t in 0..LENS.len() {
            let (params, rest) = l.host.split_at_mut(1);
            let (grads, bufs) = rest.split_at_mut(1);
            cpu::sgd_step(&mut params[0][t], &grads[0][t], &mut bufs[0][t], &h);
        }
        l.check(&g, &format!("{h:?}"), 0);
        if h.momentum != 0.0 {
            l.check(&g, &format!("{h:?}"), 2);
        }
    }
}

#[test]
fn adamw_matches_the_cpu_over_more_tensors_than_one_launch() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let lens: Vec<usize> = LENS
        .iter()
        .copied()
        .chain((0..36).map(|i| 3 + i * 11))
        .collect();
    let mut l = Lists::new(&g, &lens);
    let h = AdamWStep {
        lr: 1e-3,
        betas: (0.9, 0.999),
        eps: 1e-8,
        weight_decay: 0.05,
        step: 3,
    };
    let ptrs: Vec<Vec<u64>> = (0..4).map(|i| l.ptrs(&g, i)).collect();
    let set = TensorSet {
        params: &ptrs[0],
        grads: &ptrs[1],
        state: [&ptrs[2], &ptrs[3]],
        lens: &lens,
    };
    cuda::adamw_step(&k, &set, &h).unwrap();
    for t in 0..lens.len() {
        let [p, gr, m, v] = &mut l.host[..] else {
            unreachable!()
        };
        cpu::adamw_step(&mut p[t], &gr[t], &mut m[t], &mut v[t], &h);
    }
    for i in [0, 2, 3] {
        l.check(&g, "adamw", i);
    }
}

#[test]
fn mismatched_lists_are_an_error() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let set = TensorSet {
        params: &[0, 0],
        grads: &[0],
        state: [&[], &[]],
        lens: &[1, 1],
    };
    let h = SgdStep {
        lr: 0.1,
        momentum: 0.0,
        dampening: 0.0,
        weight_decay: 0.0,
        nesterov: false,
        first_step: false,
    };
    let err = cuda::sgd_step(&k, &set, &h).unwrap_err().to_string();
    assert!(err.contains("sgd_step"), "{err}");
}
