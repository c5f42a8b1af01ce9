//! Launchers for `conv.cu` and `conv_tc.cu`: 2-d convolution forward, data gradient and filter
//! gradient, NCHW or NHWC, f32/f64/f16/bf16 (halves accumulate in f32). Wide groups run an
//! implicit GEMM (no im2col buffer), on tensor cores for f16/bf16 on sm_80+; narrow ones
//! (depthwise, fewer than 16 channels a side) run direct kernels.

use super::bn_relu::TilePartials;
use super::gemm::{dim, int, sm_count, Tile};
use super::gemm_tc::{self, tile_launch, tile_tag};
use super::{grid_1d, DevPtr, Kernels};
use crate::error::{Error, Result};
use cudarc::driver::{DeviceRepr, LaunchConfig};

const FILE: &str = "conv.cu";
const TC_FILE: &str = "conv_tc.cu";

/// Sizes of a 2-d convolution. NCHW: x \[N,C,H,W\], y \[N,OC,OH,OW\], w \[OC,C/g,KH,KW\];
/// channels-last: x and y NHWC, w OHWI. All dense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvDims {
    /// Images.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub oc: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// Stride (h, w).
    pub stride: [usize; 2],
    /// Zero padding (h, w).
    pub padding: [usize; 2],
    /// Dilation (h, w).
    pub dilation: [usize; 2],
    /// Channel groups (C for depthwise).
    pub groups: usize,
    /// NHWC activations and OHWI weights instead of NCHW and OIHW.
    pub channels_last: bool,
}

/// One of the three passes of a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvPass {
    /// y = conv(x, w).
    Fwd,
    /// dx from dy and w.
    BwdData,
    /// dw from x and dy.
    BwdFilter,
}

/// The kernel family that runs a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvAlgo {
    /// One thread per output element (a 32×8 block per 32 weights for the filter gradient).
    Direct,
    /// Implicit GEMM with this output tile.
    Gemm(Tile),
    /// Implicit GEMM on tensor cores (`conv_tc.cu`: f16/bf16, sm_80+) with this block tile.
    TensorCore(Tile),
}

/// How a pass runs: the kernel family, and into how many slices the filter gradient splits its
/// N·OH·OW reduction (partial sums go to a transient f32/f64 workspace, then one reduce).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvPlan {
    /// Direct or implicit-GEMM kernels.
    pub algo: ConvAlgo,
    /// Slices of the filter gradient's reduction; 1 for the other passes.
    pub splits: usize,
}

/// Below this many channels on a side of the per-group GEMM, direct kernels run instead.
const NARROW: usize = 16;

impl ConvDims {
    /// Input channels per group.
    pub fn cg(&self) -> usize {
        self.c / self.groups.max(1)
    }

    /// Output channels per group.
    pub fn ocg(&self) -> usize {
        self.oc / self.groups.max(1)
    }

    /// The per-group implicit GEMM of `pass` as \[rows, columns, reduction\].
    pub fn gemm_shape(&self, pass: ConvPass) -> [usize; 3] {
        let (khw, nq, nhw) = (
            self.kh * self.kw,
            self.n * self.oh * self.ow,
            self.n * self.h * self.w,
        );
        let (cg, ocg) = (self.cg(), self.ocg());
        match (pass, self.channels_last) {
            (ConvPass::Fwd, false) => [ocg, nq, cg * khw],
            (ConvPass::Fwd, true) => [nq, ocg, cg * khw],
            (ConvPass::BwdData, false) => [cg, nhw, ocg * khw],
            (ConvPass::BwdData, true) => [nhw, cg, ocg * khw],
            (ConvPass::BwdFilter, _) => [ocg, cg * khw, nq],
        }
    }

