//! elementwise.cu (through its launchers) against the CPU twin on odd sizes and broadcast strides.

mod common;
use common::{assert_close, bf16_bits, f16_bits, gpu};
use kiln_kernels::cpu::elementwise::{self as cpu, BinaryOp, CmpOp, UnaryOp};
use kiln_kernels::cuda::elementwise::{self as cuda, Operand};

#[test]
fn every_unary_op_and_its_gradient_match_the_cpu() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let n = 1003;
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 13.0)
        .collect();
    let pos: Vec<f32> = x.iter().map(|v| v.abs() + 0.1).collect();
    let dy: Vec<f32> = (0..n).map(|i| ((i % 7) as f32 - 3.0) / 5.0).collect();
    let ops = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Rsqrt,
        UnaryOp::Abs,
        UnaryOp::Relu,
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
        UnaryOp::Silu,
        UnaryOp::Gelu,
        UnaryOp::HardSwish,
        UnaryOp::HardSigmoid,
        UnaryOp::Recip,
        UnaryOp::Square,
        UnaryOp::Powf(1.5),
        UnaryOp::Clamp(-0.5, 0.7),
        UnaryOp::Affine(2.0, -1.0),
        UnaryOp::GeluTanh,
    ];
    for op in ops {
        let positive_only = matches!(
            op,
            UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Powf(_)
        );
        let input = if positive_only { &pos } else { &x };
        let mut want = vec![0f32; n];
        cpu::unary_fwd(op, input, &mut want);
        let mut want_dx = vec![0f32; n];
        cpu::unary_bwd(op, input, &want, &dy, &mut want_dx);
        let (dx_in, dy_dev) = (g.upload(input), g.upload(&dy));
        let (y, dx) = (g.zeros::<f32>(n), g.zeros::<f32>(n));
        cuda::unary(&k, "f32", op, g.ptr(&dx_in), g.ptr(&y), n).unwrap();
        assert_close(op.name(), &g.download(&y), &want, 1e-6, 1e-5);
        let (px, py, pdy, pdx) = (g.ptr(&dx_in), g.ptr(&y), g.ptr(&dy_dev), g.ptr(&dx));
        cuda::unary_bwd(&k, "f32", op, (px, py, pdy), pdx, n).unwrap();
        assert_close(op.name(), &g.download(&dx), &want_dx, 1e-6, 1e-5);
    }
}

#[test]
fn binary_and_compare_broadcast_through_strides() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    // [5, 1, 7] ⊙ [3, 1] -> [5, 3, 7]; b broadcast along dims 0 and 2.
    let a: Vec<f32> = (0..35).map(|i| i as f32 * 0.5 - 4.0).collect();
    let b = vec![1.0f32, -2.0, 4.0];
    let shape = [5usize, 3, 7];
    let n = 105;
    let pick = |i: usize| (a[i / 21 * 7 + i % 7], b[i / 7 % 3]);
    let (da, db) = (g.upload(&a), g.upload(&b));
    let oa = Operand {
        ptr: g.ptr(&da),
        strides: &[7, 0, 1],
    };
    let ob = Operand {
        ptr: g.ptr(&db),
        strides: &[0, 1, 0],
    };
    for op in [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Maximum,
    ] {
        let out = g.zeros::<f32>(n);
        cuda::binary(&k, "f32", op, oa, ob, g.ptr(&out), &shape).unwrap();
        let want: Vec<f32> = (0..n)
            .map(|i| {
                let (x, y) = pick(i);
                op.f(x, y)
            })
            .collect();
        assert_close(op.name(), &g.download(&out), &want, 0.0, 1e-7);
    }
    let out = g.zeros::<u8>(n);
    cuda::compare(&k, "f32", CmpOp::Gt, oa, ob, g.ptr(&out), &shape).unwrap();
    let want: Vec<u8> = (0..n)
        .map(|i| {
            let (x, y) = pick(i);
            (x > y) as u8
        })
        .collect();
    assert_eq!(g.download(&out), want);
}

#[test]
fn casts_round_like_the_half_crate() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let x: Vec<f32> = vec![
        0.0,
        -1.5,
        3.3,
        65504.0,
        1e-8,
        f32::INFINITY,
        1.0 / 3.0,
        -7.25e4,
        70000.0,
    ];
    let n = x.len();
    let dx = g.upload(&x);
    let y = g.zeros::<u16>(n);
    cuda::cast(&k, "f32", "f16", g.ptr(&dx), g.ptr(&y), n).unwrap();
    assert_eq!(g.download(&y), f16_bits(&x), "f32 -> f16");
    cuda::cast(&k, "f32", "bf16", g.ptr(&dx), g.ptr(&y), n).unwrap();
    assert_eq!(g.download(&y), bf16_bits(&x), "f32 -> bf16");
}

#[test]
fn strided_copy_transposes_and_fill_sets_bits() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let (rows, cols) = (13, 29);
    let x: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
    let src = g.upload(&x);
    let dst = g.zeros::<f32>(rows * cols);
    let from = Operand {
        ptr: g.ptr(&src),
        strides: &[1, cols],
    };
    let to = Operand {
        ptr: g.ptr(&dst),
        strides: &[rows, 1],
    };
    cuda::copy(&k, 4, from, to, &[cols, rows]).unwrap();
    let want: Vec<f32> = (0..cols * rows)
        .map(|i| x[(i % rows) * cols + i / rows])
        .collect();
    assert_eq!(g.download(&dst), want);
    cuda::fill(&k, 4, g.ptr(&dst), 7, 2.5f32.to_bits() as u64).unwrap();
    assert_eq!(
        &g.download(&dst)[..8],
        &[2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, want[7]]
    );
}

