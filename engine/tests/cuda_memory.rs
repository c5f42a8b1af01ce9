//! The caching allocator on the CUDA backend: reuse, counters, empty_cache, out-of-memory errors.

mod common;

use common::cuda_device;
use kiln_engine::{DType, Device, Error, Tensor};

// One test owns the device's counters (tests run in parallel), so its checks see only their own
// allocations; the round trip runs after them.
#[test]
fn allocator_reuses_counts_and_returns_blocks_then_tensors_round_trip() {
    let Some(dev) = cuda_device() else { return };
    let gpu = Device::Cuda(0);
    dev.empty_cache().unwrap();
    let base = dev.memory_stats();

    let a = Tensor::full_on(&[1000, 100], 1.0, DType::F32, gpu).unwrap();
    let after_a = dev.memory_stats();
    assert_eq!(
        after_a.allocated - base.allocated,
        400_384,
        "400 000 bytes round to 512-byte classes"
    );
    assert_eq!(after_a.driver_allocs, base.driver_allocs + 1);
    drop(a);
    assert_eq!(dev.memory_stats().allocated, base.allocated);

    // The same size class again comes from the cache, not the driver.
    let b = Tensor::full_on(&[100, 1000], 2.0, DType::F32, gpu).unwrap();
    let after_b = dev.memory_stats();
    assert_eq!(after_b.driver_allocs, after_a.driver_allocs);
    assert_eq!(after_b.cache_hits, after_a.cache_hits + 1);
    assert_eq!(b.to_vec::<f32>().unwrap()[99_999], 2.0);
    assert!(after_b.peak_allocated >= after_b.allocated);
    drop(b);

    dev.empty_cache().unwrap();
    let empty = dev.memory_stats();
    assert_eq!(
        empty.reserved, empty.allocated,
        "empty_cache returns every cached block"
    );

    // Twice the device's memory: a clear error with the numbers, not a panic.
    let (_, total) = dev.mem_get_info().unwrap();
    let floats = total / 2;
    let err = Tensor::full_on(&[floats], 0.0, DType::F32, gpu).unwrap_err();
    assert!(
        matches!(err, Error::OutOfMemory { requested, .. } if requested == 4 * floats),
        "{err}"
    );
    let msg = err.to_string();
    let expected = format!("out of memory: tried to allocate {} bytes", 4 * floats);
    assert!(msg.contains(&expected), "{msg}");
    round_trip();
}

fn round_trip() {
    let x = Tensor::arange(0.0, 35.0, 1.0, DType::F32)
        .unwrap()
        .reshape(&[5, 7])
        .unwrap();
    let view = x.narrow(0, 1, 3).unwrap().transpose(0, 1).unwrap();
    let on_gpu = view.to_device(Device::Cuda(0)).unwrap();
    assert_eq!(on_gpu.device(), Device::Cuda(0));
    assert_eq!(
        on_gpu.to_vec::<f32>().unwrap(),
        view.to_vec::<f32>().unwrap()
    );
    let back = on_gpu.to_device(Device::Cpu).unwrap();
    assert_eq!(back.device(), Device::Cpu);
    assert_eq!(back.to_vec::<f32>().unwrap(), view.to_vec::<f32>().unwrap());
    // Mixing devices is an error naming both.
    let err = view.add(&on_gpu).unwrap_err();
    assert!(err.to_string().contains("device mismatch"), "{err}");
}