    /// The plan [`conv2d`] uses for `pass` in dtype `ty` on a GPU with `sms`
    /// multiprocessors: direct kernels for narrow groups and f64, else implicit GEMM, on tensor
    /// cores when `tensor_cores` (the caller's [`gemm_tc::supported`], f16/bf16 only) with the
    /// tile [`gemm_tc::choose_tile`] picks (the filter gradient's reduction slices count towards
    /// filling the GPU), else with the SIMT tile [`Tile::choose`] picks; filter gradients split
    /// their reduction until the grid covers two blocks per multiprocessor, keeping at least 512
    /// pixels (256 direct) a slice.
    pub fn plan(&self, ty: &str, pass: ConvPass, sms: usize, tensor_cores: bool) -> ConvPlan {
        let (khw, cg, ocg) = (self.kh * self.kw, self.cg(), self.ocg());
        let narrow = match pass {
            ConvPass::Fwd | ConvPass::BwdFilter => ocg.min(cg * khw),
            ConvPass::BwdData => cg.min(ocg * khw),
        };
        let [m, n, k] = self.gemm_shape(pass);
        let (algo, blocks, per_split) = if narrow < NARROW || ty == "f64" {
            (ConvAlgo::Direct, (self.oc * cg * khw).div_ceil(32), 256)
        } else if tensor_cores && matches!(ty, "f16" | "bf16") {
            let slices = if pass == ConvPass::BwdFilter {
                (k / 512).clamp(1, 256)
            } else {
                1
            };
            let t = gemm_tc::choose_tile(m, n, self.groups * slices, sms);
            let tiles = m.div_ceil(t.edge()) * n.div_ceil(t.edge()) * self.groups;
            (ConvAlgo::TensorCore(t), tiles, 512)
        } else {
            let t = Tile::choose(ty, m, n, self.groups, sms);
            let tiles = m.div_ceil(t.edge()) * n.div_ceil(t.edge()) * self.groups;
            (ConvAlgo::Gemm(t), tiles, 512)
        };
        let splits = if pass == ConvPass::BwdFilter {
            (2 * sms)
                .div_ceil(blocks.max(1))
                .clamp(1, (k / per_split).clamp(1, 256))
        } else {
            1
        };
        ConvPlan { algo, splits }
    }

    fn layout(&self) -> &'static str {
        if self.channels_last {
            "nhwc"
        } else {
            "nchw"
        }
    }
}

/// `x / d` on the device as a high multiply and a shift (`Div` of conv.cu), exact for
/// `x < 2^31`: mul = ⌈2^(31+l) / d⌉ with l = ⌈log2 d⌉ (Granlund and Montgomery's round-up method).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Div {
    d: i32,
    mul: u32,
    shr: u32,
}

impl Div {
    /// The reciprocal of `d` (0 and 1 divide trivially).
    fn new(d: i32) -> Div {
        if d <= 1 {
            return Div { d, mul: 0, shr: 0 };
        }
        let l = 32 - (d as u32 - 1).leading_zeros();
        let p = 31 + l;
        let mul = (1u64 << p).div_ceil(d as u64);
        Div {
            d,
            mul: mul as u32,
            shr: p - 32,
        }
    }

    /// What the device computes for `x / d`.
    #[cfg(test)]
    fn apply(&self, x: u32) -> u32 {
        if self.d == 1 {
            x
        } else {
            ((x as u64 * self.mul as u64) >> 32) as u32 >> self.shr
        }
    }
}

/// `ConvGeom` of conv.cu.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Geom {
    n: i32,
    c: i32,
    h: i32,
    w: i32,
    oc: i32,
    kh: i32,
    kw: i32,
    oh: i32,
    ow: i32,
    sh: i32,
    sw: i32,
    ph: i32,
    pw: i32,
    dh: i32,
    dw: i32,
    groups: i32,
    cg: i32,
    ocg: i32,
    d_cg: Div,
    d_ocg: Div,
    d_kw: Div,
    d_khw: Div,
    d_ow: Div,
    d_p: Div,
    d_w: Div,
    d_hw: Div,
    d_sh: Div,
    d_sw: Div,
}

// SAFETY: plain-old-data with the C layout conv.cu declares (4-byte fields only).
unsafe impl DeviceRepr for Geom {}

