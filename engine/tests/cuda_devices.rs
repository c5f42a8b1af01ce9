//! Devices by ordinal: cuda:1 opens its own context, streams and allocator, computes what cuda:0
//! and the CPU compute, and tensors move between devices (a peer copy) unchanged. On the
//! emulator this binary asks for 2 devices (`KILN_EMU_DEVICES=2`) before the first driver call;
//! on a machine with fewer than 2 GPUs it reports "skipped".

use kiln_engine::{cuda, Conv2dParams, DType, Device, Error, Generator, Tensor};
use std::io::Write;
use std::sync::Once;

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

fn input(shape: &[usize], seed: u64) -> Tensor {
    Generator::new(seed)
        .uniform(shape, -2.0, 2.0, DType::F32)
        .unwrap()
}

/// A small forward and backward on `device`: conv, ReLU, matmul, cross-entropy; returns the
/// loss, the logits and both weight gradients, on the host.
fn step(device: Device) -> Vec<Vec<f32>> {
    let x = input(&[3, 2, 7, 7], 1).to_device(device).unwrap();
    let w = input(&[4, 2, 3, 3], 2).to_device(device).unwrap();
    let fc = input(&[4 * 25, 5], 3).to_device(device).unwrap();
    let target = Tensor::from_vec(vec![0i64, 4, 2], &[3])
        .unwrap()
        .to_device(device)
        .unwrap();
    w.requires_grad_(true);
    fc.requires_grad_(true);
    let h = x
        .conv2d(&w, None, Conv2dParams::default())
        .unwrap()
        .relu()
        .unwrap();
    let logits = h.flatten_from(1).unwrap().matmul(&fc).unwrap();
    let loss = logits.cross_entropy(&target, 0.1).unwrap();
    loss.backward().unwrap();
    assert_eq!(w.grad().unwrap().device(), device);
    [loss, logits, w.grad().unwrap(), fc.grad().unwrap()]
        .iter()
        .map(|t| t.to_vec_f32().unwrap())
        .collect()
}

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / scale)
        .fold(0.0, f32::max)
}

#[test]
fn ops_on_cuda1_equal_cuda0_and_the_cpu() {
    if !two_devices() {
        return;
    }
    let d0 = cuda::device(0).unwrap();
    let d1 = cuda::device(1).unwrap();
    assert_eq!((d0.ordinal(), d1.ordinal()), (0, 1));
    let before = d1.memory_stats().driver_allocs;
    // Both devices at once, one host thread each (how one process drives several GPUs).
    let on1 = std::thread::spawn(|| step(Device::Cuda(1)));
    let on0 = step(Device::Cuda(0));
    let on1 = on1.join().unwrap();
    assert!(
        d1.memory_stats().driver_allocs > before,
        "cuda:1 allocates from its own pool"
    );
    let cpu = step(Device::Cpu);
    for (k, name) in ["loss", "logits", "conv grad", "fc grad"]
        .iter()
        .enumerate()
    {
        assert_eq!(on1[k], on0[k], "{name}: the same kernels on either device");
        let err = max_rel(&on1[k], &cpu[k]);
        assert!(err < 1e-5, "{name}: cuda:1 vs cpu {err:e}");
    }
}

#[test]
fn a_tensor_moved_between_devices_is_unchanged() {
    if !two_devices() {
        return;
    }
    for dtype in [DType::F32, DType::F16, DType::I64] {
        let host = input(&[5, 3, 11], 9).to_dtype(dtype).unwrap();
        let on0 = host.to_device(Device::Cuda(0)).unwrap();
        let on1 = on0.to_device(Device::Cuda(1)).unwrap();
        assert_eq!(on1.device(), Device::Cuda(1));
        assert_eq!(on1.dtype(), dtype);
        let back = on1.to_device(Device::Cpu).unwrap();
        let (a, b) = (host.to_vec_f32().unwrap(), back.to_vec_f32().unwrap());
        assert_eq!(a, b, "{dtype:?} 0 -> 1 -> cpu");
    }
    // A strided view moves as its values, and gradients flow back across the copy.
    let x = input(&[4, 6], 4).to_device(Device::Cuda(0)).unwrap();
    x.requires_grad_(true);
    let t = x.permute(&[1, 0]).unwrap();
    let moved = t.to_device(Device::Cuda(1)).unwrap();
    assert_eq!(moved.to_vec_f32().unwrap(), t.to_vec_f32().unwrap());
    moved
        .mul_scalar(3.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g = x.grad().unwrap();
    assert_eq!(g.device(), Device::Cuda(0));
    assert!(g.to_vec_f32().unwrap().iter().all(|v| *v == 3.0));
}

#[test]
fn ops_across_devices_are_refused() {
    if !two_devices() {
        return;
    }
    let a = input(&[3], 1).to_device(Device::Cuda(0)).unwrap();
    let b = input(&[3], 2).to_device(Device::Cuda(1)).unwrap();
    let e = a.add(&b).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DeviceMismatch {
                lhs: Device::Cuda(0),
                rhs: Device::Cuda(1),
                ..
            }
        ),
        "{e}"
    );
    let past = Tensor::zeros(&[1], DType::F32)
        .unwrap()
        .to_device(Device::Cuda(64))
        .unwrap_err();
    assert!(past.to_string().contains("cuda:64"), "{past}");
}
