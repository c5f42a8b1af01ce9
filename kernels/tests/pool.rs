//! pool.cu (through its launchers) against the CPU twins in `cpu::pool`: max (with dilation and a
//! NaN), average (both divisor rules) and adaptive pooling, forward and backward, NCHW and NHWC,
//! ceil_mode and padding, on an odd 11×9 map. Gradients start as NaN on the device, so every dx
//! element must be written.

mod common;
use common::elem::Elem;
use common::gpu;
use kiln_kernels::cpu::pool::{self as cpu, Dims4, Window};
use kiln_kernels::cpu::Real;
use kiln_kernels::cuda::pool as cuda;
use kiln_kernels::cuda::Kernels;

/// A dtype both the twin and the kernels take, and its relative tolerance: the kernels sum in the
/// twin's order (every backward gathers in the twin's output order), so results differ at most by
/// the last bit.
trait Twin: Elem + Real {
    const TOL: f64;
}
impl Twin for f32 {
    const TOL: f64 = 1e-6;
}
impl Twin for f64 {
    const TOL: f64 = 1e-14;
}

const X: [usize; 4] = [2, 3, 11, 9];
/// More channel groups than a 32-wide row of threads (the channels-last kernels' channel loops
/// wrap): 136 channels take the 16-byte packs (34 of f32), 42 go one channel a thread.
const X_WIDE: [usize; 4] = [2, 136, 5, 4];
const X_WIDE_ODD: [usize; 4] = [2, 42, 5, 4];

fn dims(size: [usize; 4], channels_last: bool) -> Dims4 {
    let [_, c, h, w] = size;
    let stride = if channels_last {
        [h * w * c, 1, w * c, c]
    } else {
        [c * h * w, h * w, w, 1]
    };
    Dims4 { size, stride }
}

fn window(k: [usize; 2], s: [usize; 2], p: [usize; 2], d: usize, ceil_mode: bool) -> Window {
    Window {
        kernel: k,
        stride: s,
        padding: p,
        dilation: [d, d],
        ceil_mode,
    }
}

/// Windows for average pooling (no dilation): partial last windows under ceil_mode, windows
/// running past the right padding, non-square kernels and strides.
fn avg_windows() -> Vec<Window> {
    vec![
        window([3, 3], [2, 2], [1, 1], 1, false),
        window([2, 2], [2, 2], [0, 0], 1, true),
        window([2, 3], [2, 2], [0, 1], 1, true),
        window([3, 2], [2, 2], [1, 0], 1, false),
        window([5, 5], [3, 3], [2, 2], 1, true),
    ]
}

/// Values in [-1, 1] with repeats (so ties pick the first maximum); `nan` puts one NaN in.
fn values<T: Twin>(len: usize, seed: usize, nan: bool) -> Vec<T> {
    (0..len)
        .map(|i| {
            if nan && i == len / 3 {
                T::nan()
            } else {
                kiln_kernels::cpu::c(((i * 37 + seed * 11) % 41) as f64 / 20.0 - 1.0)
            }
        })
        .collect()
}

fn assert_matches<T: Twin>(what: &str, got: &[T], want: &[T]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.to_f64().unwrap(), w.to_f64().unwrap());
        let ok = (g.is_nan() && w.is_nan()) || (g - w).abs() <= T::TOL * (1.0 + w.abs());
        assert!(ok, "{what}: element {i} = {g}, want {w}");
    }
}

/// Device buffers for one pooling: x, dy, y, dx (NaN) and idx.
struct Bufs<T: Twin> {
    x: Vec<T>,
    dy: Vec<T>,
    xd: Dims4,
    yd: Dims4,
}

impl<T: Twin> Bufs<T> {
    fn new(x: [usize; 4], out: [usize; 2], channels_last: bool, nan: bool) -> Bufs<T> {
        let xd = dims(x, channels_last);
        let yd = dims([x[0], x[1], out[0], out[1]], channels_last);
        let n = |d: &Dims4| d.size.iter().product::<usize>();
        Bufs {
            x: values(n(&xd), 1, nan),
            dy: values(n(&yd), 2, false),
            xd,
            yd,
        }
    }
}

