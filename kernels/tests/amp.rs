//! amp.cu (through its launchers) against the CPU twin: unscale with and without an inf/NaN
//! somewhere in a list longer than one launch, and the EMA update.

mod common;
use common::{assert_close, gpu};
use kiln_kernels::cpu::amp as cpu;
use kiln_kernels::cuda::amp as cuda;

fn lists(lens: &[usize]) -> Vec<Vec<f32>> {
    lens.iter()
        .enumerate()
        .map(|(t, &n)| {
            (0..n)
                .map(|i| ((i * 7919 + t * 31) % 1009) as f32 * 64.0 - 3e4)
                .collect()
        })
        .collect()
}

fn lens() -> Vec<usize> {
    [4097, 1, 0, 555]
        .into_iter()
        .chain((0..33).map(|i| 2 + i * 7))
        .collect()
}

#[test]
fn unscale_matches_the_cpu_and_flags_inf_and_nan() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let lens = lens();
    // (tensor, index, value) poisoned per case; None: all finite.
    let cases = [None, Some((1, 0, f32::INFINITY)), Some((36, 100, f32::NAN))];
    for case in cases {
        let mut host = lists(&lens);
        if let Some((t, i, v)) = case {
            host[t][i] = v;
        }
        let dev: Vec<_> = host.iter().map(|v| g.upload(v)).collect();
        let ptrs: Vec<u64> = dev.iter().map(|d| g.ptr(d)).collect();
        let flag = g.zeros::<f32>(1);
        let inv_scale = 1.0 / 65536.0;
        cuda::unscale_and_check(&k, &ptrs, &lens, inv_scale, g.ptr(&flag)).unwrap();
        let mut views: Vec<&mut [f32]> = host.iter_mut().map(|v| &mut v[..]).collect();
        let found = cpu::unscale_and_check(&mut views, inv_scale);
        assert_eq!(found, case.is_some());
        assert_eq!(
            g.download(&flag),
            [if found { 1.0 } else { 0.0 }],
            "{case:?}"
        );
        for (t, d) in dev.iter().enumerate() {
            assert_close(&format!("grad {t}"), &g.download(d), &host[t], 0.0, 0.0);
        }
    }
}

#[test]
fn ema_update_matches_the_cpu() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let lens = lens();
    let mut ema = lists(&lens);
    let model: Vec<Vec<f32>> = lists(&lens)
        .into_iter()
        .map(|v| v.iter().map(|x| x * 0.5 + 1.0).collect())
        .collect();
    let (de, dm): (Vec<_>, Vec<_>) = (
        ema.iter().map(|v| g.upload(v)).collect(),
        model.iter().map(|v| g.upload(v)).collect(),
    );
    let pe: Vec<u64> = de.iter().map(|d| g.ptr(d)).collect();
    let pm: Vec<u64> = dm.iter().map(|d| g.ptr(d)).collect();
    cuda::ema_update(&k, &pe, &pm, &lens, 0.9998).unwrap();
    let mut views: Vec<&mut [f32]> = ema.iter_mut().map(|v| &mut v[..]).collect();
    let mv: Vec<&[f32]> = model.iter().map(|v| &v[..]).collect();
    cpu::ema_update(&mut views, &mv, 0.9998);
    for (t, d) in de.iter().enumerate() {
        assert_close(&format!("ema {t}"), &g.download(d), &ema[t], 1e-3, 1e-6);
    }
}

#[test]
fn unscale_by_a_device_factor_matches_the_factor_by_value() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let lens = lens();
    let inv_scale = 1.0 / 1024.0;
    let mut out = Vec::new();
    for by_device in [false, true] {
        let mut host = lists(&lens);
        host[3][7] = f32::NAN;
        let dev: Vec<_> = host.iter().map(|v| g.upload(v)).collect();
        let ptrs: Vec<u64> = dev.iter().map(|d| g.ptr(d)).collect();
        let (flag, factor) = (g.zeros::<f32>(1), g.upload(&[inv_scale]));
        if by_device {
            cuda::unscale_and_check_by(&k, &ptrs, &lens, g.ptr(&factor), g.ptr(&flag)).unwrap();
        } else {
            cuda::unscale_and_check(&k, &ptrs, &lens, inv_scale, g.ptr(&flag)).unwrap();
        }
        assert_eq!(g.download(&flag), [1.0]);
        out.push(dev.iter().map(|d| g.download(d)).collect::<Vec<_>>());
    }
    for (t, (a, b)) in out[0].iter().zip(&out[1]).enumerate() {
        assert_close(&format!("grad {t}"), b, a, 0.0, 0.0);
    }
}
