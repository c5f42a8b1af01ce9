//! CUDA graphs on the CUDA backend (kiln-cuda-emu in CI): captured work (a conv + BN + linear
//! forward and backward, an optimizer rule step) replays with eager's bits, and again after its
//! inputs and step scalars change; a device flag skips rule steps; what a capture cannot record
//! (host reads, host-to-device copies, device syncs, dropout's host draw, a driver allocation)
//! is refused with an error naming it; the graph's memory is never handed out while it lives.
//! On a GPU with cuBLAS and cuDNN the graphs hold their calls (counted), and a convolution shape
//! cuDNN has not planned eagerly is refused inside a capture; on the emulator kiln's kernels
//! serve and the same tests check that no vendor call was counted.

mod common;

use common::cuda_device;
use kiln_engine::cuda::{self, CudaGraph};
use kiln_engine::{
    rule_step_, BatchNormArgs, Conv2dParams, DType, Device, Error, Result, Rule, RuleStep, Tensor,
};
use std::sync::Arc;

const GPU: Device = Device::Cuda(0);

/// A capture that reserves what the cache lacks (other tests share the device's cache).
fn capture<T>(dev: &Arc<cuda::CudaDevice>, f: impl FnMut() -> Result<T>) -> (CudaGraph, T) {
    dev.capture_retrying(16, f).unwrap()
}

/// Whether cuBLAS or cuDNN serve on `dev` (loaded and switched on): never on the emulator.
fn vendor_libraries_serve(dev: &cuda::CudaDevice) -> bool {
    (cuda::cublas_enabled() && cuda::cublas_loaded(dev).is_ok())
        || (cuda::cudnn_enabled() && cuda::cudnn_loaded(dev).is_ok())
}

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, DType::F32, seed)
        .unwrap()
        .to_device(GPU)
        .unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

/// The little network: parameters and BN buffers.
struct Net {
    w: Tensor,
    gamma: Tensor,
    beta: Tensor,
    mean: Tensor,
    var: Tensor,
    fc: Tensor,
}

impl Net {
    fn new() -> Net {
        let leaf = |t: Tensor| t.requires_grad_(true).clone();
        Net {
            w: leaf(randn(&[6, 3, 3, 3], 1).mul_scalar(0.3).unwrap()),
            gamma: leaf(Tensor::full_on(&[6], 1.5, DType::F32, GPU).unwrap()),
            beta: leaf(Tensor::full_on(&[6], 0.1, DType::F32, GPU).unwrap()),
            mean: Tensor::full_on(&[6], 0.0, DType::F32, GPU).unwrap(),
            var: Tensor::full_on(&[6], 1.0, DType::F32, GPU).unwrap(),
            fc: leaf(randn(&[4, 6 * 25], 2).mul_scalar(0.1).unwrap()),
        }
    }

    fn params(&self) -> [&Tensor; 4] {
        [&self.w, &self.gamma, &self.beta, &self.fc]
    }

    /// conv (split-K filter gradient and BN partial sums take scratch memory) + BN + ReLU +
    /// linear; the loss is a sum of squares. Backward leaves the gradients on the parameters.
    fn step(&self, x: &Tensor) -> Result<Tensor> {
        let p = Conv2dParams {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        };
        let y = x.conv2d(&self.w, None, p)?.bn_relu(BatchNormArgs {
            weight: Some(&self.gamma),
            bias: Some(&self.beta),
            running_mean: Some(&self.mean),
            running_var: Some(&self.var),
            num_batches_tracked: None,
            training: true,
            momentum: 0.1,
            eps: 1e-5,
        })?;
        let n = x.shape()[0];
        let logits = y.reshape(&[n, 6 * 25])?.linear(&self.fc, None)?;
        let loss = logits.sqr()?.mean_all()?;
        loss.backward()?;
        Ok(loss.detach())
    }

    fn clear_grads(&self) {
        self.params().iter().for_each(|p| p.set_grad(None));
    }

    /// Every parameter gradient and BN running buffer, as bits.
    fn state(&self) -> Vec<Vec<u32>> {
        let mut out: Vec<Vec<u32>> = self
            .params()
            .iter()
            .map(|p| bits(&p.grad().unwrap()))
            .collect();
        out.extend([bits(&self.mean), bits(&self.var)]);
        out
    }
}