impl Geom {
    /// Validates `d` and converts it, keeping every index the kernels form below 2^31.
    fn new(d: &ConvDims) -> Result<Geom> {
        let bad = |why: &str| Err(Error::Launch(format!("conv2d {d:?}: {why}")));
        if d.groups == 0 || !d.c.is_multiple_of(d.groups) || !d.oc.is_multiple_of(d.groups) {
            return bad("groups must divide C and OC");
        }
        if d.kh == 0 || d.kw == 0 || d.stride.contains(&0) || d.dilation.contains(&0) {
            return bad("kernel, stride and dilation must be positive");
        }
        let (khw, cg, ocg) = (d.kh * d.kw, d.cg(), d.ocg());
        for (what, v) in [
            ("N·OH·OW", d.n * d.oh * d.ow),
            ("N·H·W", d.n * d.h * d.w),
            ("OC·C/g·KH·KW", d.oc * cg * khw),
            ("OC/g·KH·KW", ocg * khw),
        ] {
            dim(what, v)?;
        }
        let i = |what: &str, v: usize| int(what, v);
        let s = [d.stride[0], d.stride[1], d.padding[0], d.padding[1]];
        Ok(Geom {
            n: i("N", d.n)?,
            c: i("C", d.c)?,
            h: i("H", d.h)?,
            w: i("W", d.w)?,
            oc: i("OC", d.oc)?,
            kh: i("KH", d.kh)?,
            kw: i("KW", d.kw)?,
            oh: i("OH", d.oh)?,
            ow: i("OW", d.ow)?,
            sh: i("stride", s[0])?,
            sw: i("stride", s[1])?,
            ph: i("padding", s[2])?,
            pw: i("padding", s[3])?,
            dh: i("dilation", d.dilation[0])?,
            dw: i("dilation", d.dilation[1])?,
            groups: i("groups", d.groups)?,
            cg: cg as i32,
            ocg: ocg as i32,
            d_cg: Div::new(cg as i32),
            d_ocg: Div::new(ocg as i32),
            d_kw: Div::new(d.kw as i32),
            d_khw: Div::new(khw as i32),
            d_ow: Div::new(d.ow as i32),
            d_p: Div::new((d.oh * d.ow) as i32),
            d_w: Div::new(d.w as i32),
            d_hw: Div::new((d.h * d.w) as i32),
            d_sh: Div::new(d.stride[0] as i32),
            d_sw: Div::new(d.stride[1] as i32),
        })
    }
}

/// Runs `pass` with the plan [`ConvDims::plan`] picks (tensor cores where
/// [`gemm_tc::supported`]), its output fully overwritten; the operands are (x, w, y) for the
/// forward, (dy, w, dx) for the data gradient and (x, dy, dw) for the filter gradient.
pub fn conv2d(
    k: &Kernels,
    ty: &str,
    d: &ConvDims,
    pass: ConvPass,
    operands: (DevPtr, DevPtr, DevPtr),
) -> Result<()> {
    let plan = d.plan(ty, pass, sm_count(k), gemm_tc::supported(k, ty));
    conv2d_planned(k, ty, d, (pass, &plan), operands)
}

