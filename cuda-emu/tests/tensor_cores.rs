//! `mma.sync` (m16n8k16 and m16n8k8, f16 and bf16 into f32) and `ldmatrix` (x1, x2, x4, plain
//! and `.trans`) against host references written from the PTX ISA's fragment tables.

mod common;

use cudarc::driver::PushKernelArg;
use half::{bf16, f16};

/// A small xorshift generator, so the inputs are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What kind of 16-bit values a trial draws.
#[derive(Clone, Copy)]
enum Mix {
    /// Finite normal values.
    Plain,
    /// Also ±0 and subnormals.
    Tiny,
    /// Also ±inf and NaN.
    Special,
}

/// One random f16 or bf16 bit pattern of the kind `mix` asks for.
fn half_bits(rng: &mut Rng, bf: bool, mix: Mix) -> u16 {
    let sign = if rng.next() & 1 == 1 { 0x8000 } else { 0 };
    let roll = rng.below(16);
    let (exp_max, man_bits) = if bf { (0xffu16, 7) } else { (0x1f, 10) };
    let man = (rng.next() as u16) & ((1 << man_bits) - 1);
    let exp = |e: u16| sign | (e << man_bits) | man;
    match (mix, roll) {
        (Mix::Tiny | Mix::Special, 0) => sign,
        (Mix::Tiny | Mix::Special, 1 | 2) => sign | man.max(1),
        (Mix::Special, 3) => sign | (exp_max << man_bits),
        (Mix::Special, 4) => (exp_max << man_bits) | man.max(1),
        // Exponents near 1.0, so most sums stay finite and inexact.
        _ => {
            let bias = if bf { 127 } else { 15 };
            exp(bias - 6 + rng.below(12) as u16)
        }
    }
}

fn to_f32(bits: u16, bf: bool) -> f32 {
    if bf {
        bf16::from_bits(bits).to_f32()
    } else {
        f16::from_bits(bits).to_f32()
    }
}

