//! Activation checkpointing (`kiln_engine::checkpoint`): two residual conv + BN + ReLU blocks
//! with dropout and drop-path, each run checkpointed, give the plain run's loss, input and
//! parameter gradients and BN running statistics bit for bit; the random stream, the autocast
//! state and the leaf hooks behave as without checkpointing; on the CUDA backend (kiln-cuda-emu
//! in CI) the same holds eagerly and in a captured CUDA graph.

mod common;

use common::cuda_device;
use kiln_engine::{
    amp, checkpoint, manual_seed_thread, no_grad, with_global_generator, BatchNormArgs,
    Conv2dParams, DType, Device, Result, Tensor, TensorId,
};
use std::collections::HashMap;

/// A residual block's parameters and BN buffers.
#[derive(Clone)]
struct Block {
    w: Tensor,
    gamma: Tensor,
    beta: Tensor,
    mean: Tensor,
    var: Tensor,
    count: Tensor,
    /// Dropout and drop-path probabilities (0 for none).
    drop: f64,
}

impl Block {
    fn new(seed: u64, drop: f64, device: Device) -> Block {
        let on = |t: Tensor| t.to_device(device).unwrap();
        let leaf = |t: Tensor| on(t).requires_grad_(true).clone();
        let vec = |v: f64| on(Tensor::full(&[3], v, DType::F32).unwrap());
        Block {
            w: leaf(Tensor::randn(&[3, 3, 3, 3], DType::F32, seed).unwrap()),
            gamma: leaf(Tensor::full(&[3], 1.5, DType::F32).unwrap()),
            beta: leaf(Tensor::full(&[3], 0.1, DType::F32).unwrap()),
            mean: vec(0.0),
            var: vec(1.0),
            count: on(Tensor::from_vec(vec![0i64], &[]).unwrap()),
            drop,
        }
    }

    fn params(&self) -> Vec<Tensor> {
        vec![self.w.clone(), self.gamma.clone(), self.beta.clone()]
    }

    /// relu(bn(conv(x))), dropout, drop-path, plus x.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let p = Conv2dParams {
            padding: [1, 1],
            ..Default::default()
        };
        let h = x.conv2d(&self.w, None, p)?.bn_relu(BatchNormArgs {
            weight: Some(&self.gamma),
            bias: Some(&self.beta),
            running_mean: Some(&self.mean),
            running_var: Some(&self.var),
            num_batches_tracked: Some(&self.count),
            training: true,
            momentum: 0.1,
            eps: 1e-5,
        })?;
        let h = h.dropout(self.drop, true)?.drop_path(self.drop, true)?;
        h.add(x)
    }

    /// [`Block::forward`] under [`checkpoint`].
    fn forward_checkpointed(&self, x: &Tensor) -> Result<Tensor> {
        let block = self.clone();
        checkpoint(std::slice::from_ref(x), &self.params(), move |xs| {
            block.forward(&xs[0])
        })
    }
}

/// Two blocks, an input leaf and whether the blocks run checkpointed.
struct Net {
    blocks: [Block; 2],
    x: Tensor,
    checkpointed: bool,
}

impl Net {
    fn new(drop: f64, device: Device, checkpointed: bool) -> Net {
        let x = Tensor::randn(&[4, 3, 5, 5], DType::F32, 9).unwrap();
        Net {
            blocks: [Block::new(1, drop, device), Block::new(2, drop, device)],
            x: x.to_device(device).unwrap().requires_grad_(true).clone(),
            checkpointed,
        }
    }

    /// The loss, mean of squares of the second block's output.
    fn loss(&self) -> Result<Tensor> {
        let run = |b: &Block, h: &Tensor| match self.checkpointed {
            true => b.forward_checkpointed(h),
            false => b.forward(h),
        };
        let h = self
            .blocks
            .iter()
            .try_fold(self.x.clone(), |h, b| run(b, &h))?;
        h.sqr()?.mean_all()
    }

    fn leaves(&self) -> Vec<Tensor> {
        let params = self.blocks.iter().flat_map(Block::params);
        std::iter::once(self.x.clone()).chain(params).collect()
    }

    fn clear_grads(&self) {
        self.leaves().iter().for_each(|t| t.set_grad(None));
    }

    /// The loss, every leaf's gradient and every BN buffer, as bits.
    fn state(&self, loss: &Tensor) -> Vec<Vec<u64>> {
        let grads = self.leaves().into_iter().map(|t| t.grad().unwrap());
        let buffers = self
            .blocks
            .iter()
            .flat_map(|b| [b.mean.clone(), b.var.clone(), b.count.clone()]);
        std::iter::once(loss.clone())
            .chain(grads)
            .chain(buffers)
            .map(|t| bits(&t))
            .collect()
    }
}

fn bits(t: &Tensor) -> Vec<u64> {
    let t = t.to_device(Device::Cpu).unwrap();
    match t.dtype() {
        DType::I64 => t
            .to_vec::<i64>()
            .unwrap()
            .iter()
            .map(|&v| v as u64)
            .collect(),
        _ => t
            .to_vec_f32()
            .unwrap()
            .iter()
            .map(|v| v.to_bits().into())
            .collect(),
    }
}

