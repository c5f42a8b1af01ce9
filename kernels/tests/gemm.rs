//! gemm.cu and gemm_tc.cu (through their launchers) against an f64 reference: odd sizes down to 1,
//! transposes and broadcast batches through strides, padded C rows, beta 0 (C never read) and
//! beta 1, both SIMT tiles, every dtype; tensor cores for f16/bf16 with operands copied in 16-byte
//! chunks, gathered, or one of each. Half inputs are rounded first, so the reference sees exactly
//! what the kernel reads.

mod common;
use common::elem::{values, Elem, PerDtype};
use common::gpu;
use half::{bf16, f16};
use kiln_kernels::cuda::gemm::{gemm, gemm_tiled, GemmArgs, Tile};
use kiln_kernels::cuda::gemm_tc::{gemm_tc, stagings};
use kiln_kernels::cuda::Kernels;

/// Per dtype, (ATOL, RTOL) of the tolerance |got - want| <= ATOL + RTOL·|want|. Halves: f32
/// accumulation, then one rounding of the output (2^-11 for f16, 2^-8 for bf16).
const TOL: PerDtype<(f64, f64)> = PerDtype {
    f32: (1e-5, 1e-5),
    f64: (1e-12, 1e-12),
    f16: (2e-3, 1.5e-3),
    bf16: (1e-2, 8e-3),
};

/// One product's shape and memory layout.
#[derive(Debug, Clone, Copy)]
struct Case {
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    /// A stored as [batch, k, m].
    ta: bool,
    /// B stored as [batch, n, k].
    tb: bool,
    /// One B shared by every batch (batch stride 0).
    b_shared: bool,
    /// Extra elements at the end of each C row.
    c_pad: usize,
    /// Elements before A's first (misaligning it for 16-byte copies when odd).
    a_off: usize,
    beta: f32,
}

impl Case {
    fn new(batch: usize, m: usize, n: usize, k: usize) -> Case {
        Case {
            batch,
            m,
            n,
            k,
            ta: false,
            tb: false,
            b_shared: false,
            c_pad: 0,
            a_off: 0,
            beta: 0.0,
        }
    }
}

/// Which kernels run a case.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// The SIMT launcher's own tile choice.
    Default,
    /// A given SIMT tile.
    Tile(Tile),
    /// gemm_tc.cu; the operands' 16-byte copies must be as given (A, B), when given.
    TensorCores(Option<[bool; 2]>),
}

/// Runs `c` through `via` and checks every element of C, including the padding, which must keep
/// its old value.
fn check<T: Elem>(k: &Kernels, g: &common::Gpu, c: Case, via: Via) {
    let Case {
        batch, m, n, k: kd, ..
    } = c;
    let a_strides = if c.ta {
        [kd * m, 1, m]
    } else {
        [m * kd, kd, 1]
    };
    let b_mats = if c.b_shared { 1 } else { batch };
    let b_strides = match (c.tb, c.b_shared) {
        (true, s) => [if s { 0 } else { n * kd }, 1, kd],
        (false, s) => [if s { 0 } else { kd * n }, n, 1],
    };
    let ldc = n + c.c_pad;
    let c_strides = [m * ldc, ldc, 1];
    // Round through T so the reference multiplies exactly the stored values.
    let round = |v: Vec<f64>| -> Vec<T> { v.into_iter().map(T::enc).collect() };
    let a = round(values(c.a_off + batch * m * kd, 1));
    let b = round(values(b_mats * kd * n, 2));
    let c0: Vec<T> = if c.beta == 0.0 {
        vec![T::enc(f64::NAN); batch * m * ldc]
    } else {
        round(values(batch * m * ldc, 3))
    };
    let alpha = 0.75f32;
    let mut want: Vec<f64> = c0.iter().map(|v| v.dec()).collect();
    for bi in 0..batch {
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                for l in 0..kd {
                    let ai = c.a_off + bi * a_strides[0] + i * a_strides[1] + l * a_strides[2];
                    let av = a[ai].dec();
                    let bv = b[bi * b_strides[0] + l * b_strides[1] + j * b_strides[2]].dec();
                    s += av * bv;
                }
                let o = bi * c_strides[0] + i * ldc + j;
                let old = if c.beta == 0.0 { 0.0 } else { want[o] };
                want[o] = alpha as f64 * s + c.beta as f64 * old;
            }
        }
    }
    let (da, db, dc) = (g.upload(&a), g.upload(&b), g.upload(&c0));
    let args = GemmArgs {
        batch,
        m,
        n,
        k: kd,
        a: g.ptr(&da) + (c.a_off * std::mem::size_of::<T>()) as u64,
        a_strides,
        b: g.ptr(&db),
        b_strides,
        c: g.ptr(&dc),
        c_strides,
        alpha,
        beta: c.beta,
    };
    match via {
        Via::Tile(t) => gemm_tiled(k, T::TY, &args, t),
        Via::Default => gemm(k, T::TY, &args),
        Via::TensorCores(copies) => {
            if let Some(copies) = copies {
                assert_eq!(stagings(&args).map(|s| s.copies), copies, "{c:?}");
            }
            gemm_tc(k, T::TY, &args)
        }
    }
    .unwrap_or_else(|e| panic!("{c:?}: {e}"));
    let got = g.download(&dc);
    for (i, (g, &w)) in got.iter().zip(&want).enumerate() {
        let g = g.dec();
        let ok = if w.is_nan() {
            g.is_nan()
        } else {
            let (atol, rtol) = T::of(&TOL);
            (g - w).abs() <= atol + rtol * w.abs()
        };
        assert!(ok, "{} {c:?} {via:?}: C[{i}] = {g}, want {w}", T::TY);
    }
}