/// Runs `pass` with an explicit plan (tests, benchmarks); the operands as [`conv2d`]'s.
pub fn conv2d_planned(
    k: &Kernels,
    ty: &str,
    d: &ConvDims,
    (pass, plan): (ConvPass, &ConvPlan),
    (a, b, out): (DevPtr, DevPtr, DevPtr),
) -> Result<()> {
    let g = Geom::new(d)?;
    if plan.splits == 0 || (plan.splits > 1 && pass != ConvPass::BwdFilter) {
        return Err(Error::Launch(format!(
            "conv2d {pass:?}: {} splits (only the filter gradient splits)",
            plan.splits
        )));
    }
    if ty == "f64" && plan.algo != ConvAlgo::Direct {
        return Err(Error::Launch(
            "conv2d: f64 runs the direct kernels only".into(),
        ));
    }
    if let ConvAlgo::TensorCore(_) = plan.algo {
        gemm_tc::forced_tile()?;
        if !gemm_tc::supported(k, ty) {
            return Err(Error::Launch(format!(
                "conv2d: no tensor-core kernel for {ty} on sm_{} (f16, bf16 on sm_80+)",
                k.arch()
            )));
        }
    }
    let out_len = match pass {
        ConvPass::Fwd => d.n * d.oc * d.oh * d.ow,
        ConvPass::BwdData => d.n * d.c * d.h * d.w,
        ConvPass::BwdFilter => d.oc * d.cg() * d.kh * d.kw,
    };
    if out_len == 0 {
        return Ok(());
    }
    let layout = d.layout();
    let (stem, tile) = match pass {
        ConvPass::Fwd => ("conv_fwd", plan.algo),
        ConvPass::BwdData => ("conv_bwd_data", plan.algo),
        ConvPass::BwdFilter => return bwd_filter(k, ty, (d, &g), plan, (a, b, out)),
    };
    let (name, cfg) = match tile {
        ConvAlgo::Direct => (format!("{stem}_direct_{layout}_{ty}"), grid_1d(out_len)),
        ConvAlgo::Gemm(t) => (
            format!("{stem}_{}_{layout}_{ty}", t.name()),
            gemm_grid(d.gemm_shape(pass), t.edge(), 256, d.groups)?,
        ),
        ConvAlgo::TensorCore(t) => {
            let name = format!("conv_tc_{}{}_{layout}_{ty}", &stem[5..], tile_tag(t));
            let cfg = tc_grid(d.gemm_shape(pass), t, d.groups)?;
            let [ca, cb] = tc_copies(d, pass, a, b).map(i32::from);
            // SAFETY: as below, for `conv_tc_<pass>_<layout>_<ty>(const T*, const T*, T*,
            // ConvGeom, int, int)`; copies are asked for only where `tc_copies` found every
            // 16-byte chunk aligned and whole.
            return unsafe { k.launch(TC_FILE, &name, cfg, &[&a, &b, &out, &g, &ca, &cb]) };
        }
    };
    // SAFETY: the pointers address dense tensors of the sizes `d` describes (the engine's
    // contract); every kernel index is bounds-checked against those sizes and fits in i32
    // (Geom::new); the arguments match `<stem>_<algo>_<layout>_<ty>(const T*, const T*, T*,
    // ConvGeom)`.
    unsafe { k.launch(FILE, &name, cfg, &[&a, &b, &out, &g]) }
}

/// Values per run of the partial statistics [`conv2d_fwd_stats`] writes: 64 output pixels (a
/// 64×64 tensor-core tile's, half a 128×128 one's; conv_tc.cu's `TC_STATS_RUN`).
pub const STATS_ROWS: usize = 64;

/// Whether [`conv2d_fwd_stats`] serves `d` in `ty` on this device: where the forward's plan is
/// the tensor-core implicit GEMM (f16/bf16 on sm_80+, groups wide enough).
pub fn fwd_stats_supported(k: &Kernels, ty: &str, d: &ConvDims) -> bool {
    gemm_tc::supported(k, ty) && tc_tile(k, ty, d, ConvPass::Fwd).is_some()
}

/// The tensor-core tile of `pass`'s plan for `d` in `ty` with tensor cores on, if that plan is
/// the tensor-core implicit GEMM (not the direct kernels of narrow groups).
fn tc_tile(k: &Kernels, ty: &str, d: &ConvDims, pass: ConvPass) -> Option<Tile> {
    match d.plan(ty, pass, sm_count(k), true).algo {
        ConvAlgo::TensorCore(t) => Some(t),
        _ => None,
    }
}

/// f32 elements of the statistics buffer [`conv2d_fwd_stats`] fills for `d`.
pub fn fwd_stats_len(d: &ConvDims) -> usize {
    (d.n * d.oh * d.ow).div_ceil(STATS_ROWS) * d.oc * 2
}