/// One step (loss and backward) from a fresh thread stream seeded 5: the state and the
/// stream's offset afterwards.
fn step(net: &Net) -> (Vec<Vec<u64>>, u64) {
    manual_seed_thread(5);
    let loss = net.loss().unwrap();
    loss.backward().unwrap();
    (net.state(&loss), with_global_generator(|g| g.offset()))
}

#[test]
fn checkpointed_blocks_give_the_plain_gradients_buffers_and_stream() {
    let plain = step(&Net::new(0.3, Device::Cpu, false));
    let checkpointed = step(&Net::new(0.3, Device::Cpu, true));
    assert_eq!(
        checkpointed.0, plain.0,
        "loss, input and parameter gradients, BN buffers (counted once)"
    );
    assert_eq!(
        checkpointed.1, plain.1,
        "the recompute's draws replay the forward's; the stream resumes where the step left it"
    );
    assert_eq!(plain.0.last().unwrap(), &vec![1], "one batch tracked");
}

#[test]
fn leaf_hooks_hear_each_parameter_once_with_its_complete_gradient() {
    let net = Net::new(0.3, Device::Cpu, true);
    manual_seed_thread(5);
    let mut heard: HashMap<TensorId, (usize, Vec<u64>)> = HashMap::new();
    net.loss()
        .unwrap()
        .backward_hooked(&mut |t| {
            let entry = heard.entry(t.id()).or_default();
            *entry = (entry.0 + 1, bits(&t.grad().unwrap()));
        })
        .unwrap();
    let leaves = net.leaves();
    assert_eq!(heard.len(), leaves.len());
    for t in leaves {
        assert_eq!(heard[&t.id()], (1, bits(&t.grad().unwrap())));
    }
}

#[test]
fn the_recompute_runs_under_the_forwards_autocast_state() {
    let run = |checkpointed| {
        let net = Net::new(0.0, Device::Cpu, checkpointed);
        let loss = {
            let _amp = amp::autocast(DType::BF16).unwrap();
            net.loss().unwrap()
        };
        // Backward outside the autocast region, as training steps run it.
        loss.backward().unwrap();
        net.state(&loss)
    };
    assert_eq!(run(true), run(false));
}

#[test]
fn a_tensor_read_but_not_listed_fails_backward_instead_of_losing_its_gradient() {
    let w = Tensor::full(&[3], 2.0, DType::F32)
        .unwrap()
        .requires_grad_(true)
        .clone();
    let x = Tensor::full(&[3], 1.0, DType::F32)
        .unwrap()
        .requires_grad_(true)
        .clone();
    let hidden = w.clone();
    let y = checkpoint(&[x], &[], move |xs| xs[0].mul(&hidden)).unwrap();
    let err = y.sum_all().unwrap().backward().unwrap_err().to_string();
    assert!(err.contains("not passed as inputs or parameters"), "{err}");
    assert!(w.grad().is_none());
}

#[test]
fn without_recording_a_checkpoint_is_the_plain_call() {
    let net = Net::new(0.0, Device::Cpu, true);
    let _guard = no_grad();
    let loss = net.loss().unwrap();
    assert!(!loss.requires_grad());
    drop(_guard);
    let plain = Net::new(0.0, Device::Cpu, false);
    let _guard = no_grad();
    assert_eq!(bits(&loss), bits(&plain.loss().unwrap()));
}

// ---- CUDA backend ----

const GPU: Device = Device::Cuda(0);

#[test]
fn on_cuda_checkpointed_blocks_give_the_plain_bits() {
    let Some(_dev) = cuda_device() else { return };
    assert_eq!(
        step(&Net::new(0.3, GPU, true)),
        step(&Net::new(0.3, GPU, false))
    );
}

#[test]
fn a_captured_checkpointed_step_replays_the_eager_bits() {
    let Some(dev) = cuda_device() else { return };
    // No dropout: a capture refuses the host's random draws.
    let (eager, graphed) = (Net::new(0.0, GPU, true), Net::new(0.0, GPU, true));
    // An eager step of these shapes first (on a third net) so the capture reuses cached memory.
    step(&Net::new(0.0, GPU, true));
    let (graph, loss) = dev
        .capture_retrying(16, || {
            graphed.clear_grads();
            let loss = graphed.loss()?;
            loss.backward()?;
            Ok(loss.detach())
        })
        .unwrap();
    for seed in [3, 4] {
        let xs = Tensor::randn(&[4, 3, 5, 5], DType::F32, seed)
            .unwrap()
            .to_device(GPU)
            .unwrap();
        eager.x.copy_(&xs).unwrap();
        eager.clear_grads();
        let want = eager.loss().unwrap();
        want.backward().unwrap();
        graphed.x.copy_(&xs).unwrap();
        graph.replay().unwrap();
        assert_eq!(graphed.state(&loss), eager.state(&want), "batch {seed}");
    }
}
