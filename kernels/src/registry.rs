//! The CUDA modules: each `kernels/cuda/*.cu` file embedded with its prelude, compiled by NVRTC
//! for the device's architecture on first use, and cached on disk as PTX keyed by a hash of the
//! source, the options and the NVRTC version.

use crate::error::{Error, Result};
use cudarc::nvrtc::{result as nvrtc, sys};
use std::ffi::{CStr, CString};
use std::path::PathBuf;

/// One `.cu` file.
#[derive(Debug)]
pub struct Module {
    /// The file name under `kernels/cuda/`.
    pub file: &'static str,
    /// Its source, without the prelude.
    pub source: &'static str,
    /// Shared headers it builds on (name, text), placed between the prelude and the source.
    pub headers: &'static [(&'static str, &'static str)],
    /// Kernels that must not spill registers (checked by a test with `-Xptxas -v`).
    pub hot: &'static [&'static str],
}

/// Definitions every module sees first (half types, strided indexing, warp reductions).
pub const PRELUDE: &str = include_str!("../cuda/prelude.cuh");

macro_rules! module {
    ($file:literal, $(headers: [$($h:literal),*],)? hot: [$($hot:literal),* $(,)?]) => {
        Module {
            file: $file,
            source: include_str!(concat!("../cuda/", $file)),
            headers: &[$($(($h, include_str!(concat!("../cuda/", $h)))),*)?],
            hot: &[$($hot),*],
        }
    };
}

/// A shared header: its name and text.
type Header = (&'static str, &'static str);

macro_rules! header {
    ($file:literal) => {
        ($file, include_str!(concat!("../cuda/", $file)))
    };
}

/// GEMM loaders and stores (`Strided`, `StoreAffine`), for both main loops.
const OPERANDS: Header = header!("operands.cuh");
/// The SIMT tiled main loop.
const TILE_GEMM: Header = header!("tile_gemm.cuh");
/// The tensor-core main loop (mma.sync, ldmatrix, cp.async).
const TC_TILE: Header = header!("tc_tile.cuh");
/// Convolution geometry and its implicit-GEMM loaders.
const CONV_OPERANDS: Header = header!("conv_operands.cuh");

