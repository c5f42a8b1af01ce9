//! Every CUDA module compiles with NVRTC for sm_80 and sm_90, and hot kernels do not spill.

use kiln_kernels::registry::{nvrtc_version, Module, MODULES};
use kiln_kernels::Error;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// ptxas's verdict on one module for `sm_{arch}`: every spilling hot kernel, as a message.
fn hot_spills(m: &Module, arch: u32) -> Vec<String> {
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
    spilling_kernels(&out.log)
        .into_iter()
        .filter(|(kernel, _)| m.hot.contains(&kernel.as_str()))
        .map(|(kernel, line)| format!("{} sm_{arch}: hot kernel {kernel} spills: {line}", m.file))
        .collect()
}

#[test]
fn hot_kernels_do_not_spill_registers() {
    if nvrtc().is_none() {
        return;
    }
    // ptxas is single-threaded and this is the binary's longest test: the (module, arch) pairs
    // are shared out over the machine's cores.
    let jobs: Vec<(&Module, u32)> = MODULES
        .iter()
        .flat_map(|m| [80, 90].map(|arch| (m, arch)))
        .collect();
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let spills: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut found = Vec::new();
                    while let Some(&(m, arch)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                        found.extend(hot_spills(m, arch));
                    }
                    found
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    assert!(spills.is_empty(), "{}", spills.join("\n"));
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
