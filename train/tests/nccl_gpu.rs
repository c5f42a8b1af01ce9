//! NCCL on real GPUs (feature `nccl`; scripts/gpu-check.sh runs it): the collectives on CUDA
//! tensors and on host buffers staged through them against host references, the unique id over
//! the TCP rendezvous into `ncclCommInitRank`, and one DDP step through NCCL against the same
//! step on one device with the whole batch. One rank per GPU of this machine: on a one-GPU
//! machine the world size is 1 (and the test says so). Reports "skipped" where NCCL cannot serve
//! (no GPU, the emulator, no libnccl.so).
#![cfg(feature = "nccl")]

use kiln_engine::{cuda, DType, Device, Generator, Tensor};
use kiln_nn::layers::{Activation, Conv2d, Linear, PoolType, SelectAdaptivePool2d, Sequential};
use kiln_nn::Module;
use kiln_train::dist::nccl::{self, NcclComm};
use kiln_train::dist::{
    on_device_threads, Collectives, Ddp, DdpOptions, Launcher, ProcessGroup, ReduceOp,
    DEFAULT_TIMEOUT,
};
use std::io::Write;

/// The GPUs NCCL serves (at most 8), or None after printing why there are none.
fn gpus() -> Option<Vec<usize>> {
    let devices: Vec<_> = (0..8).map_while(|n| cuda::device(n).ok()).collect();
    let why = match devices.first() {
        None => Some(cuda::device(0).unwrap_err().to_string()),
        Some(_) => nccl::unavailable(&devices),
    };
    if let Some(why) = why {
        let _ = writeln!(std::io::stderr(), "skipped: {why}");
        return None;
    }
    let world = devices.len();
    let note = if world == 1 {
        " (one GPU: world size 1, so the collectives only copy; run on 2+ GPUs to reduce)"
    } else {
        ""
    };
    println!("NCCL over {world} GPU(s){note}");
    Some((0..world).collect())
}

/// Rank `r`'s input: small integers, so sums are exact in any order.
fn values(r: usize, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((r * 7 + i * 3) % 11) as f32 - 5.0)
        .collect()
}

fn on_gpu(v: Vec<f32>, device: Device) -> Tensor {
    let n = v.len();
    Tensor::from_vec(v, &[n])
        .unwrap()
        .to_device(device)
        .unwrap()
}

/// Runs every collective on one rank; returns its results in a fixed order.
fn collectives(comm: &NcclComm, device: Device, world: usize) -> Vec<Vec<f32>> {
    let n = 6 * world;
    let r = comm.rank();
    let mut out = Vec::new();
    for op in [ReduceOp::Sum, ReduceOp::Average, ReduceOp::Max] {
        let t = on_gpu(values(r, n), device);
        comm.all_reduce_tensor(&t, op).unwrap();
        out.push(t.to_vec_f32().unwrap());
    }
    let b = on_gpu(
        if r == world - 1 {
            values(r, n)
        } else {
            vec![0.0; n]
        },
        device,
    );
    comm.broadcast_tensor(&b, world - 1).unwrap();
    out.push(b.to_vec_f32().unwrap());
    let send = on_gpu(values(r, 6), device);
    let gathered = on_gpu(vec![0.0; n], device);
    comm.all_gather_tensor(&send, &gathered).unwrap();
    out.push(gathered.to_vec_f32().unwrap());
    let whole = on_gpu(values(r, n), device);
    let block = on_gpu(vec![0.0; 6], device);
    comm.reduce_scatter_tensor(&whole, &block, ReduceOp::Sum)
        .unwrap();
    out.push(block.to_vec_f32().unwrap());
    // The same on host buffers, staged through the device (the Collectives trait's path).
    let mut host = values(r, n);
    comm.all_reduce(&mut host, ReduceOp::Sum).unwrap();
    out.push(host);
    let mut host = if r == world - 1 {
        values(r, n)
    } else {
        vec![0.0; n]
    };
    comm.broadcast(&mut host, world - 1).unwrap();
    out.push(host);
    let mut host = vec![0.0; n];
    comm.all_gather(&values(r, 6), &mut host).unwrap();
    out.push(host);
    let mut host = vec![0.0; 6];
    comm.reduce_scatter(&values(r, n), &mut host, ReduceOp::Sum)
        .unwrap();
    out.push(host);
    comm.barrier().unwrap();
    out
}

/// What every rank should hold after [`collectives`], from the inputs on the host.
fn references(r: usize, world: usize) -> Vec<Vec<f32>> {
    let n = 6 * world;
    let inputs: Vec<Vec<f32>> = (0..world).map(|k| values(k, n)).collect();
    let fold = |f: &dyn Fn(f32, f32) -> f32| -> Vec<f32> {
        (0..n)
            .map(|i| inputs[1..].iter().fold(inputs[0][i], |a, v| f(a, v[i])))
            .collect()
    };
    let sum = fold(&|a, b| a + b);
    let on_device = vec![
        sum.clone(),
        sum.iter().map(|v| v / world as f32).collect(),
        fold(&|a, b| a.max(b)),
        inputs[world - 1].clone(),
        (0..world).flat_map(|k| values(k, 6)).collect(),
        sum[r * 6..(r + 1) * 6].to_vec(),
    ];
    let on_host = [0, 3, 4, 5].map(|i| on_device[i].clone());
    on_device.into_iter().chain(on_host).collect()
}

