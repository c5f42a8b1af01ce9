//! `cpu::threads::compute_on_calling_thread`, alone in its binary: it changes the process's
//! global pool for good.

use kiln_engine::cpu::threads::compute_on_calling_thread;
use kiln_engine::Tensor;

#[test]
fn the_calling_thread_becomes_worker_0_and_ops_still_compute() {
    assert!(compute_on_calling_thread());
    assert_eq!(rayon::current_thread_index(), Some(0));
    let a = Tensor::from_vec((0..64 * 64).map(|i| (i % 7) as f32).collect(), &[64, 64]).unwrap();
    let ones = Tensor::from_vec(vec![1.0f32; 64], &[64, 1]).unwrap();
    // Row sums of a through a parallel GEMM, against a serial sum.
    let got = a.matmul(&ones).unwrap().to_vec::<f32>().unwrap();
    let want: Vec<f32> = (0..64)
        .map(|r| (0..64).map(|c| ((r * 64 + c) % 7) as f32).sum())
        .collect();
    assert_eq!(got, want);
    assert!(
        !compute_on_calling_thread(),
        "a second call changes nothing"
    );
}
