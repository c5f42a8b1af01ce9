//! Swin's pieces on [B, H, W, C] tokens (timm's NHWC): window partition and reverse, the shift
//! mask, `WindowAttention` with its relative position bias, `SwinTransformerBlock` and
//! `PatchMerging`.

use crate::layers::{DropPath, LayerNorm, Linear};
use crate::{Children, Error, Module, Result};
use kiln_engine::{AttnOptions, DType, Device, Tensor};
use std::sync::Mutex;

/// Swin's LayerNorm: `nn.LayerNorm`'s eps.
pub(super) const LN_EPS: f64 = 1e-5;

/// A constant built on the CPU in f32, kept in the last device and dtype asked for, so each
/// forward reuses it instead of copying it again.
pub(super) struct DeviceConst {
    host: Tensor,
    cached: Mutex<Option<Tensor>>,
}

impl DeviceConst {
    fn new(host: Tensor) -> DeviceConst {
        DeviceConst {
            host,
            cached: Mutex::new(None),
        }
    }

    /// The constant on `device` in `dtype`.
    fn on(&self, device: Device, dtype: DType) -> Result<Tensor> {
        let mut c = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = c
            .as_ref()
            .filter(|t| t.device() == device && t.dtype() == dtype)
        {
            return Ok(t.clone());
        }
        let t = self.host.to_dtype(dtype)?.to_device(device)?;
        *c = Some(t.clone());
        Ok(t)
    }
}

/// timm's `window_partition`: [B, H, W, C] into [B·nW, ws·ws, C] windows, row-major over the
/// window grid (H and W multiples of `ws`).
pub fn window_partition(x: &Tensor, ws: usize) -> Result<Tensor> {
    let &[b, h, w, c] = x.shape() else {
        return Err(bad_tokens(x));
    };
    Ok(x.reshape(&[b, h / ws, ws, w / ws, ws, c])?
        .permute(&[0, 1, 3, 2, 4, 5])?
        .reshape(&[b * (h / ws) * (w / ws), ws * ws, c])?)
}

/// timm's `window_reverse`: [B·nW, ws·ws, C] windows back to [B, H, W, C].
pub fn window_reverse(windows: &Tensor, ws: usize, h: usize, w: usize) -> Result<Tensor> {
    let c = windows.shape()[windows.rank() - 1];
    let b = windows.shape()[0] / ((h / ws) * (w / ws));
    Ok(windows
        .reshape(&[b, h / ws, w / ws, ws, ws, c])?
        .permute(&[0, 1, 3, 2, 4, 5])?
        .reshape(&[b, h, w, c])?)
}

/// Zero-pads dims 1 and 2 of [B, H, W, C] at their ends (timm's `F.pad(x, (0, 0, 0, pw, 0, ph))`).
pub fn pad_hw(x: &Tensor, ph: usize, pw: usize) -> Result<Tensor> {
    let mut x = x.clone();
    for (dim, pad) in [(1usize, ph), (2, pw)] {
        if pad == 0 {
            continue;
        }
        let mut shape = x.shape().to_vec();
        shape[dim] = pad;
        let zeros = Tensor::full_on(&shape, 0.0, x.dtype(), x.device())?;
        x = Tensor::cat(&[x, zeros], dim as isize)?;
    }
    Ok(x)
}

/// timm's `get_attn_mask` for a block shifted by `shift` on an `h`×`w` map (padded up to
/// multiples of `ws`): [nW, N, N] with 0 where two tokens of a window came from the same region
/// before the cyclic shift and −100 where not.
pub fn shift_mask(h: usize, w: usize, ws: usize, shift: usize) -> Result<Tensor> {
    let (hp, wp) = (h.div_ceil(ws) * ws, w.div_ceil(ws) * ws);
    // Regions [0, n − ws), [n − ws, n − shift), [n − shift, n) along each dim.
    let region = |i: usize, n: usize| usize::from(i >= n - ws) + usize::from(i >= n - shift);
    let (nh, nw, n) = (hp / ws, wp / ws, ws * ws);
    let mut mask = vec![0f32; nh * nw * n * n];
    for (win, m) in mask.chunks_mut(n * n).enumerate() {
        let (wy, wx) = (win / nw, win % nw);
        let label = |t: usize| {
            let (y, x) = (wy * ws + t / ws, wx * ws + t % ws);
            region(y, hp) * 3 + region(x, wp)
        };
        for i in 0..n {
            for j in 0..n {
                if label(i) != label(j) {
                    m[i * n + j] = -100.0;
                }
            }
        }
    }
    Ok(Tensor::from_vec(mask, &[nh * nw, n, n])?)
}

