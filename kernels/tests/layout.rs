//! layout.cu (through its launcher) against the CPU twin: u8 NHWC to normalized f32, f16 and
//! bf16 for RGB and single-channel batches, from an aligned and an unaligned source.

mod common;
use common::{bf16_bits, f16_bits, gpu};
use kiln_kernels::cpu::layout as cpu;
use kiln_kernels::cuda::layout as cuda;

#[test]
fn normalize_matches_the_cpu_for_every_output_type() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let rgb = (&[0.485f32, 0.456, 0.406][..], &[0.229f32, 0.224, 0.225][..]);
    let gray = (&[0.2860f32][..], &[0.3530f32][..]);
    // (n, h, w, c, mean, std, byte offset of the source: 1 makes it unaligned)
    let cases = [
        (3, 7, 9, 3, rgb, 0),
        (2, 5, 11, 1, gray, 0),
        (1, 3, 5, 3, rgb, 1),
    ];
    for (n, h, w, c, (mean, std), skew) in cases {
        let total = n * h * w * c;
        let bytes: Vec<u8> = (0..total + skew).map(|i| (i * 151 % 256) as u8).collect();
        let src = &bytes[skew..];
        let mut want = vec![0f32; total];
        cpu::normalize_u8_nhwc(src, c, mean, std, &mut want);
        let dsrc = g.upload(&bytes);
        let psrc = g.ptr(&dsrc) + skew as u64;
        let what = format!("{n}x{h}x{w}x{c} skew {skew}");

        let out = g.zeros::<f32>(total);
        cuda::normalize_u8_nhwc(&k, "f32", psrc, (n * h * w, c), (mean, std), g.ptr(&out)).unwrap();
        assert_eq!(g.download(&out), want, "f32 {what}");

        let out = g.zeros::<u16>(total);
        cuda::normalize_u8_nhwc(&k, "f16", psrc, (n * h * w, c), (mean, std), g.ptr(&out)).unwrap();
        assert_eq!(g.download(&out), f16_bits(&want), "f16 {what}");

        cuda::normalize_u8_nhwc(&k, "bf16", psrc, (n * h * w, c), (mean, std), g.ptr(&out))
            .unwrap();
        assert_eq!(g.download(&out), bf16_bits(&want), "bf16 {what}");
    }
}

#[test]
fn normalize_rejects_mismatched_channel_lists() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let err = cuda::normalize_u8_nhwc(&k, "f32", 0, (1, 3), (&[0.5; 2], &[1.0; 3]), 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("3 channels with 2 means"), "{err}");
}