/// Every module, by file.
pub static MODULES: &[Module] = &[
    module!(
        "elementwise.cu",
        hot: ["binary_f32", "unary_vec_f32", "binary_vec_f32"]
    ),
    module!("reduce.cu", headers: ["rows.cuh"], hot: []),
    module!(
        "softmax_xent.cu",
        headers: ["rows.cuh"],
        hot: ["xent_fwd_f32", "xent_bwd_f32"]
    ),
    module!(
        "bce.cu",
        headers: ["rows.cuh"],
        hot: ["bce_fwd_f32", "bce_bwd_f32"]
    ),
    module!(
        "bn_relu.cu",
        hot: ["bn_partials_f32", "bn_act_fwd_f32", "bn_act_bwd_dx_f32"]
    ),
    module!(
        "optim.cu",
        headers: ["tensor_list.cuh"],
        hot: ["rule_f32"]
    ),
    module!("amp.cu", headers: ["tensor_list.cuh"], hot: []),
    module!(
        "grad_norm.cu",
        headers: ["tensor_list.cuh"],
        hot: ["sq_norm_partials_f32"]
    ),
    module!(
        "layer_norm.cu",
        headers: ["rows.cuh"],
        hot: ["layer_norm_fwd_f32", "layer_norm_bwd_dx_f32"]
    ),
    module!(
        "attention.cu",
        hot: ["attention_fwd_h64_f32", "attention_bwd_dq_h64_f32", "attention_bwd_dkv_h64_f32"]
    ),
    module!("layout.cu", hot: []),
    module!(
        "depthwise.cu",
        hot: ["depthwise_fwd_nhwc_f32", "depthwise_bwd_data_nhwc_f32"]
    ),
    module!(
        "squeeze_excite.cu",
        headers: ["rows.cuh"],
        hot: ["se_channel_sum_f32", "se_channel_apply_f32"]
    ),
    module!("rng.cu", hot: []),
    module!("pool.cu", hot: []),
    Module {
        file: "gemm.cu",
        source: include_str!("../cuda/gemm.cu"),
        headers: &[OPERANDS, TILE_GEMM],
        hot: &[
            "gemm_t64_f32",
            "gemm_t64_f64",
            "gemm_t64_f16",
            "gemm_t64_bf16",
            "gemm_t128_f32",
            "gemm_t128_f16",
            "gemm_t128_bf16",
        ],
    },
    Module {
        file: "gemm_tc.cu",
        source: include_str!("../cuda/gemm_tc.cu"),
        headers: &[OPERANDS, TC_TILE],
        hot: &[
            "gemm_tc_nn_f16",
            "gemm_tc_nt_f16",
            "gemm_tc_tn_f16",
            "gemm_tc_tt_f16",
            "gemm_tc_nn_bf16",
            "gemm_tc_nt_bf16",
            "gemm_tc_tn_bf16",
            "gemm_tc_tt_bf16",
            "gemm_tc_t128_nn_f16",
            "gemm_tc_t128_nt_f16",
            "gemm_tc_t128_tn_f16",
            "gemm_tc_t128_tt_f16",
            "gemm_tc_t128_nn_bf16",
            "gemm_tc_t128_nt_bf16",
            "gemm_tc_t128_tn_bf16",
            "gemm_tc_t128_tt_bf16",
        ],
    },
    Module {
        file: "conv_tc.cu",
        source: include_str!("../cuda/conv_tc.cu"),
        headers: &[OPERANDS, CONV_OPERANDS, TC_TILE],
        hot: &[
            "conv_tc_fwd_nchw_f16",
            "conv_tc_fwd_nhwc_f16",
            "conv_tc_bwd_data_nchw_f16",
            "conv_tc_bwd_data_nhwc_f16",
            "conv_tc_bwd_filter_nchw_f16",
            "conv_tc_bwd_filter_nhwc_f16",
            "conv_tc_fwd_nchw_bf16",
            "conv_tc_fwd_nhwc_bf16",
            "conv_tc_bwd_data_nchw_bf16",
            "conv_tc_bwd_data_nhwc_bf16",
            "conv_tc_bwd_filter_nchw_bf16",
            "conv_tc_bwd_filter_nhwc_bf16",
            "conv_tc_fwd_stats_nchw_f16",
            "conv_tc_fwd_stats_nhwc_f16",
            "conv_tc_fwd_stats_nchw_bf16",
            "conv_tc_fwd_stats_nhwc_bf16",
            // The 64×64 BN-prologue kernels are not listed: the NHWC filter gradient spills 4 bytes
            // on sm_80 (as before the 128×128 tile existed).
            "conv_tc_fwd_t128_nchw_f16",
            "conv_tc_fwd_t128_nhwc_f16",
            "conv_tc_fwd_stats_t128_nchw_f16",
            "conv_tc_fwd_stats_t128_nhwc_f16",
            "conv_tc_fwd_bnact_t128_nchw_f16",
            "conv_tc_fwd_bnact_t128_nhwc_f16",
            "conv_tc_bwd_data_t128_nchw_f16",
            "conv_tc_bwd_data_t128_nhwc_f16",
            "conv_tc_bwd_filter_t128_nchw_f16",
            "conv_tc_bwd_filter_t128_nhwc_f16",
            "conv_tc_bwd_filter_bnact_t128_nchw_f16",
            "conv_tc_bwd_filter_bnact_t128_nhwc_f16",
            "conv_tc_fwd_t128_nchw_bf16",
            "conv_tc_fwd_t128_nhwc_bf16",
            "conv_tc_fwd_stats_t128_nchw_bf16",
            "conv_tc_fwd_stats_t128_nhwc_bf16",
            "conv_tc_fwd_bnact_t128_nchw_bf16",
            "conv_tc_fwd_bnact_t128_nhwc_bf16",
            "conv_tc_bwd_data_t128_nchw_bf16",
            "conv_tc_bwd_data_t128_nhwc_bf16",
            "conv_tc_bwd_filter_t128_nchw_bf16",
            "conv_tc_bwd_filter_t128_nhwc_bf16",
            "conv_tc_bwd_filter_bnact_t128_nchw_bf16",
            "conv_tc_bwd_filter_bnact_t128_nhwc_bf16",
        ],
    },
    Module {
        file: "conv.cu",
        source: include_str!("../cuda/conv.cu"),
        headers: &[OPERANDS, TILE_GEMM, CONV_OPERANDS],
        hot: &[
            "conv_fwd_t64_nchw_f32",
            "conv_fwd_t64_nhwc_f32",
            "conv_bwd_data_t64_nchw_f32",
            "conv_bwd_data_t64_nhwc_f32",
            "conv_bwd_filter_t64_nchw_f32",
            "conv_bwd_filter_t64_nhwc_f32",
            "conv_fwd_t64_nchw_f16",
            "conv_fwd_t64_nhwc_f16",
            "conv_bwd_data_t64_nchw_f16",
            "conv_bwd_data_t64_nhwc_f16",
            "conv_bwd_filter_t64_nchw_f16",
            "conv_bwd_filter_t64_nhwc_f16",
            "conv_fwd_t64_nchw_bf16",
            "conv_fwd_t64_nhwc_bf16",
            "conv_bwd_data_t64_nchw_bf16",
            "conv_bwd_data_t64_nhwc_bf16",
            "conv_bwd_filter_t64_nchw_bf16",
            "conv_bwd_filter_t64_nhwc_bf16",
            "conv_fwd_t128_nchw_f32",
            "conv_fwd_t128_nhwc_f32",
            "conv_bwd_data_t128_nchw_f32",
            "conv_bwd_data_t128_nhwc_f32",
            "conv_bwd_filter_t128_nchw_f32",
            "conv_bwd_filter_t128_nhwc_f32",
            "conv_fwd_t128_nchw_f16",
            "conv_fwd_t128_nhwc_f16",
            "conv_bwd_data_t128_nchw_f16",
            "conv_bwd_data_t128_nhwc_f16",
            "conv_bwd_filter_t128_nchw_f16",
            "conv_bwd_filter_t128_nhwc_f16",
            "conv_fwd_t128_nchw_bf16",
            "conv_fwd_t128_nhwc_bf16",
            "conv_bwd_data_t128_nchw_bf16",
            "conv_bwd_data_t128_nhwc_bf16",
            "conv_bwd_filter_t128_nchw_bf16",
            "conv_bwd_filter_t128_nhwc_bf16",
        ],
    },
];