/// How the statistics at `ptr` that [`conv2d_fwd_stats`] wrote for `d` lie: runs of
/// [`STATS_ROWS`] pixels, (sum, centered M2) pairs.
pub fn fwd_stats_partials(d: &ConvDims, ptr: DevPtr) -> TilePartials {
    TilePartials {
        ptr,
        second: 1,
        stride: 2,
        tiles: (d.n * d.oh * d.ow).div_ceil(STATS_ROWS),
        rows: STATS_ROWS,
        centered: true,
    }
}

/// y = conv(x, w) on tensor cores (as [`conv2d`]'s forward where [`fwd_stats_supported`]), its
/// epilogue also writing each output channel's partial statistics over each run of
/// [`STATS_ROWS`] output pixels (in (image, row, column) order) into `stats`
/// ([`fwd_stats_len`] f32, laid out as [`fwd_stats_partials`] says), for
/// [`super::bn_relu::bn_stats_from_tiles`]. The statistics are of y's values as stored (rounded
/// to `ty`).
pub fn conv2d_fwd_stats(
    k: &Kernels,
    ty: &str,
    d: &ConvDims,
    (x, w, y): (DevPtr, DevPtr, DevPtr),
    stats: DevPtr,
) -> Result<()> {
    let g = Geom::new(d)?;
    gemm_tc::forced_tile()?;
    let tile = tc_tile(k, ty, d, ConvPass::Fwd).filter(|_| gemm_tc::supported(k, ty));
    let Some(tile) = tile else {
        return Err(Error::Launch(format!(
            "conv2d with statistics: {d:?} in {ty} does not run on tensor cores on sm_{}",
            k.arch()
        )));
    };
    if d.n * d.oc * d.oh * d.ow == 0 {
        return Ok(());
    }
    let name = format!("conv_tc_fwd_stats{}_{}_{ty}", tile_tag(tile), d.layout());
    let cfg = tc_grid(d.gemm_shape(ConvPass::Fwd), tile, d.groups)?;
    let [ca, cb] = tc_copies(d, ConvPass::Fwd, x, w).map(i32::from);
    // SAFETY: as in `conv2d_planned` for the tensor-core forward, with `stats` holding
    // `fwd_stats_len(d)` f32 (every (pixel tile, channel) pair is written by the one block that
    // stores that tile); matches `conv_tc_fwd_stats_<layout>_<ty>(const T*, const T*, T*,
    // ConvGeom, int, int, float*)`.
    unsafe { k.launch(TC_FILE, &name, cfg, &[&x, &w, &y, &g, &ca, &cb, &stats]) }
}

/// A training BatchNorm's apply (and ReLU) folded into the convolution after it: the
/// convolution's input is h = act(x·scale\[c\] + shift\[c\]), computed as the kernels load x
/// (f32 `scale`, `shift` of C elements, from the BN's finalize); h is never stored.
#[derive(Debug, Clone, Copy)]
pub struct BnPrologue {
    /// Per-channel γ·invstd (f32, C elements).
    pub scale: DevPtr,
    /// Per-channel β - mean·scale (f32, C elements).
    pub shift: DevPtr,
    /// Whether a ReLU follows the affine map.
    pub relu: bool,
}

