//! PyTorch's `F.interpolate(x, size, mode='nearest')` on NCHW maps, as two products with 0/1
//! selection matrices (so its gradient is the matmuls').

use crate::Result;
use kiln_engine::{DType, Tensor};

/// The [in_len, out_len] matrix that picks, for each output index `j`, input index
/// `min(floor(j · (in_len / out_len)), in_len − 1)` with the scale in float32 (PyTorch's
/// `nearest` index for a given output size).
fn selection(in_len: usize, out_len: usize, like: &Tensor) -> Result<Tensor> {
    let scale = in_len as f32 / out_len as f32;
    let mut m = vec![0f32; in_len * out_len];
    for j in 0..out_len {
        let src = ((j as f32 * scale).floor() as usize).min(in_len - 1);
        m[src * out_len + j] = 1.0;
    }
    let m = Tensor::from_vec(m, &[in_len, out_len])?;
    let m = match like.dtype() {
        DType::F32 => m,
        dt => m.to_dtype(dt)?,
    };
    Ok(m.to_device(like.device())?)
}

/// `x` [N, C, h, w] resized to [N, C, `size`] by nearest-neighbour sampling (PyTorch's
/// `F.interpolate(x, size=size, mode='nearest')`).
pub fn interpolate_nearest(x: &Tensor, size: [usize; 2]) -> Result<Tensor> {
    let (h, w) = (x.shape()[2], x.shape()[3]);
    let mut y = x.clone();
    if w != size[1] {
        y = y.matmul(&selection(w, size[1], x)?)?;
    }
    if h != size[0] {
        let t = y.transpose(2, 3)?.matmul(&selection(h, size[0], x)?)?;
        y = t.transpose(2, 3)?.contiguous()?;
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::interpolate_nearest;
    use kiln_engine::Tensor;

    #[test]
    fn nearest_resize_picks_pytorchs_indices() {
        // F.interpolate(arange(9).view(1, 1, 3, 3), size=(7, 2)) (PyTorch): rows 0,0,0,1,1,2,2
        // and columns 0,1.
        let x = Tensor::from_vec((0..9).map(|v| v as f32).collect(), &[1, 1, 3, 3]).unwrap();
        let y = interpolate_nearest(&x, [7, 2]).unwrap();
        assert_eq!(y.shape(), &[1, 1, 7, 2]);
        let want = [0., 1., 0., 1., 0., 1., 3., 4., 3., 4., 6., 7., 6., 7.];
        assert_eq!(y.to_vec::<f32>().unwrap(), want);
    }
}