/// The mma kernel for shape m16n8k`k`: lane l's registers come from a[l*ra..], b[l*rb..],
/// c[l*4..] and go to d[l*4..], for every warp of the block.
fn mma_source(k: usize, bf: bool) -> String {
    let (ra, rb) = (k / 4, k / 8);
    let ty = if bf { "bf16" } else { "f16" };
    let list = |from: usize, n: usize| {
        (from..from + n)
            .map(|i| format!("%{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let ins = (0..ra)
        .map(|i| format!("\"r\"(a[l*{ra}+{i}])"))
        .chain((0..rb).map(|i| format!("\"r\"(b[l*{rb}+{i}])")))
        .chain((0..4).map(|i| format!("\"f\"(c[l*4+{i}])")))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        r#"
extern "C" __global__ void mma(const unsigned* a, const unsigned* b, const float* c, float* d) {{
  int l = blockIdx.x * blockDim.x + threadIdx.x;
  float d0, d1, d2, d3;
  asm volatile("mma.sync.aligned.m16n8k{k}.row.col.f32.{ty}.{ty}.f32 {{%0,%1,%2,%3}}, {{{}}}, {{{}}}, {{{}}};"
      : "=f"(d0), "=f"(d1), "=f"(d2), "=f"(d3) : {ins});
  d[l*4] = d0; d[l*4+1] = d1; d[l*4+2] = d2; d[l*4+3] = d3;
}}
"#,
        list(4, ra),
        list(4 + ra, rb),
        list(4 + ra + rb, 4),
    )
}

/// Element `i` of lane `lane`'s A fragment, as the ISA's tables say for m16n8k16 ("row =
/// groupID for a_i where i < 2 || 4 <= i < 6, groupID + 8 otherwise; col =
/// threadID_in_group * 2 + (i & 0x1) for i < 4, that + 8 for i >= 4") and m16n8k8 ("row =
/// groupID for i < 2, groupID + 8 for 2 <= i < 4; col = threadID_in_group * 2 + (i & 0x1)").
fn isa_a(k: usize, lane: usize, i: usize) -> (usize, usize) {
    let (group_id, tig) = (lane >> 2, lane % 4);
    let row = if i < 2 || (k == 16 && (4..6).contains(&i)) {
        group_id
    } else {
        group_id + 8
    };
    let col = if i < 4 {
        tig * 2 + (i & 1)
    } else {
        tig * 2 + (i & 1) + 8
    };
    (row, col)
}

/// B fragment: m16n8k16 "row = threadID_in_group * 2 + (i & 0x1) for b_i where i < 2, that
/// plus 8 for i >= 2; col = groupID"; m16n8k8 "row = threadID_in_group * 2 + i; col = groupID".
fn isa_b(k: usize, lane: usize, i: usize) -> (usize, usize) {
    let (group_id, tig) = (lane >> 2, lane % 4);
    let row = match (k, i) {
        (8, _) => tig * 2 + i,
        (_, 0 | 1) => tig * 2 + (i & 1),
        _ => tig * 2 + (i & 1) + 8,
    };
    (row, group_id)
}

/// C and D fragments: "row = groupID for c_i where i < 2, groupID + 8 for i >= 2; col =
/// threadID_in_group * 2 + (i & 0x1)".
fn isa_c(lane: usize, i: usize) -> (usize, usize) {
    let (group_id, tig) = (lane >> 2, lane % 4);
    (
        if i < 2 { group_id } else { group_id + 8 },
        tig * 2 + (i & 1),
    )
}

/// The expected D registers of one warp, lane-major, from its A, B (packed halves) and C.
fn mma_reference(k: usize, bf: bool, a: &[u32], b: &[u32], c: &[f32]) -> Vec<f32> {
    let (ra, rb) = (k / 4, k / 8);
    let mut am = vec![vec![0f32; k]; 16];
    let mut bm = vec![vec![0f32; 8]; k];
    let mut cm = vec![vec![0f32; 8]; 16];
    for lane in 0..32 {
        for i in 0..2 * ra {
            let (r, col) = isa_a(k, lane, i);
            am[r][col] = to_f32((a[lane * ra + i / 2] >> (16 * (i % 2))) as u16, bf);
        }
        for i in 0..2 * rb {
            let (r, col) = isa_b(k, lane, i);
            bm[r][col] = to_f32((b[lane * rb + i / 2] >> (16 * (i % 2))) as u16, bf);
        }
        for i in 0..4 {
            let (r, col) = isa_c(lane, i);
            cm[r][col] = c[lane * 4 + i];
        }
    }
    let mut d = vec![0f32; 128];
    for lane in 0..32 {
        for i in 0..4 {
            let (r, col) = isa_c(lane, i);
            // The emulator's documented order: from C, one fused multiply-add per k, ascending.
            let mut acc = cm[r][col];
            for kk in 0..k {
                acc = am[r][kk].mul_add(bm[kk][col], acc);
            }
            d[lane * 4 + i] = acc;
        }
    }
    d
}

fn check_mma(k: usize, bf: bool) {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(&mma_source(k, bf), "mma");
    let warps = 3;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (k as u64) << 3 ^ u64::from(bf));
    for mix in [Mix::Plain, Mix::Tiny, Mix::Special] {
        let pair = |rng: &mut Rng| {
            u32::from(half_bits(rng, bf, mix)) | u32::from(half_bits(rng, bf, mix)) << 16
        };
        let a: Vec<u32> = (0..warps * 32 * k / 4).map(|_| pair(&mut rng)).collect();
        let b: Vec<u32> = (0..warps * 32 * k / 8).map(|_| pair(&mut rng)).collect();
        let c: Vec<f32> = (0..warps * 128)
            .map(|i| match (mix, i % 7) {
                (Mix::Tiny, 0) => -0.0,
                (Mix::Tiny, 1) => f32::from_bits(0x8000_0003),
                _ => to_f32(half_bits(&mut rng, bf, Mix::Plain), bf),
            })
            .collect();
        let (da, db, dc) = (
            gpu.stream.clone_htod(&a).unwrap(),
            gpu.stream.clone_htod(&b).unwrap(),
            gpu.stream.clone_htod(&c).unwrap(),
        );
        let mut dd = gpu.stream.alloc_zeros::<f32>(warps * 128).unwrap();
        let mut l = gpu.stream.launch_builder(&f);
        l.arg(&da).arg(&db).arg(&dc).arg(&mut dd);
        let cfg = common::one_block(32 * warps as u32);
        // SAFETY: argument types match the kernel signature.
        unsafe { l.launch(cfg) }.unwrap();
        let got = gpu.stream.clone_dtoh(&dd).unwrap();
        let (ra, rb) = (k / 4, k / 8);
        let mut nans = 0;
        for w in 0..warps {
            let want = mma_reference(
                k,
                bf,
                &a[w * 32 * ra..(w + 1) * 32 * ra],
                &b[w * 32 * rb..(w + 1) * 32 * rb],
                &c[w * 128..(w + 1) * 128],
            );
            for (j, (g, e)) in got[w * 128..(w + 1) * 128].iter().zip(&want).enumerate() {
                let same = g.to_bits() == e.to_bits() || (g.is_nan() && e.is_nan());
                nans += usize::from(e.is_nan());
                assert!(same, "k{k} bf16={bf} warp {w} lane {} d{}: got {g:e} ({:#010x}), want {e:e} ({:#010x})",
                    j / 4, j % 4, g.to_bits(), e.to_bits());
            }
        }
        if matches!(mix, Mix::Special) {
            assert!(nans > 0, "the special trial propagates some NaN");
        }
    }
}

#[test]
fn mma_m16n8k16_f16_matches_isa_fragments() {
    check_mma(16, false);
}

#[test]
fn mma_m16n8k16_bf16_matches_isa_fragments() {
    check_mma(16, true);
}

#[test]
fn mma_m16n8k8_f16_matches_isa_fragments() {
    check_mma(8, false);
}

#[test]
fn mma_m16n8k8_bf16_matches_isa_fragments() {
    check_mma(8, true);
}

/// Elements per row of the shared tile (48 bytes: row starts at multiples of 8 elements stay
/// 16-byte aligned).
const PITCH: usize = 24;
/// Rows of the shared tile.
const ROWS: usize = 32;

/// The ldmatrix kernel for `n` matrices: the tile comes from `src`, lane l addresses element
/// `rows[l]` of it, and its registers go to out[l*n..].
fn ldmatrix_source(n: usize, trans: bool) -> String {
    let regs = (0..n)
        .map(|i| format!("%{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let outs = (0..n)
        .map(|i| format!("\"=r\"(r[{i}])"))
        .collect::<Vec<_>>()
        .join(",");
    let t = if trans { ".trans" } else { "" };
    format!(
        r#"
extern "C" __global__ void ldm(const unsigned short* src, const int* rows, unsigned* out) {{
  __shared__ __align__(16) unsigned short tile[{ROWS} * {PITCH}];
  int l = threadIdx.x;
  for (int i = l; i < {ROWS} * {PITCH}; i += 32) tile[i] = src[i];
  __syncwarp();
  unsigned addr = (unsigned)__cvta_generic_to_shared(&tile[rows[l]]);
  unsigned r[{n}];
  asm volatile("ldmatrix.sync.aligned.m8n8.x{n}{t}.shared.b16 {{{regs}}}, [%{n}];" : {outs} : "r"(addr));
  for (int i = 0; i < {n}; i++) out[l * {n} + i] = r[i];
}}
"#
    )
}

/// Expected registers: the ISA gives lanes 8i..8i+7 the row addresses of matrix i, and lane l
/// the elements (row groupID, cols threadID_in_group * 2 + {0, 1}) of each matrix's fragment;
/// `.trans` reads the matrix transposed.
fn ldmatrix_reference(n: usize, trans: bool, tile: &[u16], rows: &[i32]) -> Vec<u32> {
    let elem = |m: usize, r: usize, c: usize| tile[rows[m * 8 + r] as usize + c];
    let mut out = Vec::new();
    for lane in 0..32 {
        let (group_id, tig) = (lane >> 2, lane % 4);
        for m in 0..n {
            let pick = |j: usize| {
                let col = tig * 2 + j;
                u32::from(if trans {
                    elem(m, col, group_id)
                } else {
                    elem(m, group_id, col)
                })
            };
            out.push(pick(0) | pick(1) << 16);
        }
    }
    out
}

#[test]
fn ldmatrix_each_variant_follows_the_isa_mapping() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let tile: Vec<u16> = (0..ROWS * PITCH).map(|_| rng.next() as u16).collect();
    let dtile = gpu.stream.clone_htod(&tile).unwrap();
    for n in [1, 2, 4] {
        for trans in [false, true] {
            // Distinct 16-byte-aligned row starts in shuffled order; lanes past 8n give an
            // unaligned address, which ldmatrix must ignore.
            let mut slots: Vec<i32> = (0..ROWS * PITCH / 8).map(|s| 8 * s as i32).collect();
            for i in (1..slots.len()).rev() {
                slots.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let rows: Vec<i32> = (0..32)
                .map(|l| if l < 8 * n { slots[l] } else { 1 })
                .collect();
            let f = gpu.func(&ldmatrix_source(n, trans), "ldm");
            let drows = gpu.stream.clone_htod(&rows).unwrap();
            let mut dout = gpu.stream.alloc_zeros::<u32>(32 * n).unwrap();
            let mut l = gpu.stream.launch_builder(&f);
            l.arg(&dtile).arg(&drows).arg(&mut dout);
            let cfg = common::one_block(32);
            // SAFETY: argument types match the kernel signature.
            unsafe { l.launch(cfg) }.unwrap();
            let got = gpu.stream.clone_dtoh(&dout).unwrap();
            assert_eq!(
                got,
                ldmatrix_reference(n, trans, &tile, &rows),
                "x{n} trans={trans}"
            );
        }
    }
}

#[test]
fn warp_wide_instructions_refuse_partial_warps_and_bad_rows() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(&mma_source(16, false), "mma");
    let a = gpu.stream.alloc_zeros::<u32>(64).unwrap();
    let c = gpu.stream.alloc_zeros::<f32>(64).unwrap();
    let mut d = gpu.stream.alloc_zeros::<f32>(64).unwrap();
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&a).arg(&a).arg(&c).arg(&mut d);
    let cfg = common::one_block(16);
    // SAFETY: argument types match the kernel signature.
    let r = unsafe { l.launch(cfg) };
    let msg = common::failure(r, "LAUNCH_FAILED");
    assert!(msg.contains("needs 32"), "{msg}");

    let f = gpu.func(&ldmatrix_source(2, false), "ldm");
    let tile = gpu.stream.alloc_zeros::<u16>(ROWS * PITCH).unwrap();
    let rows: Vec<i32> = (0..32).map(|l| if l == 5 { 4 } else { 8 * l }).collect();
    let drows = gpu.stream.clone_htod(&rows).unwrap();
    let mut out = gpu.stream.alloc_zeros::<u32>(64).unwrap();
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&tile).arg(&drows).arg(&mut out);
    let cfg = common::one_block(32);
    // SAFETY: argument types match the kernel signature.
    let r = unsafe { l.launch(cfg) };
    let msg = common::failure(r, "MISALIGNED_ADDRESS");
    assert!(
        msg.contains("16-byte") && msg.contains("thread (5,0,0)"),
        "{msg}"
    );
}

