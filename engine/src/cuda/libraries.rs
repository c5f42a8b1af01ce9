//! Which libraries serve a device, for the line a run starts with, and the one warning a user
//! gets when a real GPU runs without cuBLAS or cuDNN (kiln's own kernels then serve, several
//! times slower: BENCHMARKS.md, "CUDA on an H200").

use super::{cublas_enabled, cublas_loaded, cudnn_enabled, cudnn_graph_loaded, cudnn_loaded};
use super::{cudnn_graph_enabled, CudaDevice};
use crate::Result;

/// The name kiln-cuda-emu gives its device (`cuDeviceGetName`).
const EMULATOR_NAME: &str = "kiln CUDA emulator";

impl CudaDevice {
    /// Whether this is kiln's CUDA emulator (a CPU libcuda for tests), not a GPU.
    pub fn is_emulated(&self) -> bool {
        self.name().starts_with(EMULATOR_NAME)
    }
}

/// What serves `dev`'s matrix products and convolutions: "cuBLAS, cuDNN (graph API)", or kiln's
/// own kernels where a library is switched off or did not load.
pub fn libraries_serving(dev: &CudaDevice) -> String {
    let (cublas, cudnn) = loaded(dev);
    serving(
        cublas,
        cudnn,
        cudnn_graph_enabled() && cudnn_graph_loaded(dev).is_ok(),
    )
}

/// Whether cuBLAS and cuDNN loaded on `dev` (Err says why not); None where switched off.
fn loaded(dev: &CudaDevice) -> (Option<Result<()>>, Option<Result<()>>) {
    (
        cublas_enabled().then(|| cublas_loaded(dev)),
        cudnn_enabled().then(|| cudnn_loaded(dev)),
    )
}

fn serving(cublas: Option<Result<()>>, cudnn: Option<Result<()>>, graph: bool) -> String {
    let gemm = match cublas {
        Some(Ok(())) => "cuBLAS",
        _ => "kiln's GEMM kernels",
    };
    let conv = match (cudnn, graph) {
        (Some(Ok(())), true) => "cuDNN (graph API)",
        (Some(Ok(())), false) => "cuDNN (legacy API)",
        _ => "kiln's convolution kernels",
    };
    format!("matrix products on {gemm}, convolutions on {conv}")
}

/// On a GPU where cuBLAS or cuDNN is switched on but did not load, the warning to print once:
/// what did not load and why, what it costs, and the command that installs them. None on the
/// emulator, where they cannot load, and where both serve or were switched off.
pub fn missing_libraries_warning(dev: &CudaDevice) -> Option<String> {
    if dev.is_emulated() {
        return None;
    }
    let (cublas, cudnn) = loaded(dev);
    missing(cublas, cudnn)
}

fn missing(cublas: Option<Result<()>>, cudnn: Option<Result<()>>) -> Option<String> {
    let why: Vec<String> = [cublas, cudnn]
        .into_iter()
        .flatten()
        .filter_map(|r| r.err().map(|e| e.to_string()))
        .collect();
    (!why.is_empty()).then(|| {
        format!(
            "kiln: {}. kiln's own kernels serve instead, about 5x slower for convolutional \
             training (resnet50 AMP at batch 64 on an H200: 983 against 4797 img/s). \
             scripts/install-cuda-libs.sh installs cuBLAS and cuDNN from NVIDIA's wheels and \
             prints the LD_LIBRARY_PATH to use (KILN_CUBLAS=0 KILN_CUDNN=0 silences this).",
            why.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn gone(what: &str) -> Option<Result<()>> {
        Some(Err(Error::Cuda(format!(
            "{what} is not available: not found"
        ))))
    }

    #[test]
    fn the_serving_line_names_each_library_or_kilns_kernels() {
        assert_eq!(
            serving(Some(Ok(())), Some(Ok(())), true),
            "matrix products on cuBLAS, convolutions on cuDNN (graph API)"
        );
        assert_eq!(
            serving(None, gone("cuDNN"), true),
            "matrix products on kiln's GEMM kernels, convolutions on kiln's convolution kernels"
        );
        assert_eq!(
            serving(Some(Ok(())), Some(Ok(())), false),
            "matrix products on cuBLAS, convolutions on cuDNN (legacy API)"
        );
    }

    #[test]
    fn a_missing_library_is_named_with_its_cost_and_the_fix() {
        assert_eq!(missing(Some(Ok(())), Some(Ok(()))), None);
        assert_eq!(missing(None, None), None, "switched off: nothing to say");
        let w = missing(Some(Ok(())), gone("cuDNN")).unwrap();
        assert!(w.contains("cuDNN is not available: not found"), "{w}");
        assert!(w.contains("scripts/install-cuda-libs.sh"), "{w}");
        assert!(w.contains("5x slower"), "{w}");
        let both = missing(gone("cuBLAS"), gone("cuDNN")).unwrap();
        assert!(
            both.contains("cuBLAS is not available") && both.contains("cuDNN is not available"),
            "{both}"
        );
    }
}
