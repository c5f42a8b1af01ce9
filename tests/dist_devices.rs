//! One process, many devices (`--device cuda:0,1`): one thread per device, DDP and SyncBN over
//! the threads' in-process communicator. 2 devices with batch B for N steps end with the weights
//! and BN statistics of 1 device with batch 2B on the same samples (sgd and adamw), each bucket's
//! reduction starts from the autograd hook before backward ends, a rank that fails stops the
//! other, and the flag's misuse is a clear error. On the emulator this binary asks
//! for 2 devices (`KILN_EMU_DEVICES=2`) before the first driver call; with fewer than 2 devices it
//! reports "skipped".

mod common;

use common::{train_args, write_bands, Bands};
use kiln::engine::{cuda, CrossReplicaSum, DType, Device, Generator, Tensor};
use kiln::nn::layers::{Activation, BatchNorm2d, Conv2d, Linear, PoolType};
use kiln::nn::layers::{SelectAdaptivePool2d, Sequential};
use kiln::nn::Module;
use kiln::train::checkpoint::Checkpoint;
use kiln::train::dist::{
    on_device_threads, Communicator, Ddp, DdpEvent, DdpOptions, DEFAULT_TIMEOUT,
};
use kiln::train::optim::{create_optimizer, OptimizerConfig};
use kiln::train::Error;
use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Once};

/// Whether cuda:0 and cuda:1 both open; prints why not.
fn two_devices() -> bool {
    static SET: Once = Once::new();
    SET.call_once(|| {
        if std::env::var("KILN_EMU_DEVICES").is_err() {
            std::env::set_var("KILN_EMU_DEVICES", "2");
        }
    });
    match cuda::device(0).and_then(|_| cuda::device(1)) {
        Ok(_) => true,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "skipped: {e}");
            false
        }
    }
}

/// Global batch size (both runs see the same 2B samples per step).
const GLOBAL_BATCH: usize = 8;

/// A small convnet: conv, BN (synced over the ranks when there are several), ReLU, average pool,
/// classifier.
fn model(comm: &Arc<Communicator>) -> Sequential {
    let mut bn = BatchNorm2d::new(6).unwrap();
    if comm.world_size() > 1 {
        let sync: Arc<dyn CrossReplicaSum> = comm.clone();
        bn.sync = Some(sync);
    }
    Sequential::new()
        .push(Conv2d::new(2, 6, 3, 1, 1, false).unwrap())
        .push(bn)
        .push(Activation::Relu)
        .push(SelectAdaptivePool2d {
            pool_type: PoolType::Avg,
        })
        .push(Linear::new(6, 4, true).unwrap())
}

/// The convnet seeded with 7 on `device`, wrapped in DDP over `comm` with small buckets (the first
/// 64 bytes, the others 256) and `overlap`.
fn seeded_ddp(
    comm: &Arc<Communicator>,
    device: Device,
    overlap: bool,
) -> kiln::train::Result<(Sequential, Ddp)> {
    kiln::engine::manual_seed_thread(7);
    let net = model(comm);
    net.to_device(device)?;
    let options = DdpOptions {
        bucket_bytes: 256,
        first_bucket_bytes: 64,
        overlap,
        ..DdpOptions::default()
    };
    let ddp = Ddp::new(comm.clone(), &net, options)?;
    Ok((net, ddp))
}

/// Step `step`'s samples for `rank` of `world`: its contiguous share of the global batch.
fn batch(step: u64, rank: usize, world: usize, device: Device) -> (Tensor, Tensor) {
    let mut g = Generator::new(100 + step);
    let x = g
        .uniform(&[GLOBAL_BATCH, 2, 6, 6], -1.0, 1.0, DType::F32)
        .unwrap();
    let labels: Vec<i64> = (0..GLOBAL_BATCH as i64)
        .map(|i| (i * 3 + step as i64) % 4)
        .collect();
    let y = Tensor::from_vec(labels, &[GLOBAL_BATCH]).unwrap();
    let b = GLOBAL_BATCH / world;
    let part = |t: &Tensor| t.narrow(0, rank * b, b).unwrap().to_device(device).unwrap();
    (part(&x), part(&y))
}