#[test]
fn nccl_collectives_match_host_references() {
    let Some(ordinals) = gpus() else { return };
    let world = ordinals.len();
    let comms = nccl::for_devices(&ordinals, DEFAULT_TIMEOUT)
        .unwrap()
        .unwrap();
    let results: Vec<Vec<Vec<f32>>> = std::thread::scope(|s| {
        let handles: Vec<_> = comms
            .iter()
            .zip(&ordinals)
            .map(|(c, &n)| s.spawn(move || collectives(c, Device::Cuda(n), world)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let names = [
        "sum",
        "avg",
        "max",
        "broadcast",
        "all_gather",
        "reduce_scatter",
        "host sum",
        "host broadcast",
        "host all_gather",
        "host reduce_scatter",
    ];
    for (r, got) in results.iter().enumerate() {
        assert_eq!(got.len(), names.len(), "rank {r}: one result a collective");
        for ((g, want), name) in got.iter().zip(references(r, world)).zip(names) {
            let err = g
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err <= 1e-6, "rank {r} {name}: {g:?} != {want:?}");
        }
    }
    println!(
        "all-reduce (sum, avg, max), broadcast, all-gather, reduce-scatter (on the device, and \
         host-staged), barrier: exact"
    );
}

#[test]
fn the_unique_id_crosses_the_rendezvous_into_comm_init_rank() {
    let Some(_) = gpus() else { return };
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let group = ProcessGroup {
        rank: 0,
        world_size: 1,
        local_rank: 0,
        master: Some(("127.0.0.1".into(), port)),
        launcher: Launcher::Torchrun,
        ..ProcessGroup::single()
    };
    let comm = nccl::for_process(&group, 0).unwrap().unwrap();
    let t = on_gpu(values(0, 5), Device::Cuda(0));
    comm.all_reduce_tensor(&t, ReduceOp::Average).unwrap();
    assert_eq!(t.to_vec_f32().unwrap(), values(0, 5));
    println!("ncclCommInitRank from an id shared over the rendezvous: rank 0 of 1");
}

fn model() -> Sequential {
    Sequential::new()
        .push(Conv2d::new(3, 8, 3, 1, 1, true).unwrap())
        .push(Activation::Relu)
        .push(SelectAdaptivePool2d {
            pool_type: PoolType::Avg,
        })
        .push(Linear::new(8, 5, true).unwrap())
}

/// The global batch of 4 images per rank, and its labels.
fn batch(world: usize) -> (Tensor, Tensor) {
    let b = 4 * world;
    let x = Generator::new(3)
        .uniform(&[b, 3, 9, 9], -1.0, 1.0, DType::F32)
        .unwrap();
    let y = Tensor::from_vec((0..b as i64).map(|i| i % 5).collect::<Vec<_>>(), &[b]).unwrap();
    (x, y)
}

/// Every parameter's gradient after one backward of the mean loss over `x`.
fn grads(net: &Sequential) -> Vec<Vec<f32>> {
    net.named_parameters()
        .iter()
        .map(|p| p.tensor.grad().unwrap().to_vec_f32().unwrap())
        .collect()
}

#[test]
fn one_ddp_step_through_nccl_matches_one_device_with_the_whole_batch() {
    let Some(ordinals) = gpus() else { return };
    let world = ordinals.len();
    let (x, y) = batch(world);
    let per_rank = on_device_threads(&ordinals, DEFAULT_TIMEOUT, |device, comm| {
        kiln_engine::manual_seed_thread(11);
        let net = model();
        net.to_device(device)?;
        let mut ddp = Ddp::new(comm.clone(), &net, DdpOptions::default())?;
        let part = |t: &Tensor| t.narrow(0, comm.rank() * 4, 4)?.to_device(device);
        let loss = net.forward(&part(&x)?)?.cross_entropy(&part(&y)?, 0.0)?;
        ddp.backward(&loss)?;
        Ok((comm.path_name(), grads(&net)))
    })
    .unwrap();
    kiln_engine::manual_seed_thread(11);
    let net = model();
    net.to_device(Device::Cuda(0)).unwrap();
    let on = |t: &Tensor| t.to_device(Device::Cuda(0)).unwrap();
    let loss = net
        .forward(&on(&x))
        .unwrap()
        .cross_entropy(&on(&y), 0.0)
        .unwrap();
    loss.backward().unwrap();
    let want = grads(&net);
    for (r, (path, got)) in per_rank.iter().enumerate() {
        assert_eq!(*path, "NCCL", "rank {r}");
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            let scale = w.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
            let err = g
                .iter()
                .zip(w)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max)
                / scale;
            assert!(err <= 1e-5, "rank {r} parameter {k}: relative {err:e}");
        }
    }
    println!("one DDP step through NCCL over {world} GPU(s) matches one GPU with the whole batch");
}
