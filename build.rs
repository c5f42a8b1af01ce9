//! With feature `libtorch`, records libtorch's folder as the binaries' run path, so the benches
//! find PyTorch's shared libraries without LD_LIBRARY_PATH. A no-op otherwise.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