fn max_pool<T: Twin>(g: &common::Gpu, k: &Kernels, x: [usize; 4], win: &Window, cl: bool) {
    let out = [win.out_size(0, x[2]), win.out_size(1, x[3])];
    let b = Bufs::<T>::new(x, out, cl, true);
    let what = format!("{} max_pool {x:?} {win:?} channels_last {cl}", T::TY);
    let (mut y, mut idx) = (vec![T::zero(); b.dy.len()], vec![0i64; b.dy.len()]);
    cpu::max_pool_fwd(&b.x, b.xd, win, &mut y, b.yd, &mut idx);
    let mut dx = vec![T::zero(); b.x.len()];
    cpu::max_pool_bwd(&b.dy, b.yd, &idx, &mut dx, b.xd);

    let (x_d, dy_d) = (g.upload(&b.x), g.upload(&b.dy));
    let (y_d, idx_d) = (g.zeros::<T>(y.len()), g.zeros::<i64>(y.len()));
    let dx_d = g.upload(&vec![T::nan(); dx.len()]);
    cuda::max_pool_fwd(
        k,
        T::TY,
        (g.ptr(&x_d), b.xd),
        (g.ptr(&y_d), b.yd),
        win,
        g.ptr(&idx_d),
    )
    .unwrap();
    assert_matches(&what, &g.download(&y_d), &y);
    assert_eq!(g.download(&idx_d), idx, "{what}: argmax");
    cuda::max_pool_bwd(
        k,
        T::TY,
        (g.ptr(&dy_d), b.yd),
        g.ptr(&idx_d),
        (g.ptr(&dx_d), b.xd),
        Some(win),
    )
    .unwrap();
    assert_matches(&format!("{what} backward"), &g.download(&dx_d), &dx);
}

fn avg_pool<T: Twin>(g: &common::Gpu, k: &Kernels, win: &Window, cip: bool, cl: bool) {
    let out = [win.out_size(0, X[2]), win.out_size(1, X[3])];
    let b = Bufs::<T>::new(X, out, cl, false);
    let what = format!(
        "{} avg_pool {win:?} count_include_pad {cip} channels_last {cl}",
        T::TY
    );
    let mut y = vec![T::zero(); b.dy.len()];
    cpu::avg_pool_fwd(&b.x, b.xd, win, cip, &mut y, b.yd);
    let mut dx = vec![T::zero(); b.x.len()];
    cpu::avg_pool_bwd(&b.dy, b.yd, win, cip, &mut dx, b.xd);

    let (x_d, dy_d) = (g.upload(&b.x), g.upload(&b.dy));
    let y_d = g.zeros::<T>(y.len());
    let dx_d = g.upload(&vec![T::nan(); dx.len()]);
    cuda::avg_pool_fwd(k, T::TY, (g.ptr(&x_d), b.xd), (g.ptr(&y_d), b.yd), win, cip).unwrap();
    assert_matches(&what, &g.download(&y_d), &y);
    cuda::avg_pool_bwd(
        k,
        T::TY,
        (g.ptr(&dy_d), b.yd),
        (g.ptr(&dx_d), b.xd),
        win,
        cip,
    )
    .unwrap();
    assert_matches(&format!("{what} backward"), &g.download(&dx_d), &dx);
}

