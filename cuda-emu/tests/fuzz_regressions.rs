//! PTX that crashed the emulator's module loader (the `ptx` fuzz target's crash inputs under
//! fuzz/regressions/ptx/, and cases built here): each load must fail with CUDA_ERROR_INVALID_PTX
//! (or load), never panic or abort.
use cuda::driver::context::{cuCtxSetCurrent, cuDevicePrimaryCtxRetain};
use cuda::driver::module::{cuModuleLoadData, cuModuleUnload};
use std::ffi::{c_void, CString};
use std::path::Path;

/// CUDA_ERROR_INVALID_PTX.
const INVALID_PTX: u32 = 218;

/// `cuModuleLoadData` on `text`; a loaded module is unloaded again.
fn load(text: &[u8]) -> u32 {
    let image = CString::new(text.split(|&b| b == 0).next().unwrap_or_default()).unwrap();
    // A module loads into the calling thread's current context: device 0's.
    let mut ctx: *mut c_void = std::ptr::null_mut();
    // SAFETY: `ctx` is a valid place for the handle.
    assert_eq!(unsafe { cuDevicePrimaryCtxRetain(&mut ctx, 0) }, 0);
    assert_eq!(cuCtxSetCurrent(ctx), 0);
    let mut module: *mut c_void = std::ptr::null_mut();
    // SAFETY: `module` is a valid place for the handle and `image` is NUL-terminated.
    let code = unsafe { cuModuleLoadData(&mut module, image.as_ptr().cast()) };
    if code == 0 {
        assert_eq!(cuModuleUnload(module), 0);
    }
    code
}

/// A module with one kernel whose body is `body`, after module-scope `decls`.
fn module(decls: &str, params: &str) -> String {
    format!(
        ".version 8.0\n.target sm_80\n.address_size 64\n{decls}\n\
         .visible .entry k({params})\n{{\n\tret;\n}}\n"
    )
}

#[test]
fn crash_inputs_are_refused_as_invalid_ptx() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/ptx");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let code = load(&std::fs::read(&path).unwrap());
        assert_eq!(code, INVALID_PTX, "{}", path.display());
        seen += 1;
    }
    assert!(seen > 0);
}

#[test]
fn deeply_nested_operand_lists_are_refused_without_recursing() {
    let depth = 200_000;
    let operand = format!("{}%r1{}", "{".repeat(depth), "}".repeat(depth));
    let text = with_body(&format!(".reg .b32 %r<2>;\n\tmov.b32 %r1, {operand};"));
    assert_eq!(load(text.as_bytes()), INVALID_PTX);
}

/// A module with one kernel whose body starts with `decls`.
fn with_body(decls: &str) -> String {
    format!(
        ".version 8.0\n.target sm_80\n.address_size 64\n\
         .visible .entry k()\n{{\n\t{decls}\n\tret;\n}}\n"
    )
}

#[test]
fn declarations_out_of_range_are_refused_as_invalid_ptx() {
    let cases = [
        (
            "a parameter without a state space",
            module("", ".align 8 .b8 p[8]"),
        ),
        (
            "an array size past u64",
            module(".global .b8 big[4294967296][4294967296];", ""),
        ),
        ("a negative array size", module(".global .b8 neg[-1];", "")),
        (
            "an alignment that is no power of two",
            module(".global .align 3 .b8 odd[4];", ""),
        ),
        (
            "an alignment past u32",
            module(".global .align 8589934592 .b8 wide[4];", ""),
        ),
        (
            "more than device memory",
            module(".global .b8 huge[68719476736];", ""),
        ),
        (
            "too much static shared memory",
            module(".shared .b8 s[134217728];", ""),
        ),
        (
            "kernel parameters past 32764 bytes",
            module("", ".param .b8 p[40000]"),
        ),
        ("a negative register count", with_body(".reg .f32 %f<-9>;")),
        (
            "more than 2^20 registers",
            with_body(".reg .f32 %f<1048577>;"),
        ),
        (
            "local memory past 512 KiB",
            with_body(".local .b8 l[1048576];"),
        ),
    ];
    for (what, ptx) in cases {
        assert_eq!(load(ptx.as_bytes()), INVALID_PTX, "{what}");
    }
    let fine = [
        module(".global .align 16 .b8 ok[1048576];", ".param .u64 p"),
        with_body(".reg .f32 %f<1000>;\n\t.local .b8 l[4096];\n\t.shared .b8 s[49152];"),
    ];
    for ptx in fine {
        assert_eq!(load(ptx.as_bytes()), 0, "{ptx}");
    }
}

#[test]
fn modules_from_nvrtc_still_load() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/ptx");
    let extra = std::env::var_os("KILN_PTX_DIR").map(std::path::PathBuf::from);
    let mut loaded = 0;
    for dir in std::iter::once(seeds).chain(extra) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(
                load(&std::fs::read(&path).unwrap()),
                0,
                "{}",
                path.display()
            );
            loaded += 1;
        }
    }
    assert!(loaded >= 2);
}