#[test]
fn dense_f32_takes_float4_when_aligned_and_scalar_otherwise() {
    if gpu().is_none() {
        return;
    }
    let (a, b) = dense_operands();
    // Offset 0 is 16-byte aligned (float4 body + 3-element tail); offset 1 is not (scalar path).
    for offset in [0usize, 1] {
        check_exact("f32", &a, &b, offset);
    }
}

/// The dense tests' element count: whole 16-byte packs and a tail.
const DENSE_N: usize = 1003;

/// The dense tests' operands: `DENSE_N` + 1 elements, so a window can start at offset 0 or 1.
fn dense_operands() -> (Vec<f32>, Vec<f32>) {
    (
        (0..DENSE_N + 1).map(|i| i as f32 * 0.25 - 7.0).collect(),
        (0..DENSE_N + 1).map(|i| 3.0 - i as f32 * 0.125).collect(),
    )
}

/// Asserts Sub and Square of `ty` over `DENSE_N` elements of `a` and `b` from `offset` equal
/// a - b and a² computed on the host in `T`.
fn check_exact<T>(ty: &str, a: &[T], b: &[T], offset: usize)
where
    T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits + Default + Clone + Copy,
    T: std::ops::Sub<Output = T> + std::ops::Mul<Output = T> + PartialEq + std::fmt::Debug,
{
    let (sub, square) = sub_and_square(ty, a, b, offset, DENSE_N);
    let (x, y) = (&a[offset..offset + DENSE_N], &b[offset..offset + DENSE_N]);
    let want_sub: Vec<T> = x.iter().zip(y).map(|(&p, &q)| p - q).collect();
    let want_square: Vec<T> = x.iter().map(|&p| p * p).collect();
    assert_eq!(
        (sub, square),
        (want_sub, want_square),
        "{ty} at offset {offset}"
    );
}

/// Runs a Sub and a Square over `n` elements of `ty` (raw bits of `T`) from `offset` elements in,
/// and returns (a - b, a²) in `T`.
fn sub_and_square<T>(ty: &str, a: &[T], b: &[T], offset: usize, n: usize) -> (Vec<T>, Vec<T>)
where
    T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits + Default + Clone,
{
    let g = gpu().unwrap();
    let k = g.kernels();
    let (da, db) = (g.upload(a), g.upload(b));
    let (sub, square) = (g.zeros::<T>(a.len()), g.zeros::<T>(a.len()));
    let at = |p: u64| p + (std::mem::size_of::<T>() * offset) as u64;
    let oa = Operand {
        ptr: at(g.ptr(&da)),
        strides: &[1],
    };
    let ob = Operand {
        ptr: at(g.ptr(&db)),
        strides: &[1],
    };
    cuda::binary(&k, ty, BinaryOp::Sub, oa, ob, at(g.ptr(&sub)), &[n]).unwrap();
    cuda::unary(
        &k,
        ty,
        UnaryOp::Square,
        at(g.ptr(&da)),
        at(g.ptr(&square)),
        n,
    )
    .unwrap();
    let range = offset..offset + n;
    (
        g.download(&sub)[range.clone()].to_vec(),
        g.download(&square)[range].to_vec(),
    )
}

/// Sub and Square in a 16-bit float type `ty` (`bits` rounds an f32 to it) from `offset` of
/// `all`, against f32 arithmetic on the rounded window (x, y), rounded again.
fn check_halves(
    ty: &str,
    bits: fn(f32) -> u16,
    (x, y): (&[f32], &[f32]),
    all: (&[f32], &[f32]),
    offset: usize,
) {
    let round = |v: &[f32]| -> Vec<u16> { v.iter().map(|&a| bits(a)).collect() };
    let (sub, square) = sub_and_square(ty, &round(all.0), &round(all.1), offset, x.len());
    // The value of type `ty` nearest `a`.
    let held = |a: f32| -> f32 {
        match ty {
            "f16" => half::f16::from_bits(bits(a)).to_f32(),
            _ => half::bf16::from_bits(bits(a)).to_f32(),
        }
    };
    let want_sub: Vec<u16> = x
        .iter()
        .zip(y)
        .map(|(&a, &b)| bits(held(a) - held(b)))
        .collect();
    let want_square: Vec<u16> = x.iter().map(|&a| bits(held(a) * held(a))).collect();
    assert_eq!(
        (sub, square),
        (want_sub, want_square),
        "{ty} at offset {offset}"
    );
}

#[test]
fn dense_halves_and_doubles_move_in_16_byte_packs_when_aligned_and_singly_otherwise() {
    if gpu().is_none() {
        return;
    }
    // 1003 elements: whole packs and a tail. Offset 0 is 16-byte aligned (the packed kernels);
    // offset 1 is not (the strided kernels). Results round as the CPU's f32 arithmetic rounded
    // to the storage type, exactly.
    let (xs, ys) = dense_operands();
    for offset in [0usize, 1] {
        let range = offset..offset + DENSE_N;
        let (x, y) = (&xs[range.clone()], &ys[range]);
        check_halves(
            "f16",
            |v| half::f16::from_f32(v).to_bits(),
            (x, y),
            (&xs, &ys),
            offset,
        );
        check_halves(
            "bf16",
            |v| half::bf16::from_f32(v).to_bits(),
            (x, y),
            (&xs, &ys),
            offset,
        );

        let d = |v: &[f32]| -> Vec<f64> { v.iter().map(|&x| x as f64 / 3.0).collect() };
        check_exact("f64", &d(&xs), &d(&ys), offset);
    }
}