/// y = conv(act(x·scale + shift), w) on tensor cores where [`fwd_stats_supported`] says they
/// serve `d`, with the statistics epilogue of [`conv2d_fwd_stats`] when `stats` is given
/// ([`fwd_stats_len`] f32). The prologue's operand is gathered (never copied in chunks).
pub fn conv2d_fwd_bn_act(
    k: &Kernels,
    ty: &str,
    d: &ConvDims,
    (x, w, y): (DevPtr, DevPtr, DevPtr),
    pro: &BnPrologue,
    stats: Option<DevPtr>,
) -> Result<()> {
    let g = Geom::new(d)?;
    gemm_tc::forced_tile()?;
    let tile = tc_tile(k, ty, d, ConvPass::Fwd).filter(|_| gemm_tc::supported(k, ty));
    let Some(tile) = tile else {
        return Err(Error::Launch(format!(
            "conv2d with a BN prologue: {d:?} in {ty} does not run on tensor cores on sm_{}",
            k.arch()
        )));
    };
    if d.n * d.oc * d.oh * d.ow == 0 {
        return Ok(());
    }
    let name = format!("conv_tc_fwd_bnact{}_{}_{ty}", tile_tag(tile), d.layout());
    let cfg = tc_grid(d.gemm_shape(ConvPass::Fwd), tile, d.groups)?;
    // The weights are the operand copied where allowed: B (NHWC) or A (NCHW).
    let [ca, cb] = tc_copies(d, ConvPass::Fwd, x, w);
    let w_async = i32::from(if d.channels_last { cb } else { ca });
    let (stats, relu) = (stats.unwrap_or(0), i32::from(pro.relu));
    let (sc, sh) = (pro.scale, pro.shift);
    // SAFETY: as in `conv2d_planned` for the tensor-core forward; scale and shift hold C f32;
    // a non-null `stats` holds `fwd_stats_len(d)` f32 (as in `conv2d_fwd_stats`); weight copies
    // only where `tc_copies` allows them; matches `conv_tc_fwd_bnact_<layout>_<ty>(const T*,
    // const T*, T*, ConvGeom, int, float*, const float*, const float*, int)`.
    unsafe {
        k.launch(
            TC_FILE,
            &name,
            cfg,
            &[&x, &w, &y, &g, &w_async, &stats, &sc, &sh, &relu],
        )
    }
}

/// dw of y = conv(act(x·scale + shift), w) from x and dy on tensor cores (where
/// [`fwd_stats_supported`] serves `d`: the filter gradient's plan is then the tensor-core one
/// too), the prologue recomputing h from x as the forward did.
pub fn conv2d_bwd_filter_bn_act(
    k: &Kernels,
    ty: &str,
    d: &ConvDims,
    (x, dy, dw): (DevPtr, DevPtr, DevPtr),
    pro: &BnPrologue,
) -> Result<()> {
    let g = Geom::new(d)?;
    gemm_tc::forced_tile()?;
    let plan = d.plan(ty, ConvPass::BwdFilter, sm_count(k), true);
    let tile = match plan.algo {
        ConvAlgo::TensorCore(t) if gemm_tc::supported(k, ty) => t,
        _ => {
            return Err(Error::Launch(format!(
                "conv2d filter gradient with a BN prologue: {d:?} in {ty} does not run on \
                 tensor cores on sm_{}",
                k.arch()
            )))
        }
    };
    let e = d.oc * d.cg() * d.kh * d.kw;
    if e == 0 {
        return Ok(());
    }
    let nq = d.n * d.oh * d.ow;
    let chunk = nq.div_ceil(plan.splits).next_multiple_of(16);
    let splits = nq.div_ceil(chunk.max(1)).max(1);
    let (chunk32, splits32) = (int("chunk", chunk)?, int("splits", splits)?);
    let shape = d.gemm_shape(ConvPass::BwdFilter);
    let cfg = tc_grid(shape, tile, d.groups * splits)?;
    let name = format!(
        "conv_tc_bwd_filter_bnact{}_{}_{ty}",
        tile_tag(tile),
        d.layout()
    );
    let [ca, _] = tc_copies(d, ConvPass::BwdFilter, x, dy).map(i32::from);
    let (sc, sh, relu) = (pro.scale, pro.shift, i32::from(pro.relu));
    through_workspace::<f32>(k, ty, dw, e, splits, |out| {
        // SAFETY: as in `bwd_filter`'s tensor-core launch, with scale and shift of C f32;
        // matches `conv_tc_bwd_filter_bnact_<layout>_<ty>(const T*, const T*, float*, ConvGeom,
        // int, int, int, const float*, const float*, int)`.
        let args: [&dyn super::Arg; 10] =
            [&x, &dy, &out, &g, &splits32, &chunk32, &ca, &sc, &sh, &relu];
        unsafe { k.launch(TC_FILE, &name, cfg, &args) }
    })
}

