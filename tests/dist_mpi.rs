//! Data-parallel training over MPI (feature `mpi`; needs Debian's openmpi-bin): 2 ranks of
//! batch B end where 1 rank of batch 2B does, SyncBN over 2 ranks is BN over the whole batch,
//! `--dist-bn` agrees on running statistics, and `kiln launch` runs and stops its ranks.
#![cfg(feature = "mpi")]

mod common;

use common::{dataset, train_args};
use kiln::engine::{BatchNormArgs, DType, Tensor};
use kiln::train::checkpoint::Checkpoint;
use kiln::train::dist::{dist_bn, Communicator, DistBn, ReduceOp};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

/// A command that may run MPI as root (CI containers) with one compute thread per rank.
fn command(program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("RAYON_NUM_THREADS", "1");
    c
}

fn checked(o: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

/// `mpirun -np 2 kiln train ...` with the shared end-to-end settings and `env` set on each rank.
fn train_two_ranks(
    data: &Path,
    out: &Path,
    exp: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> String {
    let mut c = command("mpirun");
    c.args(["--oversubscribe", "-np", "2"]);
    for (name, value) in env {
        c.env(name, value).args(["-x", name]);
    }
    let o = c
        .arg(env!("CARGO_BIN_EXE_kiln"))
        .args(train_args(data, out, exp, extra))
        .output()
        .unwrap();
    checked(o, "mpirun -np 2 kiln train")
}

fn train_one_rank(data: &Path, out: &Path, exp: &str, extra: &[&str]) {
    let o = command(env!("CARGO_BIN_EXE_kiln"))
        .args(train_args(data, out, exp, extra))
        .output()
        .unwrap();
    checked(o, "kiln train");
}

/// Every model tensor of two runs' last checkpoints agrees within `rel` of its largest value
/// (at least 1e-3: the BNs before a zero-initialized last BN stay near zero, at rounding noise).
fn assert_same_weights(a: &Path, b: &Path, rel: f64) {
    let (a, b) = (
        Checkpoint::load(&a.join("last.safetensors")).unwrap(),
        Checkpoint::load(&b.join("last.safetensors")).unwrap(),
    );
    assert_eq!(a.model.len(), b.model.len());
    for (name, ta) in &a.model {
        let (x, y) = (
            ta.to_vec_f32().unwrap(),
            b.model[name].to_vec_f32().unwrap(),
        );
        let scale = x.iter().fold(1e-3f32, |m, v| m.max(v.abs())) as f64;
        let worst = x
            .iter()
            .zip(&y)
            .map(|(p, q)| (p - q).abs() as f64)
            .fold(0.0, f64::max);
        assert!(
            worst <= rel * scale,
            "{name}: differs by {worst:e} (largest value {scale:e})"
        );
    }
}

/// The settings both sides share: no augmentation (the samples are the same images), SyncBN so
/// the 2-rank BN sees the whole batch as the 1-rank one does, and a small lr: BN over a few
/// values per channel (resnet18's layer4 is 1×1 at 28×28) amplifies the rounding differences of
/// summing in another order by about 10× a step at lr 0.05 (2 ranks of 8 match 1 of 16 within
/// 1e-6 after 1 step but drift to 1e-2 after 8).
const SAME: &[&str] = &["--no-aug", "--epochs", "1", "--sync-bn", "--lr", "0.01"];

#[test]
fn two_ranks_of_batch_b_match_one_rank_of_batch_2b() {
    // 4 batches of 32 (2 updates with accumulation), or 1 for bf16. The accumulation case also
    // reduces its buckets on the training thread (no MPI gradient thread), as where MPI grants
    // less than MPI_THREAD_MULTIPLE.
    let (data, one_batch) = (dataset("ddp", 128, 32), dataset("ddp1", 32, 32));
    let cases: [(&str, &[&str], &Path, f64); 4] = [
        ("sgd", &[], &data, 1e-5),
        // Adam's first steps map a gradient g to about lr·sign(g): where the true gradient is
        // near zero (a bias feeding a BN), rounding noise would pick the sign. A large eps keeps
        // the update linear in such gradients, but still divides them by about eps, so a BN
        // bias that starts at zero carries its gradient sums' relative rounding nearly unscaled:
        // with the CPU's channels-last kernels (their batch sums in another order than NCHW's)
        // a BN bias differs by up to 1.5e-7 after 2 updates (layer2.1.bn1.bias, 1.5e-4 of the
        // 1e-3 floor), depending on the initial draws. A real mismatch moves a weight by about
        // lr = 1e-3 in one update, 1.0 of that floor: the bound stays 5000 times below it.
        (
            "adamw",
            &["--opt", "adamw", "--lr", "0.001", "--opt-eps", "1e-3"],
            &data,
            2e-4,
        ),
        ("accum", &["--grad-accum-steps", "2"], &data, 1e-5),
        // bf16 weight gradients are sums over the batch rounded to 8 bits: each rank's half
        // rounds on its own (measured: 6e-4 of the largest weight after one update, where f32
        // agrees within 2e-6), so bf16 is held to bf16's precision, over one update.
        (
            "amp",
            &["--amp", "--amp-dtype", "bfloat16"],
            &one_batch,
            2e-3,
        ),
    ];
    for (name, extra, data, tol) in cases {
        let out = data.join("runs");
        let args = |b: &'static str| -> Vec<&str> { [SAME, extra, &["-b", b]].concat() };
        let (one, two) = (format!("{name}-1"), format!("{name}-2"));
        train_one_rank(data, &out, &one, &args("32"));
        let env: &[(&str, &str)] = match name {
            "accum" => &[("KILN_MPI_GRAD_THREAD", "0")],
            _ => &[],
        };
        let stdout = train_two_ranks(data, &out, &two, &args("16"), env);
        assert!(stdout.contains("on 2 rank(s)"), "{stdout}");
        assert_same_weights(&out.join(one), &out.join(two), tol);
        println!("{name}: 2 ranks match 1");
    }
}

#[test]
fn launch_trains_two_ranks_as_one_with_twice_the_batch() {
    let data = dataset("launch", 64, 32);
    let out = data.join("runs");
    train_one_rank(&data, &out, "one", &[SAME, &["-b", "32"]].concat());
    let mut args = vec![
        "launch",
        "--nproc-per-node",
        "2",
        "--master-port",
        "29731",
        "--",
    ];
    let train = train_args(&data, &out, "launch", &[SAME, &["-b", "16"]].concat());
    args.extend(train.iter().map(String::as_str));
    let o = command(env!("CARGO_BIN_EXE_kiln"))
        .args(&args)
        .output()
        .unwrap();
    checked(o, "kiln launch");
    assert_same_weights(&out.join("one"), &out.join("launch"), 1e-5);
}

#[test]
fn a_killed_rank_stops_the_launch_with_its_name() {
    // The embedded Fashion-MNIST run (several minutes): rank 1 is killed once training started.
    let child = command(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "launch",
            "--nproc-per-node",
            "2",
            "--master-port",
            "29732",
            "--",
        ])
        .args(["train", "--epochs", "1", "--log-interval", "1"])
        .args([
            "--output",
            std::env::temp_dir().join("kiln-kill").to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let launcher = child.id();
    let rank1 = wait_for_rank(launcher, 1);
    std::thread::sleep(std::time::Duration::from_secs(4));
    Command::new("kill")
        .args(["-9", &rank1.to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains(&format!("rank 1 (pid {rank1}) was killed by signal 9")),
        "{stderr}"
    );
    assert!(children_of(launcher).is_empty(), "ranks left running");
}

#[test]
fn a_rank_that_never_reaches_mpi_init_ends_the_job_by_the_timeout() {
    // Rank 1 stops itself before it starts kiln, so rank 0's MPI_Init waits for it in the
    // launch's exchange of endpoints: rank 0's watchdog names the call and ends the rank after
    // --dist-timeout, and mpirun then ends the job.
    let data = dataset("init", 8, 8);
    let out = data.join("runs");
    let start = std::time::Instant::now();
    let o = command("mpirun")
        .args(["--oversubscribe", "-np", "2", "sh", "-c"])
        .arg(r#"[ "$OMPI_COMM_WORLD_RANK" = 1 ] && kill -STOP $$; exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_kiln"))
        .args(train_args(&data, &out, "init", &["--dist-timeout", "3s"]))
        .output()
        .unwrap();
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{stderr}");
    assert!(
        stderr.contains("error: MPI_Init did not return within 3s (--dist-timeout) on rank 0"),
        "{stderr}"
    );
    assert!(took < std::time::Duration::from_secs(30), "took {took:?}");
}

/// The pid of the launcher's child with RANK=`rank`, once it exists.
fn wait_for_rank(launcher: u32, rank: usize) -> u32 {
    for _ in 0..200 {
        for pid in children_of(launcher) {
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let want = format!("RANK={rank}");
            if env.split(|&b| b == 0).any(|v| v == want.as_bytes()) {
                return pid;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the launcher started no rank {rank}");
}

/// The live child processes of `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn sync_bn_and_dist_bn_over_two_ranks() {
    let o = command("mpirun")
        .args([
            "--oversubscribe",
            "-np",
            "2",
            &std::env::current_exe().unwrap().to_string_lossy(),
        ])
        .args([
            "--exact",
            "mpi_worker_sync_bn_and_dist_bn",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .output()
        .unwrap();
    let stdout = checked(o, "mpirun -np 2 (SyncBN worker)");
    assert_eq!(
        stdout
            .matches("SyncBN matches BN over the whole batch")
            .count(),
        2,
        "{stdout}"
    );
}

/// Runs on each of 2 MPI ranks (started by the test above): SyncBN of this rank's half equals
/// BN over the whole batch (outputs, input gradients, summed γ/β gradients, running stats);
/// then dist_bn reduce averages, and broadcast copies rank 0's, running statistics.
#[test]
#[ignore = "an MPI rank of sync_bn_and_dist_bn_over_two_ranks"]
fn mpi_worker_sync_bn_and_dist_bn() {
    let comm = Communicator::from_env().unwrap();
    assert_eq!(comm.world_size(), 2, "run under mpirun -np 2");
    let (n, c, h, w) = (6, 3, 4, 5);
    let x = Tensor::randn(&[n, c, h, w], DType::F32, 7)
        .unwrap()
        .mul_scalar(2.0)
        .unwrap()
        .add_scalar(0.5)
        .unwrap();
    let res = Tensor::randn(&[n, c, h, w], DType::F32, 8).unwrap();
    let up = Tensor::randn(&[n, c, h, w], DType::F32, 9).unwrap();
    let full = run_bn(&x, &res, &up, None);
    let r = comm.rank();
    let half = |t: &Tensor| t.narrow(0, r * n / 2, n / 2).unwrap().contiguous().unwrap();
    let sync: Arc<dyn kiln::engine::CrossReplicaSum> = comm.clone();
    let mine = run_bn(&half(&x), &half(&res), &half(&up), Some(sync));
    let close = |what: &str, a: &[f32], b: &[f32]| {
        let scale = a.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        for (i, (p, q)) in a.iter().zip(b).enumerate() {
            assert!((p - q).abs() <= 1e-5 * scale, "{what}[{i}]: {p} vs {q}");
        }
    };
    close(
        "y",
        &half(&full.y).to_vec_f32().unwrap(),
        &mine.y.to_vec_f32().unwrap(),
    );
    close(
        "dx",
        &half(&full.dx).to_vec_f32().unwrap(),
        &mine.dx.to_vec_f32().unwrap(),
    );
    close(
        "dres",
        &half(&full.dres).to_vec_f32().unwrap(),
        &mine.dres.to_vec_f32().unwrap(),
    );
    let mut dparams = mine.dparams.clone();
    comm.all_reduce(&mut dparams, ReduceOp::Sum).unwrap();
    close("dgamma, dbeta", &full.dparams, &dparams);
    close("running stats", &full.running, &mine.running);
    println!("SyncBN matches BN over the whole batch");

    let mut model = kiln::nn::create_model(
        "resnet18",
        &kiln::nn::ModelArgs {
            num_classes: 10,
            ..Default::default()
        },
    )
    .unwrap();
    let bn_mean = |m: &mut dyn kiln::nn::Model| {
        let mut v = 0.0;
        kiln::nn::layers::for_each_batch_norm(m, &mut |bn| {
            v = bn.running_mean.to_vec_f32().unwrap()[0]
        });
        v
    };
    let set = |m: &mut dyn kiln::nn::Model, v: f32| {
        kiln::nn::layers::for_each_batch_norm(m, &mut |bn| {
            let len = bn.running_mean.numel();
            bn.running_mean
                .copy_(&Tensor::from_vec(vec![v; len], &[len]).unwrap())
                .unwrap();
        })
    };
    set(model.as_mut(), 1.0 + r as f32);
    dist_bn(model.as_mut(), &comm, DistBn::Reduce).unwrap();
    assert_eq!(
        bn_mean(model.as_mut()),
        1.5,
        "reduce averages ranks 1.0 and 2.0"
    );
    set(model.as_mut(), 1.0 + r as f32);
    dist_bn(model.as_mut(), &comm, DistBn::Broadcast).unwrap();
    assert_eq!(bn_mean(model.as_mut()), 1.0, "broadcast copies rank 0's");
}

struct BnRun {
    y: Tensor,
    dx: Tensor,
    dres: Tensor,
    /// dγ then dβ.
    dparams: Vec<f32>,
    /// running mean then running var.
    running: Vec<f32>,
}

/// ReLU(BN(x) + res) in training, backward from Σ y·up.
fn run_bn(
    x: &Tensor,
    res: &Tensor,
    up: &Tensor,
    sync: Option<Arc<dyn kiln::engine::CrossReplicaSum>>,
) -> BnRun {
    let c = x.shape()[1];
    let leaf = |t: &Tensor| {
        Tensor::from_vec(t.to_vec_f32().unwrap(), t.shape())
            .unwrap()
            .requires_grad_(true)
            .clone()
    };
    let (x, res) = (leaf(x), leaf(res));
    let gamma = leaf(&Tensor::randn(&[c], DType::F32, 3).unwrap());
    let beta = leaf(&Tensor::randn(&[c], DType::F32, 4).unwrap());
    let (rm, rv) = (
        Tensor::zeros(&[c], DType::F32).unwrap(),
        Tensor::ones(&[c], DType::F32).unwrap(),
    );
    let args = BatchNormArgs {
        weight: Some(&gamma),
        bias: Some(&beta),
        running_mean: Some(&rm),
        running_var: Some(&rv),
        num_batches_tracked: None,
        training: true,
        momentum: 0.1,
        eps: 1e-5,
    };
    let y = x
        .batch_norm_act_synced(args, Some(&res), true, sync)
        .unwrap();
    y.mul(up).unwrap().sum_all().unwrap().backward().unwrap();
    let grad = |t: &Tensor| t.grad().unwrap().to_vec_f32().unwrap();
    BnRun {
        y: y.detach(),
        dx: x.grad().unwrap(),
        dres: res.grad().unwrap(),
        dparams: [grad(&gamma), grad(&beta)].concat(),
        running: [rm.to_vec_f32().unwrap(), rv.to_vec_f32().unwrap()].concat(),
    }
}