#[test]
fn replayed_forward_and_backward_give_the_eager_bits() {
    let Some(dev) = cuda_device() else { return };
    let (eager, graphed) = (Net::new(), Net::new());
    let x = randn(&[3, 3, 7, 7], 3);
    let input = Tensor::zeros_like(&x).unwrap();
    // An eager step of these shapes first (on a third net, so BN buffers stay in step): cuDNN
    // chooses its plans there, which the capture then reuses.
    Net::new().step(&x).unwrap();
    let (graph, loss) = capture(&dev, || {
        graphed.clear_grads();
        graphed.step(&input)
    });
    assert!(graph.node_count().unwrap() > 10, "{graph:?}");
    // conv forward and both gradients, and the linear layer's GEMMs: on cuBLAS/cuDNN where they
    // serve, inside the graph.
    let vendor = vendor_libraries_serve(&dev);
    assert_eq!(graph.vendor_calls() > 0, vendor, "{graph:?}");
    eprintln!(
        "captured: {} nodes, {} cuBLAS/cuDNN calls (libraries serve: {vendor})",
        graph.node_count().unwrap(),
        graph.vendor_calls()
    );
    for seed in [3, 4, 5] {
        let xs = randn(&[3, 3, 7, 7], seed);
        eager.clear_grads();
        let want = eager.step(&xs).unwrap();
        input.copy_(&xs).unwrap();
        graph.replay().unwrap();
        assert_eq!(bits(&loss), bits(&want), "loss of batch {seed}");
        assert_eq!(
            graphed.state(),
            eager.state(),
            "gradients and BN buffers of batch {seed}"
        );
    }
}