/// One-hot [ws·ws, 2ws − 1] with row (a·ws + b) set at a − b + ws − 1: the relative offset of
/// two coordinates along one axis of a window.
fn offset_one_hot(ws: usize) -> Result<Tensor> {
    let k = 2 * ws - 1;
    let mut v = vec![0f32; ws * ws * k];
    for a in 0..ws {
        for b in 0..ws {
            v[(a * ws + b) * k + a + ws - 1 - b] = 1.0;
        }
    }
    Ok(Tensor::from_vec(v, &[ws * ws, k])?)
}

/// timm's `WindowAttention` on its fused path: qkv, softmax(q·kᵀ/√d + relative position bias
/// (+ shift mask))·v per window and head in the fused attention op, proj.
#[derive(Children)]
#[children(group)]
pub struct WindowAttention {
    /// The [(2ws − 1)², heads] table timm indexes by `relative_position_index`.
    #[param]
    pub relative_position_bias_table: Tensor,
    #[child]
    qkv: Linear,
    #[child]
    proj: Linear,
    heads: usize,
    ws: usize,
    /// The gather by timm's (non-persistent) `relative_position_index`, as two one-hot products
    /// (rows, then columns of the offset grid): exact, and differentiable on every device.
    one_hot: DeviceConst,
}

impl WindowAttention {
    fn new(dim: usize, heads: usize, ws: usize) -> Result<WindowAttention> {
        let linear = |i, o| Linear::trunc_normal(i, o, 0.02);
        let k = 2 * ws - 1;
        Ok(WindowAttention {
            relative_position_bias_table: crate::init::trunc_normal(&[k * k, heads], 0.02)?,
            qkv: linear(dim, 3 * dim)?,
            proj: linear(dim, dim)?,
            heads,
            ws,
            one_hot: DeviceConst::new(offset_one_hot(ws)?),
        })
    }

    /// timm's `_get_rel_pos_bias` without the leading 1: [heads, N, N], entry (h, i, j) the
    /// table's row (yi − yj + ws − 1)·(2ws − 1) + (xi − xj + ws − 1) of head h.
    pub fn relative_position_bias(&self) -> Result<Tensor> {
        let (ws, k, heads) = (self.ws, 2 * self.ws - 1, self.heads);
        let table = &self.relative_position_bias_table;
        let r = self.one_hot.on(table.device(), table.dtype())?;
        // [ws², k] · [k, k·heads]: (yi, yj, dx, head).
        let rows = r.matmul(&table.reshape(&[k, k * heads])?)?;
        // (yi, yj, head, dx) · [k, ws²] (r transposed): (yi, yj, head, xi, xj).
        let full = rows
            .reshape(&[ws * ws, k, heads])?
            .transpose(1, 2)?
            .reshape(&[ws * ws * heads, k])?
            .matmul(&r.t()?)?;
        Ok(full
            .reshape(&[ws, ws, heads, ws, ws])?
            .permute(&[2, 0, 3, 1, 4])?
            .reshape(&[heads, ws * ws, ws * ws])?)
    }

    /// Windows [B·nW, N, C] of a batch of `b` images, with the [nW, N, N] shift mask if any.
    fn forward(&self, x: &Tensor, b: usize, mask: Option<&Tensor>) -> Result<Tensor> {
        let &[bw, n, c] = x.shape() else {
            return Err(bad_tokens(x));
        };
        let (heads, d) = (self.heads, c / self.heads);
        let nw = bw / b;
        let qkv = self
            .qkv
            .forward(x)?
            .reshape(&[bw, n, 3, heads, d])?
            .permute(&[2, 0, 3, 1, 4])?;
        // [B, nW, heads, N, d]: the bias [heads, N, N] (+ the mask [nW, 1, N, N]) broadcasts.
        let part =
            |i| -> Result<Tensor> { Ok(qkv.narrow(0, i, 1)?.reshape(&[b, nw, heads, n, d])?) };
        let (q, k, v) = (part(0)?, part(1)?, part(2)?);
        let rel = self.relative_position_bias()?;
        let bias = match mask {
            Some(m) => rel.add(&m.to_dtype(rel.dtype())?.unsqueeze(1)?)?,
            None => rel,
        };
        let opts = AttnOptions {
            bias: Some(&bias),
            ..Default::default()
        };
        let o = Tensor::scaled_dot_product_attention_with(&q, &k, &v, opts)?;
        let o = o
            .reshape(&[bw, heads, n, d])?
            .transpose(1, 2)?
            .reshape(&[bw, n, c])?;
        self.proj.forward(&o)
    }
}

