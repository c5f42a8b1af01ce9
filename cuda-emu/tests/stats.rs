//! `KILN_EMU_STATS`: one JSON line per launch with instructions and memory traffic; also
//! measures the interpreter's speed on the tiled matmul.

mod common;

#[test]
fn counters_match_the_matmul_traffic() {
    let Some(gpu) = common::gpu() else { return };
    let path = std::env::temp_dir().join(format!("kiln-emu-stats-{}.jsonl", std::process::id()));
    // SAFETY: the only test in this binary; launches read the variable each time.
    unsafe { std::env::set_var("KILN_EMU_STATS", &path) };
    let (m, n, k) = (128, 128, 128);
    let (a, b) = (common::data(m * k, 3), common::data(k * n, 4));
    let c = common::matmul(&gpu, &a, &b, m, n, k);
    assert!(
        (c[0] as f64 - (0..k).map(|p| a[p] as f64 * b[p * n] as f64).sum::<f64>()).abs() < 1e-3
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let line = text.lines().last().expect("one stats line");
    let field = |name: &str| -> f64 {
        let at = line
            .find(&format!("\"{name}\":"))
            .unwrap_or_else(|| panic!("{name} in {line}"))
            + name.len()
            + 3;
        line[at..]
            .split([',', '}'])
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(line.contains("\"kernel\":\"matmul\""), "{line}");
    // Every block loads K/16 tiles of A and of B (16x16 f32 each) and stores its 16x16 tile of C.
    let tiles = (m / 16 * n / 16) as f64;
    assert_eq!(
        field("global_load_bytes"),
        tiles * (k / 16) as f64 * 2.0 * 1024.0,
        "{line}"
    );
    assert_eq!(field("global_store_bytes"), (m * n * 4) as f64, "{line}");
    assert_eq!(
        field("shared_store_bytes"),
        field("global_load_bytes"),
        "{line}"
    );
    let (insts, secs, cpu) = (
        field("instructions"),
        field("seconds"),
        field("cpu_seconds"),
    );
    println!(
        "matmul {m}x{n}x{k}: {insts} instructions in {secs:.3} s wall = {:.1} M instructions/s; \
         {cpu:.3} s of CPU = {:.1} M instructions per CPU-second",
        insts / secs / 1e6,
        insts / cpu / 1e6
    );
}