fn odd_cases() -> Vec<Case> {
    let mut v = vec![
        Case::new(1, 1, 1, 1),
        Case::new(1, 1, 37, 5),
        Case::new(2, 33, 1, 17),
        Case::new(1, 7, 9, 0),
        Case::new(3, 65, 70, 19),
    ];
    v.push(Case {
        ta: true,
        beta: 1.0,
        ..Case::new(2, 37, 29, 23)
    });
    v.push(Case {
        tb: true,
        c_pad: 3,
        ..Case::new(2, 19, 67, 33)
    });
    v.push(Case {
        ta: true,
        tb: true,
        b_shared: true,
        beta: 1.0,
        c_pad: 1,
        ..Case::new(3, 66, 13, 41)
    });
    v
}

#[test]
fn gemm_f32_matches_reference_on_odd_shapes_and_strides() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    for c in odd_cases() {
        check::<f32>(&k, &g, c, Via::Default);
    }
}

#[test]
fn gemm_f64_accumulates_in_f64() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    for c in odd_cases().into_iter().step_by(2) {
        check::<f64>(&k, &g, c, Via::Default);
    }
}

#[test]
fn gemm_half_inputs_accumulate_in_f32() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    for c in odd_cases().into_iter().skip(3) {
        check::<f16>(&k, &g, c, Via::Default);
        check::<bf16>(&k, &g, c, Via::Default);
    }
}

#[test]
fn gemm_128_tiles_match_reference() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let wide = Case {
        tb: true,
        beta: 1.0,
        ..Case::new(1, 131, 133, 21)
    };
    let tall = Case {
        ta: true,
        c_pad: 2,
        ..Case::new(2, 130, 3, 9)
    };
    for c in [wide, tall] {
        check::<f32>(&k, &g, c, Via::Tile(Tile::T128));
    }
    check::<f16>(&k, &g, tall, Via::Tile(Tile::T128));
    check::<bf16>(&k, &g, tall, Via::Tile(Tile::T128));
}

/// Every odd case (mostly no 16-byte rows, so gathers) and cases whose operands copy:
/// both row-major, both transposed with a shared B, one of each with a misaligned A (gathered)
/// and an odd n (B gathered when n-adjacent).
#[test]
fn gemm_tc_matches_reference_on_odd_shapes_and_strides() {
    let Some(g) = gpu() else { return };
    let Some(k) = g.tensor_core_kernels("GEMM") else {
        return;
    };
    for c in odd_cases() {
        check::<f16>(&k, &g, c, Via::TensorCores(None));
        check::<bf16>(&k, &g, c, Via::TensorCores(None));
    }
    let aligned = [
        (Case::new(2, 70, 72, 40), [true, true]),
        (
            Case {
                ta: true,
                tb: true,
                b_shared: true,
                beta: 1.0,
                ..Case::new(3, 72, 48, 24)
            },
            [true, true],
        ),
        (
            Case {
                ta: true,
                c_pad: 1,
                ..Case::new(2, 40, 35, 56)
            },
            [true, false],
        ),
        (
            Case {
                tb: true,
                a_off: 1,
                ..Case::new(1, 67, 35, 40)
            },
            [false, true],
        ),
    ];
    for (c, copies) in aligned {
        check::<f16>(&k, &g, c, Via::TensorCores(Some(copies)));
        check::<bf16>(&k, &g, c, Via::TensorCores(Some(copies)));
    }
}

#[test]
fn gemm_tile_choice_fills_the_gpu_before_growing_tiles() {
    assert_eq!(Tile::choose("f32", 1024, 1024, 1, 132), Tile::T64);
    assert_eq!(Tile::choose("f32", 4096, 4096, 1, 132), Tile::T128);
    assert_eq!(Tile::choose("f64", 4096, 4096, 1, 132), Tile::T64);
    assert_eq!(Tile::choose("bf16", 100, 8192, 64, 132), Tile::T64);
}
