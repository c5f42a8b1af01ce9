//! Device-side `printf`: the kernel's lines reach stdout, formatted as C would.

mod common;

use cudarc::driver::PushKernelArg;

const HELLO: &str = r#"
extern "C" __global__ void hello(float x, long long y) {
  if (threadIdx.x == 1) printf("t=%d x=%.3f y=%lld s=%s c=%c h=%04x\n", threadIdx.x, x, y, "str", 'q', 255u);
}
"#;

/// Launches the kernel; runs only as the child process of `printf_reaches_stdout`.
#[test]
fn printf_child() {
    if std::env::var_os("KILN_EMU_PRINTF_CHILD").is_none() {
        return;
    }
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(HELLO, "hello");
    let (x, y) = (2.5f32, -1234567890123i64);
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&x).arg(&y);
    // SAFETY: argument types match the kernel signature.
    unsafe { l.launch(common::one_block(4)) }.unwrap();
}

#[test]
fn printf_reaches_stdout() {
    if common::gpu().is_none() {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "printf_child", "--nocapture", "--test-threads=1"])
        .env("KILN_EMU_PRINTF_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("t=1 x=2.500 y=-1234567890123 s=str c=q h=00ff\n"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("t=").count(), 1, "{stdout}");
}