/// Trains the convnet for `steps` steps on one thread per ordinal (each rank its share of the
/// global batch, gradients averaged by DDP in buckets of a few parameters) and returns every
/// rank's parameters and buffers, by name.
fn train(ordinals: &[usize], opt: &OptimizerConfig, steps: u64) -> Vec<Vec<(String, Vec<f32>)>> {
    on_device_threads(ordinals, DEFAULT_TIMEOUT, |device, comm| {
        let (net, mut ddp) = seeded_ddp(&comm, device, DdpOptions::default().overlap)?;
        let mut optimizer = create_optimizer(opt, net.named_parameters())?;
        for step in 0..steps {
            let (x, y) = batch(step, comm.rank(), comm.world_size(), device);
            ddp.sync_buffers()?;
            let loss = net.forward(&x)?.cross_entropy(&y, 0.0)?;
            ddp.backward(&loss)?;
            optimizer.step(opt.lr.unwrap_or(0.1))?;
            optimizer.zero_grad();
        }
        net.named_tensors()
            .iter()
            .map(|t| Ok((t.name.clone(), t.tensor.to_vec_f32()?)))
            .collect()
    })
    .unwrap()
}

/// The largest difference between two tensors, relative to the reference's largest magnitude
/// (at least 1e-3).
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
        / scale
}

#[test]
fn two_devices_of_batch_b_match_one_device_of_batch_2b() {
    if !two_devices() {
        return;
    }
    let sgd = OptimizerConfig {
        opt: "sgd".into(),
        lr: Some(0.1),
        weight_decay: 1e-4,
        ..OptimizerConfig::default()
    };
    // A large eps keeps Adam's first steps linear in near-zero gradients (see tests/dist_mpi.rs).
    let adamw = OptimizerConfig {
        opt: "adamw".into(),
        lr: Some(0.01),
        eps: Some(1e-3),
        weight_decay: 0.05,
        ..OptimizerConfig::default()
    };
    for (name, opt) in [("sgd", sgd), ("adamw", adamw)] {
        let initial = train(&[0], &opt, 0).remove(0);
        let one = train(&[0], &opt, 3).remove(0);
        let two = train(&[0, 1], &opt, 3);
        assert_eq!(two[0], two[1], "{name}: both devices hold the same weights");
        let (mut worst, mut moved) = (0f32, 0f32);
        for (((na, a), (nb, b)), (_, init)) in two[0].iter().zip(&one).zip(&initial) {
            assert_eq!(na, nb);
            let d = rel_diff(a, b);
            assert!(d <= 1e-5, "{name}: {na} differs by {d:e} (relative)");
            worst = worst.max(d);
            if na.ends_with("weight") {
                moved = moved.max(rel_diff(b, init));
            }
        }
        // Training moved the weights far more than the two runs differ.
        assert!(moved > 1e-2, "{name}: the weights moved only {moved:e}");
        println!(
            "{name}: 2 devices of batch 4 match 1 of batch 8 within {worst:e} (moved {moved:e})"
        );
    }
}

/// One DDP step on cuda:0 and cuda:1 with `overlap`; returns each rank's bucket path and events.
fn one_step_events(overlap: bool) -> Vec<(&'static str, Vec<DdpEvent>)> {
    on_device_threads(&[0, 1], DEFAULT_TIMEOUT, |device, comm| {
        let (net, mut ddp) = seeded_ddp(&comm, device, overlap)?;
        let (x, y) = batch(0, comm.rank(), 2, device);
        let loss = net.forward(&x)?.cross_entropy(&y, 0.0)?;
        ddp.backward(&loss)?;
        Ok((comm.path_name(), ddp.last_events().to_vec()))
    })
    .unwrap()
}

