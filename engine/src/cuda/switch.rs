//! Process-wide switches between the vendor libraries and kiln's built-in kernels, like
//! `torch.backends.cudnn.enabled`: read from the environment on first use, settable at run time.

use kiln_kernels::cuda::gemm::Tile;
use kiln_kernels::cuda::gemm_tc;
use std::sync::atomic::{AtomicU8, Ordering};

/// A switch's value from its environment variable: "0", "false", "off" or "no" (any case) turn it
/// off, "1", "true", "on" or "yes" turn it on; unset or anything else leaves `default`.
pub fn parse_switch(value: Option<&str>, default: bool) -> bool {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        Some("0" | "false" | "off" | "no") => false,
        Some("1" | "true" | "on" | "yes") => true,
        _ => default,
    }
}

/// One switch: not yet read (0), off (1) or on (2).
struct Switch {
    var: &'static str,
    default: bool,
    state: AtomicU8,
}

impl Switch {
    const fn new(var: &'static str, default: bool) -> Switch {
        Switch {
            var,
            default,
            state: AtomicU8::new(0),
        }
    }

    fn get(&self) -> bool {
        match self.state.load(Ordering::Relaxed) {
            0 => {
                let on = parse_switch(std::env::var(self.var).ok().as_deref(), self.default);
                // A concurrent `set` wins over the environment.
                let _ = self.state.compare_exchange(
                    0,
                    1 + on as u8,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                self.state.load(Ordering::Relaxed) == 2
            }
            s => s == 2,
        }
    }

    fn set(&self, on: bool) {
        self.state.store(1 + on as u8, Ordering::Relaxed);
    }
}

static CUBLAS: Switch = Switch::new("KILN_CUBLAS", true);
static CUDNN: Switch = Switch::new("KILN_CUDNN", true);
static CUDNN_BENCHMARK: Switch = Switch::new("KILN_CUDNN_BENCHMARK", false);
static CUDNN_GRAPH: Switch = Switch::new("KILN_CUDNN_GRAPH", true);
static TENSOR_CORES: Switch = Switch::new("KILN_TENSOR_CORES", true);
static CONV_BN_STATS: Switch = Switch::new("KILN_CONV_BN_STATS", true);
static CONV_BN_PROLOGUE: Switch = Switch::new("KILN_CONV_BN_PROLOGUE", true);

/// Whether cuBLAS may serve matrix products (`KILN_CUBLAS`, on unless set to 0).
pub fn cublas_enabled() -> bool {
    CUBLAS.get()
}

/// Lets cuBLAS serve matrix products, or not (the built-in GEMM then does); overrides `KILN_CUBLAS`.
pub fn set_cublas_enabled(on: bool) {
    CUBLAS.set(on)
}

/// Whether cuDNN may serve convolutions (`KILN_CUDNN`, on unless set to 0).
pub fn cudnn_enabled() -> bool {
    CUDNN.get()
}

/// Lets cuDNN serve convolutions, or not (the built-in kernels then do); overrides `KILN_CUDNN`.
pub fn set_cudnn_enabled(on: bool) {
    CUDNN.set(on)
}

/// Whether cuDNN picks algorithms by timing them (`KILN_CUDNN_BENCHMARK=1`; off by default).
pub fn cudnn_benchmark() -> bool {
    CUDNN_BENCHMARK.get()
}

/// `torch.backends.cudnn.benchmark`: time every cuDNN algorithm on each new convolution shape and
/// keep the fastest, instead of taking cuDNN's heuristic choice; overrides `KILN_CUDNN_BENCHMARK`.
pub fn set_cudnn_benchmark(on: bool) {
    CUDNN_BENCHMARK.set(on)
}

/// Whether convolutions try cuDNN's graph (backend) API first (`KILN_CUDNN_GRAPH`, on unless set
/// to 0; the legacy API then serves alone).
pub fn cudnn_graph_enabled() -> bool {
    CUDNN_GRAPH.get()
}

/// Lets convolutions try cuDNN's graph API before the legacy API, or not; overrides
/// `KILN_CUDNN_GRAPH`.
pub fn set_cudnn_graph_enabled(on: bool) {
    CUDNN_GRAPH.set(on)
}

/// Whether kiln's own GEMM and convolution kernels may use tensor cores for f16/bf16 on sm_80+
/// (`KILN_TENSOR_CORES`, on unless set to 0); off, the SIMT kernels serve every dtype.
pub fn tensor_cores_enabled() -> bool {
    TENSOR_CORES.get()
}

/// Lets kiln's own f16/bf16 GEMM and convolution kernels use tensor cores, or not (the SIMT
/// kernels then do); overrides `KILN_TENSOR_CORES`. cuBLAS and cuDNN, when they serve, are not
/// affected.
pub fn set_tensor_cores_enabled(on: bool) {
    TENSOR_CORES.set(on)
}

/// Whether a convolution followed by a training BatchNorm produces the BN's statistics in its
/// epilogue where it can (`KILN_CONV_BN_STATS`, on unless set to 0); off, the BN reads its input
/// to compute them (`bn_partials`).
pub fn conv_bn_stats_enabled() -> bool {
    CONV_BN_STATS.get()
}

/// Lets convolutions produce the statistics of the BatchNorm after them, or not; overrides
/// `KILN_CONV_BN_STATS`.
pub fn set_conv_bn_stats_enabled(on: bool) {
    CONV_BN_STATS.set(on)
}

/// Whether a training BatchNorm (and ReLU) whose only reader is a convolution is applied in that
/// convolution's operand loads where kiln's tensor-core kernels serve it
/// (`KILN_CONV_BN_PROLOGUE`, on unless set to 0); off, the BN writes its output and the
/// convolution reads it.
pub fn conv_bn_prologue_enabled() -> bool {
    CONV_BN_PROLOGUE.get()
}

/// Lets convolutions apply the BatchNorm before them, or not; overrides `KILN_CONV_BN_PROLOGUE`.
pub fn set_conv_bn_prologue_enabled(on: bool) {
    CONV_BN_PROLOGUE.set(on)
}

/// The block tile that `KILN_TC_TILE` forces on kiln's tensor-core GEMM and convolution kernels:
/// `64` (64×64, 4 warps), `128` (128×128, 8 warps), or unset/`auto` (None): 128×128 per launch
/// where both GEMM sides have 128 and its tiles fill every multiprocessor, else 64×64. An invalid
/// value fails the first tensor-core launch, naming the variable.
pub fn tc_tile() -> kiln_kernels::Result<Option<Tile>> {
    gemm_tc::forced_tile()
}

/// Forces kiln's tensor-core kernels onto one block tile (None: chosen per launch); overrides
/// `KILN_TC_TILE`.
pub fn set_tc_tile(tile: Option<Tile>) {
    gemm_tc::set_forced_tile(tile)
}