fn adaptive_pool<T: Twin>(g: &common::Gpu, k: &Kernels, out: [usize; 2], max: bool, cl: bool) {
    let b = Bufs::<T>::new(X, out, cl, max);
    let what = format!("{} adaptive {out:?} max {max} channels_last {cl}", T::TY);
    let (mut y, mut idx) = (vec![T::zero(); b.dy.len()], vec![0i64; b.dy.len()]);
    cpu::adaptive_pool_fwd(&b.x, b.xd, max, &mut y, b.yd, &mut idx);

    let x_d = g.upload(&b.x);
    let (y_d, idx_d) = (g.zeros::<T>(y.len()), g.upload(&vec![7i64; y.len()]));
    let (px, py, pi) = (g.ptr(&x_d), g.ptr(&y_d), g.ptr(&idx_d));
    cuda::adaptive_pool_fwd(k, T::TY, (px, b.xd), (py, b.yd), max, Some(pi)).unwrap();
    assert_matches(&what, &g.download(&y_d), &y);
    assert_eq!(g.download(&idx_d), idx, "{what}: argmax");
    // Without an index buffer the values are the same.
    let y2 = g.zeros::<T>(y.len());
    cuda::adaptive_pool_fwd(k, T::TY, (px, b.xd), (g.ptr(&y2), b.yd), max, None).unwrap();
    assert_matches(&what, &g.download(&y2), &y);
    let mut dx = vec![T::zero(); b.x.len()];
    let dy_d = g.upload(&b.dy);
    let dx_d = g.upload(&vec![T::nan(); dx.len()]);
    let (pdy, pdx) = (g.ptr(&dy_d), g.ptr(&dx_d));
    if max {
        cpu::max_pool_bwd(&b.dy, b.yd, &idx, &mut dx, b.xd);
        cuda::max_pool_bwd(k, T::TY, (pdy, b.yd), pi, (pdx, b.xd), None).unwrap();
    } else {
        cpu::adaptive_avg_pool_bwd(&b.dy, b.yd, &mut dx, b.xd);
        cuda::adaptive_avg_pool_bwd(k, T::TY, (pdy, b.yd), (pdx, b.xd)).unwrap();
    }
    assert_matches(&format!("{what} backward"), &g.download(&dx_d), &dx);
}

#[test]
fn max_pool_and_argmax_match_the_twin() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let mut wins = avg_windows();
    wins.push(window([3, 3], [1, 1], [2, 2], 2, false));
    wins.push(window([3, 2], [2, 1], [1, 1], 2, true));
    for cl in [false, true] {
        for win in &wins {
            max_pool::<f32>(&g, &k, X, win, cl);
        }
    }
    max_pool::<f64>(&g, &k, X, &wins[1], true);
    for win in &wins {
        max_pool::<f32>(&g, &k, X_WIDE, win, true);
    }
    max_pool::<f64>(&g, &k, X_WIDE, &wins[0], true);
    max_pool::<f32>(&g, &k, X_WIDE_ODD, &wins[1], true);
}

#[test]
fn avg_pool_matches_the_twin_with_either_divisor() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    for cl in [false, true] {
        for win in &avg_windows() {
            for cip in [false, true] {
                avg_pool::<f32>(&g, &k, win, cip, cl);
            }
        }
    }
    avg_pool::<f64>(&g, &k, &avg_windows()[4], false, false);
}

#[test]
fn adaptive_pool_matches_the_twin_shrinking_and_growing() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    for cl in [false, true] {
        for out in [[1, 1], [3, 4], [5, 7], [13, 10]] {
            for max in [false, true] {
                adaptive_pool::<f32>(&g, &k, out, max, cl);
            }
        }
    }
    adaptive_pool::<f64>(&g, &k, [4, 5], false, true);
}

#[test]
fn pooling_rejects_a_zero_stride() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let d = dims(X, false);
    let win = window([2, 2], [0, 2], [0, 0], 1, false);
    let err = cuda::avg_pool_fwd(&k, "f32", (0, d), (0, d), &win, false).unwrap_err();
    assert!(err.to_string().contains("stride"), "{err}");
}

/// `Window::out_size` against PyTorch's pooled lengths (scripts/fixtures/make_pool_size_fixtures.py),
/// windows wider than the input among them: ceil_mode can still leave one window there.
#[test]
fn output_sizes_match_pytorch() {
    let table = include_str!("fixtures/pool_out_sizes.txt");
    let mut cases = 0;
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let v: Vec<usize> = line.split(' ').map(|x| x.parse().unwrap()).collect();
        let w = Window {
            kernel: [v[1], 1],
            stride: [v[2], 1],
            padding: [v[3], 0],
            dilation: [v[4], 1],
            ceil_mode: v[5] == 1,
        };
        assert_eq!(w.out_size(0, v[0]), v[6], "{line}");
        cases += 1;
    }
    assert_eq!(cases, 300);
}
