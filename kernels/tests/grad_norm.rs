//! grad_norm.cu (through its launcher) against the CPU twin: the squared global norm of a list
//! longer than one launch, with empty, one-element and multi-chunk tensors.

mod common;
use common::gpu;
use kiln_kernels::cpu::grad_norm as cpu;
use kiln_kernels::cuda::grad_norm as cuda;

fn lists(lens: &[usize]) -> Vec<Vec<f32>> {
    lens.iter()
        .enumerate()
        .map(|(t, &n)| {
            (0..n)
                .map(|i| ((i * 7919 + t * 31) % 1009) as f32 / 300.0 - 1.5)
                .collect()
        })
        .collect()
}

#[test]
fn sq_norm_partials_add_up_to_the_cpu_norm() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let lens: Vec<usize> = [4097, 1, 0, 12_289]
        .into_iter()
        .chain((0..33).map(|i| 2 + i * 37))
        .collect();
    let host = lists(&lens);
    let dev: Vec<_> = host.iter().map(|v| g.upload(v)).collect();
    let ptrs: Vec<u64> = dev.iter().map(|d| g.ptr(d)).collect();
    let count = cuda::partial_count(&lens).unwrap();
    let expected_chunks: usize = lens.iter().map(|n| n.div_ceil(4096)).sum();
    assert_eq!(count, expected_chunks);
    let partial = g.zeros::<f32>(count);
    cuda::sq_norm_partials(&k, &ptrs, &lens, g.ptr(&partial)).unwrap();
    let got: f64 = g.download(&partial).iter().map(|&v| v as f64).sum();
    let views: Vec<&[f32]> = host.iter().map(|v| &v[..]).collect();
    let want = cpu::sq_norm(&views);
    assert!(
        (got - want).abs() <= 1e-6 * want,
        "Σg²: device {got} vs cpu {want}"
    );
}

#[test]
fn clip_factor_on_the_device_has_the_twins_bits() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let lens: Vec<usize> = vec![4097, 1, 12_289, 300];
    let host = lists(&lens);
    let dev: Vec<_> = host.iter().map(|v| g.upload(v)).collect();
    let ptrs: Vec<u64> = dev.iter().map(|d| g.ptr(d)).collect();
    let count = cuda::partial_count(&lens).unwrap();
    let partial = g.zeros::<f32>(count);
    cuda::sq_norm_partials(&k, &ptrs, &lens, g.ptr(&partial)).unwrap();
    // The host's order: the partials widened to f64 and added from the first.
    let sq: f64 = g.download(&partial).iter().map(|&v| v as f64).sum();
    let norm = sq.sqrt();
    for max_norm in [norm * 0.37, norm * 0.999, norm * 2.0, 0.0] {
        let factor = g.zeros::<f32>(1);
        cuda::clip_factor(&k, g.ptr(&partial), count, max_norm, 1e-6, g.ptr(&factor)).unwrap();
        let want = cpu::clip_factor(norm, max_norm, 1e-6);
        assert_eq!(
            g.download(&factor)[0].to_bits(),
            want.to_bits(),
            "max_norm {max_norm}: device vs twin"
        );
        assert_eq!(want == 1.0, max_norm >= norm, "clips only above the max");
    }
}