/// timm's `SwinTransformerBlock`: x + drop_path(shifted window attention(norm1(x))), then
/// x + drop_path(mlp(norm2(x))), on [B, H, W, C] of the resolution it was built for.
#[derive(Children)]
pub struct SwinBlock {
    #[child]
    norm1: LayerNorm,
    #[child]
    attn: WindowAttention,
    #[child]
    norm2: LayerNorm,
    #[child(name = "mlp.fc1")]
    fc1: Linear,
    #[child(name = "mlp.fc2")]
    fc2: Linear,
    /// The block's stochastic depth.
    #[child]
    pub drop_path: DropPath,
    ws: usize,
    shift: usize,
    mask: Option<DeviceConst>,
}

impl SwinBlock {
    /// A block of `dim` channels and `heads` heads on a `res`×`res` map: timm's
    /// `_calc_window_shift` clamps the window to the map and drops the shift when it fits.
    pub fn new(
        dim: usize,
        heads: usize,
        res: usize,
        (window, shifted): (usize, bool),
        drop_path: f64,
    ) -> Result<SwinBlock> {
        let ws = window.min(res);
        let shift = if shifted && res > ws { ws / 2 } else { 0 };
        let mask = (shift > 0)
            .then(|| shift_mask(res, res, ws, shift).map(DeviceConst::new))
            .transpose()?;
        let linear = |i, o| Linear::trunc_normal(i, o, 0.02);
        Ok(SwinBlock {
            norm1: LayerNorm::with_eps(dim, LN_EPS)?,
            attn: WindowAttention::new(dim, heads, ws)?,
            norm2: LayerNorm::with_eps(dim, LN_EPS)?,
            fc1: linear(dim, 4 * dim)?,
            fc2: linear(4 * dim, dim)?,
            drop_path: DropPath {
                p: drop_path,
                training: true,
            },
            ws,
            shift,
            mask,
        })
    }

    /// The window size and shift this block runs with.
    pub fn window_shift(&self) -> (usize, usize) {
        (self.ws, self.shift)
    }

    /// timm's `_attn`: cyclic shift, pad, partition, window attention, reverse, crop, shift back.
    fn shifted_attention(&self, x: &Tensor) -> Result<Tensor> {
        let &[b, h, w, _] = x.shape() else {
            return Err(bad_tokens(x));
        };
        let (ws, s) = (self.ws, self.shift as isize);
        let shifted = if s > 0 {
            x.roll(&[-s, -s], &[1, 2])?
        } else {
            x.clone()
        };
        let (ph, pw) = ((ws - h % ws) % ws, (ws - w % ws) % ws);
        let padded = pad_hw(&shifted, ph, pw)?;
        let mask = match &self.mask {
            Some(m) => Some(m.on(x.device(), x.dtype())?),
            None => None,
        };
        let windows = window_partition(&padded, ws)?;
        let attended = self.attn.forward(&windows, b, mask.as_ref())?;
        let merged = window_reverse(&attended, ws, h + ph, w + pw)?;
        let cropped = if ph + pw > 0 {
            merged.narrow(1, 0, h)?.narrow(2, 0, w)?
        } else {
            merged
        };
        Ok(if s > 0 {
            cropped.roll(&[s, s], &[1, 2])?
        } else {
            cropped
        })
    }
}

impl Module for SwinBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let a = self.shifted_attention(&self.norm1.forward(x)?)?;
        let x = x.add(&self.drop_path.forward(&a)?)?;
        let h = self.fc1.forward(&self.norm2.forward(&x)?)?.gelu()?;
        Ok(x.add(&self.drop_path.forward(&self.fc2.forward(&h)?)?)?)
    }

    crate::module::not_prunable!();
}

