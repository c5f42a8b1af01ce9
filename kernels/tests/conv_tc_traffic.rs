//! The 128×128 tensor-core tile against the 64×64 one by the emulator's global-memory counters
//! (`KILN_EMU_STATS`): over a convolution several tiles wide on both GEMM sides, each operand
//! element is fetched from global memory half as often, so every pass reads fewer bytes and
//! writes the same.

mod common;
use common::gpu;
use half::f16;
use kiln_kernels::cuda::conv::{conv2d_planned, ConvAlgo, ConvDims, ConvPass, ConvPlan};
use kiln_kernels::cuda::gemm::Tile;

/// A counter of a stats line (0 when absent).
fn field(line: &str, name: &str) -> u64 {
    line.split(&format!("\"{name}\":"))
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn t128_reads_less_global_memory_than_t64() {
    let Some(g) = gpu() else { return };
    let Some(k) = g.tensor_core_kernels("convolution") else {
        return;
    };
    // The counters are the emulator's; a GPU's (scripts/gpu-accept.sh runs every kernels test)
    // has none, and the tiles' speed there is the train_step benches' to show.
    let device = g.ctx.name().unwrap_or_default();
    if !device.starts_with("kiln CUDA emulator") {
        println!("global-byte counters exist on kiln-cuda-emu only; {device} has none");
        return;
    }
    // A ResNet 3×3 block conv in miniature, NHWC: 512 pixels × 128 channels, 1152-deep.
    let d = ConvDims {
        n: 2,
        c: 128,
        h: 16,
        w: 16,
        oc: 128,
        kh: 3,
        kw: 3,
        oh: 16,
        ow: 16,
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 1],
        groups: 1,
        channels_last: true,
    };
    let x = g.upload(&vec![f16::from_f32(0.5); d.n * d.c * d.h * d.w]);
    let w = g.upload(&vec![f16::from_f32(0.25); d.oc * d.c * d.kh * d.kw]);
    let y = g.upload(&vec![f16::from_f32(1.0); d.n * d.oc * d.oh * d.ow]);
    let dw = g.upload(&vec![f16::ZERO; d.oc * d.c * d.kh * d.kw]);
    let dx = g.upload(&vec![f16::ZERO; d.n * d.c * d.h * d.w]);
    let (px, pw, py, pdw, pdx) = (g.ptr(&x), g.ptr(&w), g.ptr(&y), g.ptr(&dw), g.ptr(&dx));
    let stats = std::env::temp_dir().join(format!("kiln-tc-traffic-{}.jsonl", std::process::id()));
    // This binary's only test: no other launch lands in the file.
    std::env::set_var("KILN_EMU_STATS", &stats);
    let mut bytes = Vec::new();
    for pass in [ConvPass::Fwd, ConvPass::BwdData, ConvPass::BwdFilter] {
        let (a, b, out) = match pass {
            ConvPass::Fwd => (px, pw, py),
            ConvPass::BwdData => (py, pw, pdx),
            ConvPass::BwdFilter => (px, py, pdw),
        };
        let mut per_tile = Vec::new();
        for tile in [Tile::T64, Tile::T128] {
            let _ = std::fs::remove_file(&stats);
            let plan = ConvPlan {
                algo: ConvAlgo::TensorCore(tile),
                splits: 1,
            };
            conv2d_planned(&k, "f16", &d, (pass, &plan), (a, b, out)).unwrap();
            let text = std::fs::read_to_string(&stats).unwrap();
            let conv: Vec<&str> = text.lines().filter(|l| l.contains("conv_tc_")).collect();
            assert_eq!(conv.len(), 1, "{pass:?} {tile:?}: {text}");
            let (load, store) = (
                field(conv[0], "global_load_bytes"),
                field(conv[0], "global_store_bytes"),
            );
            println!("{pass:?} {tile:?}: {load} bytes read, {store} written");
            per_tile.push((load, store));
        }
        let [(l64, s64), (l128, s128)] = per_tile[..] else {
            unreachable!()
        };
        assert!(
            l128 < l64,
            "{pass:?}: {l128} bytes read with 128×128, {l64} with 64×64"
        );
        assert_eq!(s128, s64, "{pass:?}: the same output");
        bytes.push((pass, l64, l128));
    }
    std::env::remove_var("KILN_EMU_STATS");
    let _ = std::fs::remove_file(&stats);
    for (pass, l64, l128) in bytes {
        println!(
            "{pass:?}: 128×128 reads {:.2} of 64×64's bytes",
            l128 as f64 / l64 as f64
        );
    }
}
