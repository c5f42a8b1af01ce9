//! Every CUDA module compiles with NVRTC for sm_80 and sm_90, and hot kernels do not spill.

use kiln_kernels::registry::{nvrtc_version, MODULES};
use kiln_kernels::Error;

/// NVRTC's version, or `None` after printing why the test is skipped.
fn nvrtc() -> Option<String> {
    match nvrtc_version() {
        Ok(v) => Some(v),
        Err(Error::NoNvrtc) => {
            eprintln!("skipped: libnvrtc.so not found (scripts/test.sh installs it)");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn every_module_compiles_to_ptx_for_sm80_and_sm90() {
    let Some(version) = nvrtc() else { return };
    assert!(version.starts_with("13.0"), "NVRTC {version}, pinned 13.0");
    for m in MODULES {
        for arch in [80, 90] {
            let ptx = m.ptx(arch).unwrap_or_else(|e| panic!("{e}"));
            assert!(ptx.contains(".entry"), "{} has no kernels", m.file);
        }
    }
}

/// ptxas reports, per function, "Compiling entry function 'name'" then "N bytes spill stores".
fn spilling_kernels(log: &str) -> Vec<(String, String)> {
    let mut current = String::new();
    let mut spills = Vec::new();
    for line in log.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            current = rest.split('\'').next().unwrap_or_default().to_string();
        }
        if line.contains("spill stores") && !line.contains(" 0 bytes spill stores") {
            spills.push((current.clone(), line.trim().to_string()));
        }
    }
    spills
}

#[test]
fn hot_kernels_do_not_spill_registers() {
    if nvrtc().is_none() {
        return;
    }
    for m in MODULES {
        for arch in [80, 90] {
            let options = vec![
                format!("--gpu-architecture=sm_{arch}"),
                "--std=c++17".to_string(),
                "-Xptxas".to_string(),
                "-v".to_string(),
            ];
            let out = m.compile(&options).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                out.log.contains("Compiling entry function"),
                "{} sm_{arch}: no ptxas statistics in the log:\n{}",
                m.file,
                out.log
            );
            for (kernel, line) in spilling_kernels(&out.log) {
                assert!(
                    !m.hot.contains(&kernel.as_str()),
                    "{} sm_{arch}: hot kernel {kernel} spills: {line}",
                    m.file
                );
            }
        }
    }
}

#[test]
fn compile_errors_name_the_file_and_carry_the_log() {
    if nvrtc().is_none() {
        return;
    }
    let broken = kiln_kernels::registry::Module {
        file: "broken.cu",
        source: "extern \"C\" __global__ void k() { undefined_name = 1; }",
        headers: &[],
        hot: &[],
    };
    let err = broken
        .compile(&["--gpu-architecture=compute_90".into()])
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("kernels/cuda/broken.cu"), "{text}");
    assert!(text.contains("undefined_name"), "{text}");
}