/// timm's `PatchMerging`: each 2×2 patch's four C-vectors (padded to even H and W) concatenated
/// as timm orders them, LayerNorm(4C), a bias-free Linear to `out`.
#[derive(Children)]
pub struct PatchMerging {
    #[child]
    norm: LayerNorm,
    #[child]
    reduction: Linear,
}

impl PatchMerging {
    /// Merging `dim` channels into `out`.
    pub fn new(dim: usize, out: usize) -> Result<PatchMerging> {
        let mut reduction = Linear::trunc_normal(4 * dim, out, 0.02)?;
        reduction.bias = None;
        Ok(PatchMerging {
            norm: LayerNorm::with_eps(4 * dim, LN_EPS)?,
            reduction,
        })
    }
}

impl Module for PatchMerging {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let &[b, h, w, c] = x.shape() else {
            return Err(bad_tokens(x));
        };
        let x = pad_hw(x, h % 2, w % 2)?;
        let (h, w) = (h.div_ceil(2), w.div_ceil(2));
        let merged = x
            .reshape(&[b, h, 2, w, 2, c])?
            .permute(&[0, 1, 3, 4, 2, 5])?
            .reshape(&[b, h, w, 4 * c])?;
        self.reduction.forward(&self.norm.forward(&merged)?)
    }

    crate::module::not_prunable!();
}

fn bad_tokens(x: &Tensor) -> Error {
    Error::BadArgument {
        model: "swin".into(),
        msg: format!("expected [B, H, W, C] tokens, got {:?}", x.shape()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_partition_then_reverse_is_the_identity() {
        let x = Tensor::randn(&[2, 6, 9, 4], DType::F32, 3).unwrap();
        let w = window_partition(&x, 3).unwrap();
        assert_eq!(w.shape(), [2 * 2 * 3, 9, 4]);
        // Window 1 of image 0 is rows 0-2, columns 3-5: its token 4 is pixel (1, 4).
        let xs = x.to_vec_f32().unwrap();
        let ws = w.contiguous().unwrap().to_vec_f32().unwrap();
        assert_eq!(ws[(9 + 4) * 4..][..4], xs[(9 + 4) * 4..][..4]);
        let back = window_reverse(&w, 3, 6, 9).unwrap();
        assert_eq!(back.contiguous().unwrap().to_vec_f32().unwrap(), xs);
    }

    #[test]
    fn shift_mask_separates_timms_regions() {
        // A 4×4 map, window 2, shift 1: rows and columns fall in regions [0, 2), [2, 3), [3, 4)
        // (timm's slices (0, −2), (−2, −1), (−1, None)); window 3 (rows 2-3, columns 2-3) holds
        // four regions, window 0 one.
        let m = shift_mask(4, 4, 2, 1).unwrap();
        assert_eq!(m.shape(), [4, 4, 4]);
        let v = m.to_vec_f32().unwrap();
        assert!(v[..16].iter().all(|&x| x == 0.0));
        let w3 = &v[48..];
        for i in 0..4 {
            for j in 0..4 {
                let want = if i == j { 0.0 } else { -100.0 };
                assert_eq!(w3[i * 4 + j], want, "window 3 ({i}, {j})");
            }
        }
        // Window 1 (rows 0-1, columns 2-3): columns 2 and 3 differ, rows do not.
        let w1 = &v[16..32];
        assert_eq!(w1[1], -100.0);
        assert_eq!(w1[2], 0.0);
    }

    #[test]
    fn relative_position_bias_indexes_the_table_as_timm() {
        // timm's relative_position_index: (yi − yj + ws − 1)·(2ws − 1) + (xi − xj + ws − 1).
        let (ws, heads) = (3, 2);
        let attn = WindowAttention::new(8, heads, ws).unwrap();
        let table = attn.relative_position_bias_table.to_vec_f32().unwrap();
        let bias = attn.relative_position_bias().unwrap();
        assert_eq!(bias.shape(), [heads, ws * ws, ws * ws]);
        let got = bias.contiguous().unwrap().to_vec_f32().unwrap();
        let n = ws * ws;
        for h in 0..heads {
            for i in 0..n {
                for j in 0..n {
                    let (yi, xi, yj, xj) = (i / ws, i % ws, j / ws, j % ws);
                    let idx = (yi + ws - 1 - yj) * (2 * ws - 1) + (xi + ws - 1 - xj);
                    assert_eq!(got[(h * n + i) * n + j], table[idx * heads + h]);
                }
            }
        }
    }
}