/// A grid of `threads`-thread blocks over the `edge`² tiles of a \[rows, columns, _\] GEMM, `z`
/// deep.
fn gemm_grid([m, n, _]: [usize; 3], edge: usize, threads: u32, z: usize) -> Result<LaunchConfig> {
    let tiles = int("conv tiles", m.div_ceil(edge) * n.div_ceil(edge))?;
    Ok(LaunchConfig {
        grid_dim: (tiles as u32, 1, z.clamp(1, 65535) as u32),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: 0,
    })
}

/// A grid of `tile`'s tensor-core blocks (threads and dynamic shared memory as
/// [`gemm_tc::tile_launch`] says) over the tiles of a \[rows, columns, _\] GEMM, `z` deep.
fn tc_grid([m, n, _]: [usize; 3], tile: Tile, z: usize) -> Result<LaunchConfig> {
    let tiles = int(
        "conv tiles",
        m.div_ceil(tile.edge()) * n.div_ceil(tile.edge()),
    )?;
    Ok(tile_launch(tile, tiles as u32, z))
}

/// Whether the tensor-core kernel of `pass` may copy its GEMM operands A and B in 16-byte chunks
/// (else it gathers them): where 8 consecutive elements of the staged index are 8 adjacent
/// elements from a 16-byte aligned start, i.e. the channel counts the chunk walks and the
/// buffer's base allow it (conv_tc.cu lists the cases). `a` and `b` are the pass's inputs in
/// launcher order.
pub fn tc_copies(d: &ConvDims, pass: ConvPass, a: DevPtr, b: DevPtr) -> [bool; 2] {
    let by8 = |v: usize| v.is_multiple_of(8);
    let al = |p: DevPtr| p.is_multiple_of(16);
    let (cg, ocg) = (d.cg(), d.ocg());
    let kc = cg * d.kh * d.kw;
    match (pass, d.channels_last) {
        // A = X̂ (x = a), B = W (b).
        (ConvPass::Fwd, true) => [by8(cg) && by8(d.c) && al(a), by8(kc) && al(b)],
        // A = W (b), B = X̂ (gathered).
        (ConvPass::Fwd, false) => [by8(kc) && al(b), false],
        // A = dŶ (dy = a), B = W (b).
        (ConvPass::BwdData, true) => [by8(ocg) && by8(d.oc) && al(a), by8(cg) && al(b)],
        // A = dY (dy = b), B = X̂ᵀ (x = a).
        (ConvPass::BwdFilter, true) => {
            [by8(ocg) && by8(d.oc) && al(b), by8(cg) && by8(d.c) && al(a)]
        }
        (ConvPass::BwdData | ConvPass::BwdFilter, false) => [false, false],
    }
}