#[test]
fn rule_steps_replay_with_refreshed_scalars_and_skip_on_a_device_flag() {
    let Some(dev) = cuda_device() else { return };
    let sgd = |lr: f32| RuleStep {
        rule: Rule::Sgd,
        k: [0.9, 1.0, 1.0, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        l2: 1e-4,
        decay: 1.0,
        lr,
        decay_after: 0,
    };
    let make = || {
        let p = [randn(&[5000], 7), randn(&[33], 8)];
        let g = [randn(&[5000], 9), randn(&[33], 10)];
        let m = [
            Tensor::full_on(&[5000], 0.0, DType::F32, GPU).unwrap(),
            Tensor::full_on(&[33], 0.0, DType::F32, GPU).unwrap(),
        ];
        (p, g, m)
    };
    let (pe, ge, me) = make();
    let (pg, gg, mg) = make();
    let skip = Tensor::full_on(&[1], 0.0, DType::F32, GPU).unwrap();
    let (mut graph, ()) = capture(&dev, || {
        cuda::skip_rule_steps_if(&skip)?;
        rule_step_(&pg, &gg, None, &[&mg], &sgd(123.0))
    });
    assert_eq!(graph.step_scalar_slots(), 1);
    for lr in [0.1, 0.05, 0.025] {
        rule_step_(&pe, &ge, None, &[&me], &sgd(lr)).unwrap();
        graph
            .refresh(|| rule_step_(&pg, &gg, None, &[&mg], &sgd(lr)))
            .unwrap();
        graph.replay().unwrap();
        for (a, b) in pe.iter().chain(&me).zip(pg.iter().chain(&mg)) {
            assert_eq!(bits(a), bits(b), "lr {lr}: params and momentum");
        }
    }
    // The flag set on the device: the replay leaves everything as it was.
    let before: Vec<_> = pg.iter().chain(&mg).map(bits).collect();
    skip.copy_(&Tensor::ones(&[1], DType::F32).unwrap())
        .unwrap();
    graph.replay().unwrap();
    let after: Vec<_> = pg.iter().chain(&mg).map(bits).collect();
    assert_eq!(before, after, "a set skip flag skips the step");
    // A refresh runs host code only: a launch there, or other tensors than the capture's, fail.
    let err = graph
        .refresh(|| pg[0].add_scalar(1.0).map(|_| ()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("refreshed"), "{err}");
    let err = graph
        .refresh(|| rule_step_(&pe, &ge, None, &[&me], &sgd(0.1)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("differs from the captured one"), "{err}");
    let err = graph.refresh(|| Ok(())).unwrap_err().to_string();
    assert!(err.contains("met 0 of the 1"), "{err}");
}

#[test]
fn host_syncs_and_copies_are_refused_during_capture() {
    let Some(dev) = cuda_device() else { return };
    let x = randn(&[4, 4], 11);
    // f64 already, so reading it allocates nothing before the read itself.
    let total = x.sum_all().unwrap().to_dtype(DType::F64).unwrap();
    let refused = |what: &str, f: &dyn Fn() -> Result<()>| {
        let err = match dev.capture(f) {
            Err(e) => e,
            Ok(_) => panic!("{what}: captured"),
        };
        assert!(matches!(err, Error::Capture(_)), "{what}: {err}");
        err.to_string()
    };
    let msg = refused("item", &|| total.item().map(|_| ()));
    assert!(msg.contains("reading") && msg.contains("host"), "{msg}");
    let msg = refused("to_vec", &|| x.to_vec::<f32>().map(|_| ()));
    assert!(msg.contains("host sync"), "{msg}");
    let msg = refused("upload", &|| {
        Tensor::ones(&[3], DType::F32)?.to_device(GPU).map(|_| ())
    });
    assert!(msg.contains("host-to-device"), "{msg}");
    let msg = refused("synchronize", &|| dev.synchronize());
    assert!(msg.contains("synchronizing"), "{msg}");
    let msg = refused("dropout", &|| x.dropout(0.5, true).map(|_| ()));
    assert!(msg.contains("random stream"), "{msg}");
    let nested = refused("nested", &|| dev.capture(|| Ok(())).map(|_| ()));
    assert!(nested.contains("already capturing"), "{nested}");
    // A block the cache cannot serve: a clear error, never a driver allocation; reserved, the
    // same capture goes through.
    let odd = 3 * (1 << 20) + 12345;
    let err = match dev.capture(|| Tensor::full_on(&[odd], 0.0, DType::U8, GPU)) {
        Err(e) => e,
        Ok(_) => panic!("a 3 MiB block was cached"),
    };
    assert!(matches!(err, Error::CaptureCacheMiss { .. }), "{err}");
    assert!(
        err.to_string().contains("cannot allocate from the driver"),
        "{err}"
    );
    let (_graph, big) = capture(&dev, || Tensor::full_on(&[odd], 0.0, DType::U8, GPU));
    assert_eq!(big.numel(), odd);
    // After a refusal the thread captures and runs eagerly as before.
    assert!(!cuda::is_capturing());
    assert_eq!(x.to_vec::<f32>().unwrap().len(), 16);
}

#[test]
fn a_convolution_shape_first_met_in_a_capture_needs_an_eager_call_where_cudnn_serves() {
    let Some(dev) = cuda_device() else { return };
    // Shapes no other test here uses.
    let x = randn(&[2, 5, 11, 9], 21);
    let w = randn(&[7, 5, 3, 3], 22);
    let p = Conv2dParams {
        stride: [2, 2],
        padding: [1, 1],
        dilation: [1, 1],
        groups: 1,
    };
    let cudnn = cuda::cudnn_enabled() && cuda::cudnn_loaded(&dev).is_ok();
    let first = dev.capture_retrying(16, || x.conv2d(&w, None, p));
    match (first, cudnn) {
        (Err(Error::Capture(why)), true) => {
            assert!(why.contains("met first inside a graph capture"), "{why}")
        }
        (Ok((graph, _)), false) => assert_eq!(graph.vendor_calls(), 0),
        (Err(e), _) => panic!("cuDNN serves: {cudnn}; capture failed: {e}"),
        (Ok(_), true) => panic!("cuDNN chose a plan inside a capture"),
    }
    assert!(!cuda::is_capturing());
    // After an eager call of the shape, the capture reuses its plan and replays its bits.
    let want = x.conv2d(&w, None, p).unwrap();
    let (graph, y) = capture(&dev, || x.conv2d(&w, None, p));
    assert_eq!(graph.vendor_calls(), usize::from(cudnn));
    graph.replay().unwrap();
    assert_eq!(bits(&y), bits(&want));
}

#[test]
fn a_graphs_memory_is_its_own_while_it_lives() {
    let Some(dev) = cuda_device() else { return };
    // An odd size class nothing else here uses.
    let n = 777_777;
    let warm = Tensor::full_on(&[n], 0.0, DType::U8, GPU).unwrap();
    let ptr = |t: &Tensor| t.storage().cuda("test").unwrap().ptr();
    let warm_ptr = ptr(&warm);
    drop(warm);
    // The capture takes the cached block and frees it again: it stays the graph's.
    let (graph, kept) = capture(&dev, || {
        let scratch = Tensor::full_on(&[n], 1.0, DType::U8, GPU)?;
        let p = ptr(&scratch);
        drop(scratch);
        Ok(p)
    });
    assert_eq!(kept, warm_ptr, "the capture took the cached block");
    assert!(dev.memory_stats().graph_cached >= n);
    let other = Tensor::full_on(&[n], 2.0, DType::U8, GPU).unwrap();
    assert_ne!(ptr(&other), kept, "not handed out while the graph lives");
    drop(other);
    drop(graph);
    let again = Tensor::full_on(&[n], 3.0, DType::U8, GPU).unwrap();
    assert_eq!(
        ptr(&again),
        kept,
        "back in the cache once the graph is gone"
    );
}