#[test]
fn bucket_reductions_start_from_the_hook_before_backward_ends() {
    if !two_devices() {
        return;
    }
    for (rank, (path, events)) in one_step_events(true).into_iter().enumerate() {
        // The emulator's devices reach each other (cuDeviceCanAccessPeer), so buckets go by
        // peer copies; with the `nccl` feature NCCL is refused on the emulator, same path.
        if cuda::device(0).unwrap().is_emulator() {
            assert_eq!(path, "device peer copies", "rank {rank}");
        }
        let end = events.iter().position(|e| *e == DdpEvent::BackwardEnded);
        let end = end.expect("backward's end is recorded");
        let buckets = (events.len() - 1) / 2;
        assert!(buckets >= 3, "rank {rank}: {events:?}");
        let started: Vec<DdpEvent> = (0..buckets).map(DdpEvent::Started).collect();
        let written: Vec<DdpEvent> = (0..buckets).map(DdpEvent::Written).collect();
        assert_eq!(
            events[..end],
            started,
            "rank {rank}: every bucket starts in backward"
        );
        assert_eq!(events[end + 1..], written, "rank {rank}");
    }
    // Without overlap every start comes after backward.
    for (rank, (_, events)) in one_step_events(false).into_iter().enumerate() {
        assert_eq!(
            events[0],
            DdpEvent::BackwardEnded,
            "rank {rank}: {events:?}"
        );
    }
}

#[test]
fn a_rank_that_fails_stops_the_other() {
    if !two_devices() {
        return;
    }
    let e = on_device_threads(&[0, 1], DEFAULT_TIMEOUT, |device, comm| {
        if comm.rank() == 1 {
            return Err(Error::Dist(format!("{device} gave up")));
        }
        // Rank 0 waits in a collective that rank 1 never joins: it must not hang.
        let mut v = [1.0f32];
        comm.all_reduce(&mut v, kiln::train::dist::ReduceOp::Sum)?;
        Ok(())
    })
    .unwrap_err();
    assert!(e.to_string().contains("cuda:1 gave up"), "{e}");
    let past = on_device_threads(&[0, 64], DEFAULT_TIMEOUT, |_, _| Ok(())).unwrap_err();
    assert!(past.to_string().contains("cuda:64"), "{past}");
}

#[test]
fn device_lists_are_refused_under_a_launcher_and_when_malformed() {
    let run = |device: &str, env: &[(&str, &str)]| {
        let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(["train", "--device", device, "--epochs", "1"])
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let launched = run("cuda:0,1", &[("RANK", "0"), ("WORLD_SIZE", "2")]);
    assert!(
        launched.contains("--device") && launched.contains("2 processes"),
        "{launched}"
    );
    let twice = run("cuda:1,1", &[]);
    assert!(
        twice.contains("--device") && twice.contains("'cuda:1,1'"),
        "{twice}"
    );
}

/// The whole command-line path: `kiln train --device cuda:0,1 -b 4` (resnet18, SyncBN, one update
/// on 8 images of 8×8) ends with the weights of `--device cuda:0 -b 8`. Measured: within 1.6e-6
/// of the largest value of each tensor, in 12 minutes on the emulator.
#[test]
#[ignore = "about 12 minutes on the emulator (resnet18 is kiln's smallest model): run with --ignored"]
fn kiln_train_on_two_devices_matches_one_device_of_twice_the_batch() {
    if !two_devices() {
        return;
    }
    let tiny = Bands {
        side: 8,
        classes: 4,
        stride: 2,
        width: 2,
    };
    let dir = std::env::temp_dir().join(format!("kiln-devices-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_bands(&dir, "train", 8, 7, tiny);
    write_bands(&dir, "t10k", 2, 8, tiny);
    let out = dir.join("runs");
    let same = ["--epochs", "1", "--lr", "0.01", "--no-aug", "--sync-bn"];
    for (exp, device, b) in [("two", "cuda:0,1", "4"), ("one", "cuda:0", "8")] {
        let args = train_args(
            &dir,
            &out,
            exp,
            &[&same[..], &["--device", device, "-b", b]].concat(),
        );
        let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(&args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let load = |exp: &str| Checkpoint::load(&out.join(exp).join("last.safetensors")).unwrap();
    let (two, one) = (load("two"), load("one"));
    assert_eq!(two.model.len(), one.model.len());
    for (name, t) in &one.model {
        let d = rel_diff(
            &two.model[name].to_vec_f32().unwrap(),
            &t.to_vec_f32().unwrap(),
        );
        assert!(d <= 1e-5, "{name} differs by {d:e} (relative)");
    }
    std::fs::remove_dir_all(&dir).ok();
}