/// The module in `file` (e.g. `"elementwise.cu"`).
pub fn module(file: &str) -> Result<&'static Module> {
    MODULES
        .iter()
        .find(|m| m.file == file)
        .ok_or_else(|| Error::UnknownModule(file.to_string()))
}

/// What one NVRTC run produced.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The PTX text (empty when compiling to SASS for the log only).
    pub ptx: String,
    /// NVRTC's log (ptxas statistics with `-Xptxas -v`).
    pub log: String,
}

impl Module {
    /// The text handed to NVRTC: the prelude, the shared headers, then the file, each with its
    /// own name and line numbers for NVRTC's messages.
    pub fn full_source(&self) -> String {
        let mut text = format!("{PRELUDE}\n");
        for (name, header) in self.headers {
            text += &format!("#line 1 \"{name}\"\n{header}\n");
        }
        text + &format!("#line 1 \"{}\"\n{}", self.file, self.source)
    }

    /// PTX for compute capability `arch` (e.g. 90), from the disk cache when present.
    pub fn ptx(&self, arch: u32) -> Result<String> {
        let options = vec![
            format!("--gpu-architecture=compute_{arch}"),
            "--std=c++17".to_string(),
        ];
        let key = fnv1a(&[
            self.full_source().as_bytes(),
            options.join(" ").as_bytes(),
            nvrtc_version()?.as_bytes(),
        ]);
        let path = cache_dir().map(|d| d.join(format!("{}-{arch}-{key:016x}.ptx", self.stem())));
        if let Some(ptx) = path.as_ref().and_then(|p| std::fs::read_to_string(p).ok()) {
            return Ok(ptx);
        }
        let ptx = self.compile(&options)?.ptx;
        if let Some(p) = path {
            // A cache that cannot be written is only slower.
            let _ = store_atomically(&p, &ptx);
        }
        Ok(ptx)
    }