/// The filter gradient: written straight into dw when one f32/f64 slice suffices, else slices
/// into a workspace of the accumulation type and one reduce into dw.
fn bwd_filter(
    k: &Kernels,
    ty: &str,
    (d, g): (&ConvDims, &Geom),
    plan: &ConvPlan,
    (x, dy, dw): (DevPtr, DevPtr, DevPtr),
) -> Result<()> {
    let nq = d.n * d.oh * d.ow;
    let chunk = nq.div_ceil(plan.splits).next_multiple_of(16);
    let splits = nq.div_ceil(chunk.max(1)).max(1);
    let (chunk32, splits32) = (int("chunk", chunk)?, int("splits", splits)?);
    let e = d.oc * d.cg() * d.kh * d.kw;
    let layout = d.layout();
    let launch = |out: DevPtr| -> Result<()> {
        match plan.algo {
            ConvAlgo::Direct => {
                let cfg = LaunchConfig {
                    grid_dim: (
                        int("conv weights", e.div_ceil(32))? as u32,
                        splits as u32,
                        1,
                    ),
                    block_dim: (32, 8, 1),
                    shared_mem_bytes: 0,
                };
                let name = format!("conv_bwd_filter_direct_{layout}_{ty}");
                // SAFETY: as in `conv2d_planned`; `out` holds splits·e accumulation-type
                // elements; matches `(const T*, const T*, Acc*, ConvGeom, int)`.
                unsafe { k.launch(FILE, &name, cfg, &[&x, &dy, &out, g, &chunk32]) }
            }
            ConvAlgo::Gemm(t) => {
                let shape = d.gemm_shape(ConvPass::BwdFilter);
                let cfg = gemm_grid(shape, t.edge(), 256, d.groups * splits)?;
                let name = format!("conv_bwd_filter_{}_{layout}_{ty}", t.name());
                // SAFETY: as above, for `(const T*, const T*, Acc*, ConvGeom, int, int)`.
                unsafe { k.launch(FILE, &name, cfg, &[&x, &dy, &out, g, &splits32, &chunk32]) }
            }
            ConvAlgo::TensorCore(t) => {
                let shape = d.gemm_shape(ConvPass::BwdFilter);
                let cfg = tc_grid(shape, t, d.groups * splits)?;
                let name = format!("conv_tc_bwd_filter{}_{layout}_{ty}", tile_tag(t));
                let [ca, cb] = tc_copies(d, ConvPass::BwdFilter, x, dy).map(i32::from);
                // SAFETY: as above, for `(const T*, const T*, float*, ConvGeom, int, int, int,
                // int)`; `out` is an f32 workspace (halves only); copies as `tc_copies` allows.
                let args: [&dyn super::Arg; 8] = [&x, &dy, &out, g, &splits32, &chunk32, &ca, &cb];
                unsafe { k.launch(TC_FILE, &name, cfg, &args) }
            }
        }
    };
    match ty {
        "f32" | "f64" if splits == 1 => launch(dw),
        "f64" => through_workspace::<f64>(k, ty, dw, e, splits, launch),
        _ => through_workspace::<f32>(k, ty, dw, e, splits, launch),
    }
}

/// Runs `launch` into a fresh workspace of `splits·e` elements of `A`, then sums the slices
/// into `dw` as `ty`. The workspace is freed in stream order after the reduce.
fn through_workspace<A: DeviceRepr>(
    k: &Kernels,
    ty: &str,
    dw: DevPtr,
    e: usize,
    splits: usize,
    launch: impl Fn(DevPtr) -> Result<()>,
) -> Result<()> {
    // The filter kernel writes every element of every slice before the reduce reads it.
    let ws = k.scratch(splits * e * std::mem::size_of::<A>())?;
    let p = ws.ptr();
    launch(p)?;
    let (e64, s32) = (e as i64, splits as i32);
    // SAFETY: `p` holds splits·e accumulation-type elements, dw holds e of `ty`; matches
    // `conv_reduce_splits_<ty>(const Acc*, T*, i64, int)`.
    unsafe {
        k.launch(
            FILE,
            &format!("conv_reduce_splits_{ty}"),
            grid_1d(e),
            &[&p, &dw, &e64, &s32],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Div;

    #[test]
    fn div_matches_integer_division_below_2_pow_31() {
        let xs: Vec<u32> = (0..2000u32)
            .chain((0..64).map(|i| (1u32 << 31) - 1 - i * 7919))
            .chain((1..31).map(|b| 1u32 << b))
            .chain((1..31).map(|b| (1u32 << b) - 1))
            .collect();
        let ds = (1..300).chain([
            511,
            512,
            513,
            1000,
            3136,
            12544,
            50176,
            65535,
            65536,
            1 << 20,
            2_147_483_647,
        ]);
        for d in ds {
            let v = Div::new(d);
            for &x in &xs {
                assert_eq!(v.apply(x), x / d as u32, "{x} / {d}");
            }
        }
    }
}
