//! Launchers for `elementwise.cu`: unary forward/backward, broadcast binary ops, comparisons,
//! select, casts, fills and strided copies. Names carry the dtype suffix the kernels use.

use super::{grid_1d, pack_len, DevPtr, Kernels, Shape, Strides};
use crate::cpu::elementwise::{BinaryOp, CmpOp, UnaryOp};
use crate::Result;

const FILE: &str = "elementwise.cu";

/// The kernel code and scalar parameters of a unary op.
fn unary_code(op: UnaryOp) -> (i32, f64, f64) {
    match op {
        UnaryOp::Neg => (0, 0.0, 0.0),
        UnaryOp::Exp => (1, 0.0, 0.0),
        UnaryOp::Log => (2, 0.0, 0.0),
        UnaryOp::Sqrt => (3, 0.0, 0.0),
        UnaryOp::Rsqrt => (4, 0.0, 0.0),
        UnaryOp::Abs => (5, 0.0, 0.0),
        UnaryOp::Relu => (6, 0.0, 0.0),
        UnaryOp::Sigmoid => (7, 0.0, 0.0),
        UnaryOp::Tanh => (8, 0.0, 0.0),
        UnaryOp::Silu => (9, 0.0, 0.0),
        UnaryOp::Gelu => (10, 0.0, 0.0),
        UnaryOp::HardSwish => (11, 0.0, 0.0),
        UnaryOp::HardSigmoid => (12, 0.0, 0.0),
        UnaryOp::Recip => (13, 0.0, 0.0),
        UnaryOp::Square => (14, 0.0, 0.0),
        UnaryOp::Powf(e) => (15, e, 0.0),
        UnaryOp::Clamp(lo, hi) => (16, lo, hi),
        UnaryOp::Affine(a, b) => (17, a, b),
        UnaryOp::GeluTanh => (18, 0.0, 0.0),
    }
}

/// Elements of float type `ty` in the 16 bytes a `*_vec_<ty>` thread moves, where every buffer
/// is 16-byte aligned; None otherwise.
fn pack_lanes(ty: &str, ptrs: &[DevPtr]) -> Option<usize> {
    let lanes = pack_len(ty);
    ptrs.iter().all(|p| p % 16 == 0).then_some(lanes)
}

/// y\[i\] = op(x\[i\]) over `n` dense elements of float type `ty` ("f32", "f64", "f16", "bf16");
/// 16-byte-aligned buffers move 16 bytes a thread.
pub fn unary(k: &Kernels, ty: &str, op: UnaryOp, x: DevPtr, y: DevPtr, n: usize) -> Result<()> {
    let (code, p0, p1) = unary_code(op);
    let n64 = n as i64;
    if let Some(lanes) = pack_lanes(ty, &[x, y]) {
        // SAFETY: x and y hold n elements of `ty` and are 16-byte aligned; matches
        // `unary_vec_<ty>`.
        return unsafe {
            k.launch(
                FILE,
                &format!("unary_vec_{ty}"),
                grid_1d(n.div_ceil(lanes)),
                &[&x, &y, &n64, &code, &p0, &p1],
            )
        };
    }
    // SAFETY: the caller passes buffers of n elements of `ty`; the argument list matches
    // `unary_<ty>(const T*, T*, i64, int, double, double)`.
    unsafe {
        k.launch(
            FILE,
            &format!("unary_{ty}"),
            grid_1d(n),
            &[&x, &y, &n64, &code, &p0, &p1],
        )
    }
}

/// dx = dy · op'(x) given y = op(x), all dense with `n` elements of `ty`.
pub fn unary_bwd(
    k: &Kernels,
    ty: &str,
    op: UnaryOp,
    (x, y, dy): (DevPtr, DevPtr, DevPtr),
    dx: DevPtr,
    n: usize,
) -> Result<()> {
    let (code, p0, p1) = unary_code(op);
    let n64 = n as i64;
    // SAFETY: as in `unary`, for `unary_bwd_<ty>`.
    unsafe {
        k.launch(
            FILE,
            &format!("unary_bwd_{ty}"),
            grid_1d(n),
            &[&x, &y, &dy, &dx, &n64, &code, &p0, &p1],
        )
    }
}

/// A strided operand: base pointer (already offset) and strides over the op's shape.
#[derive(Debug, Clone, Copy)]
pub struct Operand<'a> {
    /// Device address of the element at index zero.
    pub ptr: DevPtr,
    /// Element strides, one per dimension of the op's shape (0 where broadcast).
    pub strides: &'a [usize],
}

/// The kernel arguments describing `operands` over `shape`: their strides, the shape, and the
/// element count.
fn layout<const K: usize>(
    operands: [Operand; K],
    shape: &[usize],
) -> Result<([Strides; K], Shape, usize)> {
    let mut strides = [Strides::default(); K];
    for (s, o) in strides.iter_mut().zip(operands) {
        *s = Strides::new(o.strides)?;
    }
    Ok((strides, Shape::new(shape)?, shape.iter().product()))
}

