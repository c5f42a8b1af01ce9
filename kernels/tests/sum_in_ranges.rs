//! `cpu::sum_in_ranges`: the same bits on every run with the same thread count, and the value
//! of the plain sum.

use kiln_kernels::cpu::sum_in_ranges;

/// Terms of mixed magnitude, so that regrouping a float sum changes its last bits.
fn term(i: usize) -> f32 {
    let scale = [1e-3f32, 1.0, 1e3, 1e6][i % 4];
    scale * ((i * 7919 % 1009) as f32 / 1009.0 - 0.37)
}

fn sum_in(pool: &rayon::ThreadPool, n: usize) -> [f32; 4] {
    pool.install(|| {
        sum_in_ranges(
            n,
            || [0f32; 4],
            |acc, i| {
                acc.iter_mut()
                    .for_each(|a| *a += term(i) * (1.0 + i as f32 * 1e-4))
            },
            |a, b| a.iter_mut().zip(b).for_each(|(x, y)| *x += y),
        )
    })
}

#[test]
fn the_same_thread_count_gives_the_same_bits_every_run() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    let first = sum_in(&pool, 10_007);
    for _ in 0..200 {
        // Another job on the pool meanwhile, so that work-stealing varies from run to run.
        let (again, _) = pool.join(
            || sum_in(&pool, 10_007),
            || (0..20_000u64).map(|v| v * v).sum::<u64>(),
        );
        assert_eq!(again.map(f32::to_bits), first.map(f32::to_bits));
    }
}

#[test]
fn the_total_is_the_sum_over_all_items() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    let want: f64 = (0..1000)
        .map(|i| term(i) as f64 * (1.0 + i as f64 * 1e-4))
        .sum();
    let got = sum_in(&pool, 1000)[0] as f64;
    // f32 accumulation of 1000 terms up to 1e6: within 1000·ε·Σ|terms|.
    let bound =
        1000.0 * f32::EPSILON as f64 * (0..1000).map(|i| term(i).abs() as f64 * 1.1).sum::<f64>();
    assert!(
        (got - want).abs() <= bound,
        "{got} against {want} (bound {bound})"
    );
    assert_eq!(sum_in(&pool, 0), [0.0; 4], "no items: zero");
}