#[test]
fn malformed_tensor_core_operands_are_invalid_ptx() {
    let Some(gpu) = common::gpu() else { return };
    let bodies = [
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%f1,%f2,%f3,%f4}, {%r1,%r2}, {%r3,%r4}, {%f1,%f2,%f3,%f4};",
        "mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 {%f1,%f2,%f3,%f4}, {%r1,%r2}, {%r3};",
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 %f1, {%r1,%r2,%r3,%r4}, {%r3,%r4}, {%f1,%f2,%f3,%f4};",
        "ldmatrix.sync.aligned.m8n8.x4.shared::cta.b16 {%r1,%r2}, [%rd1];",
        "ldmatrix.sync.aligned.m8n8.x1.shared.b16 %r1, %r2;",
        "cp.async.cg.shared.global [%rd1], [%rd1], 8;",
        "cp.async.ca.shared.global [%rd1], [%rd1], %r1;",
        "cp.async.ca.shared.global [%rd1], [%rd1];",
        "cp.async.ca.shared.global.L2::cache_hint [%rd1], [%rd1], 16;",
        "cp.async.wait_group %r1;",
        "cp.async.commit_group 1;",
    ];
    for body in bodies {
        let ptx = format!(
            ".version 8.0\n.target sm_80\n.address_size 64\n.visible .entry k()\n{{\n\
             .reg .f32 %f<5>;\n.reg .b32 %r<5>;\n.reg .b64 %rd<2>;\n\t{body}\n\tret;\n}}\n"
        );
        let r = gpu.ctx.load_module(cudarc::nvrtc::Ptx::from_src(ptx));
        let err = format!("{:?}", r.expect_err(body));
        assert!(err.contains("INVALID_PTX"), "{body}: {err}");
    }
}