/// Launches `name` over two strided operands and a dense output of `shape`, with an op code.
fn launch_pair(
    k: &Kernels,
    name: &str,
    code: i32,
    a: Operand,
    b: Operand,
    out: DevPtr,
    shape: &[usize],
) -> Result<()> {
    let ([sa, sb], sh, n) = layout([a, b], shape)?;
    let n64 = n as i64;
    // SAFETY: strides keep every access inside the caller's operands; out holds the shape's
    // elements; the list matches `binary_<ty>` and `compare_<ty>` (a, sa, b, sb, out, shape, n,
    // op).
    unsafe {
        k.launch(
            FILE,
            name,
            grid_1d(n),
            &[&a.ptr, &sa, &b.ptr, &sb, &out, &sh, &n64, &code],
        )
    }
}

/// out = a ⊙ b, written densely over `shape`; two dense, 16-byte-aligned operands (no
/// broadcast) move 16 bytes a thread.
pub fn binary(
    k: &Kernels,
    ty: &str,
    op: BinaryOp,
    a: Operand,
    b: Operand,
    out: DevPtr,
    shape: &[usize],
) -> Result<()> {
    let dense = |o: &Operand| shape.len() == 1 && o.strides == [1];
    let lanes = pack_lanes(ty, &[a.ptr, b.ptr, out]);
    if let (true, true, Some(lanes)) = (dense(&a), dense(&b), lanes) {
        let (n64, code) = (shape[0] as i64, op as i32);
        // SAFETY: a, b and out hold shape[0] elements of `ty` each and are 16-byte aligned;
        // matches `binary_vec_<ty>`.
        return unsafe {
            k.launch(
                FILE,
                &format!("binary_vec_{ty}"),
                grid_1d(shape[0].div_ceil(lanes)),
                &[&a.ptr, &b.ptr, &out, &n64, &code],
            )
        };
    }
    launch_pair(k, &format!("binary_{ty}"), op as i32, a, b, out, shape)
}

/// out = (a cmp b) as Bool bytes, written densely over `shape`.
pub fn compare(
    k: &Kernels,
    ty: &str,
    op: CmpOp,
    a: Operand,
    b: Operand,
    out: DevPtr,
    shape: &[usize],
) -> Result<()> {
    launch_pair(k, &format!("compare_{ty}"), op as i32, a, b, out, shape)
}

/// out = cond ? a : b (cond as Bool bytes), written densely over `shape`.
pub fn select(
    k: &Kernels,
    ty: &str,
    cond: Operand,
    a: Operand,
    b: Operand,
    out: DevPtr,
    shape: &[usize],
) -> Result<()> {
    let ([sc, sa, sb], sh, n) = layout([cond, a, b], shape)?;
    let n64 = n as i64;
    // SAFETY: as in `binary`, for `select_<ty>`.
    unsafe {
        k.launch(
            FILE,
            &format!("select_{ty}"),
            grid_1d(n),
            &[&cond.ptr, &sc, &a.ptr, &sa, &b.ptr, &sb, &out, &sh, &n64],
        )
    }
}

/// y = x converted from dtype `from` to `to` (kernel suffixes: f32 f64 f16 bf16 i64 i32 u8 bool).
pub fn cast(k: &Kernels, from: &str, to: &str, x: DevPtr, y: DevPtr, n: usize) -> Result<()> {
    let n64 = n as i64;
    // SAFETY: x holds n `from` elements, y n `to` elements; matches `cast_<from>_<to>`.
    unsafe {
        k.launch(
            FILE,
            &format!("cast_{from}_{to}"),
            grid_1d(n),
            &[&x, &y, &n64],
        )
    }
}

/// Copies `shape` elements of `width` bytes from one strided operand to another.
pub fn copy(k: &Kernels, width: usize, src: Operand, dst: Operand, shape: &[usize]) -> Result<()> {
    let ([ss, sd], sh, n) = layout([src, dst], shape)?;
    let n64 = n as i64;
    // SAFETY: strides keep accesses inside both operands; matches `copy_b<width>`.
    unsafe {
        k.launch(
            FILE,
            &format!("copy_b{width}"),
            grid_1d(n),
            &[&src.ptr, &ss, &dst.ptr, &sd, &sh, &n64],
        )
    }
}

/// Sets `n` elements of `width` bytes to the little-endian bit pattern `bits`.
pub fn fill(k: &Kernels, width: usize, dst: DevPtr, n: usize, bits: u64) -> Result<()> {
    let n64 = n as i64;
    let name = format!("fill_b{width}");
    // SAFETY: dst holds n elements of `width` bytes; the value argument has that width.
    unsafe {
        match width {
            1 => k.launch(FILE, &name, grid_1d(n), &[&dst, &n64, &(bits as u8)]),
            2 => k.launch(FILE, &name, grid_1d(n), &[&dst, &n64, &(bits as u16)]),
            4 => k.launch(FILE, &name, grid_1d(n), &[&dst, &n64, &(bits as u32)]),
            _ => k.launch(FILE, &name, grid_1d(n), &[&dst, &n64, &bits]),
        }
    }
}