    /// Compiles with exactly `options`, uncached, returning the PTX and NVRTC's log.
    pub fn compile(&self, options: &[String]) -> Result<Compiled> {
        // SAFETY: only tries to dlopen libnvrtc.
        if !unsafe { sys::is_culib_present() } {
            return Err(Error::NoNvrtc);
        }
        let src = CString::new(self.full_source()).map_err(|e| self.nvrtc_error(e))?;
        let name = CString::new(self.file).map_err(|e| self.nvrtc_error(e))?;
        let prog = nvrtc::create_program(&src, Some(&name)).map_err(|e| self.nvrtc_error(e))?;
        // SAFETY: `prog` was just created from `src` and `name`, which outlive it, and is
        // destroyed exactly once below.
        let outcome = unsafe { nvrtc::compile_program(prog, options) };
        // SAFETY: as above; the log exists whether or not the compile succeeded.
        let log = unsafe { nvrtc::get_program_log(prog) }
            .map(|raw| c_text(&raw))
            .unwrap_or_default();
        let wants_ptx = options.iter().any(|o| o.contains("compute_"));
        let ptx = match outcome {
            Err(_) => {
                // SAFETY: as above.
                let _ = unsafe { nvrtc::destroy_program(prog) };
                return Err(Error::Compile {
                    file: self.file.to_string(),
                    options: options.join(" "),
                    log,
                });
            }
            // SAFETY: as above; compiling succeeded, so the PTX is available.
            Ok(()) if wants_ptx => unsafe { nvrtc::get_ptx(prog) }.map(|raw| c_text(&raw)),
            Ok(()) => Ok(String::new()),
        };
        // SAFETY: as above.
        let _ = unsafe { nvrtc::destroy_program(prog) };
        Ok(Compiled {
            ptx: ptx.map_err(|e| self.nvrtc_error(e))?,
            log,
        })
    }

    fn stem(&self) -> &str {
        self.file.trim_end_matches(".cu")
    }

    fn nvrtc_error(&self, e: impl std::fmt::Debug) -> Error {
        Error::Nvrtc {
            file: self.file.to_string(),
            msg: format!("{e:?}"),
        }
    }
}

/// The loaded NVRTC's version, as "major.minor".
pub fn nvrtc_version() -> Result<String> {
    // SAFETY: only tries to dlopen libnvrtc.
    if !unsafe { sys::is_culib_present() } {
        return Err(Error::NoNvrtc);
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: both pointers are valid for writes.
    unsafe { sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| Error::Nvrtc {
            file: String::new(),
            msg: format!("nvrtcVersion: {e:?}"),
        })?;
    Ok(format!("{major}.{minor}"))
}

/// kiln's cache folder: `$KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`.
pub fn cache_root() -> Option<PathBuf> {
    std::env::var_os("KILN_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("kiln")))
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/kiln")))
}

/// `ptx` under [`cache_root`].
fn cache_dir() -> Option<PathBuf> {
    Some(cache_root()?.join("ptx"))
}

/// Writes `text` to `path` through a temporary file and a rename (creating the folder), so that
/// a reader never sees half a file.
pub fn store_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// 64-bit FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    parts
        .iter()
        .flat_map(|p| p.iter())
        .fold(0xcbf29ce484222325, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        })
}

fn c_text(raw: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = raw.iter().map(|&c| c as u8).collect();
    CStr::from_bytes_until_nul(&bytes)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned())
}
