//! Global-memory traffic per kernel for one resnet18 training step on the CUDA backend, from the
//! emulator's counters: the figure kernel-fusion work is judged by. Run on kiln-cuda-emu:
//!
//! ```text
//! LD_LIBRARY_PATH=target/release:$(scripts/install-nvrtc.sh) \
//!     cargo run --release --example emu_traffic -- [batch] [size] [--channels-last]
//! ```

use kiln::engine::{manual_seed, DType, Device, Generator, MemoryFormat, Tensor};
use kiln::nn::{create_model, ModelArgs};
use std::collections::BTreeMap;

#[derive(Default)]
struct Row {
    launches: u64,
    load: u64,
    store: u64,
    instructions: u64,
}

fn field(line: &str, name: &str) -> u64 {
    let key = format!("\"{name}\":");
    line.split(&key)
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn kernel(line: &str) -> String {
    line.split("\"kernel\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("?")
        .to_string()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let channels_last = args.iter().any(|a| a == "--channels-last");
    let nums: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let (batch, size) = (
        nums.first().copied().unwrap_or(4),
        nums.get(1).copied().unwrap_or(32),
    );
    let gpu = Device::Cuda(0);
    kiln::engine::cuda::device(0)?;
    let stats = std::env::temp_dir().join(format!("kiln-emu-traffic-{}.jsonl", std::process::id()));
    std::env::set_var("KILN_EMU_STATS", &stats);

    manual_seed(0);
    let mut model = create_model(
        "resnet18",
        &ModelArgs {
            num_classes: 10,
            ..Default::default()
        },
    )?;
    if channels_last {
        model.set_memory_format(MemoryFormat::ChannelsLast)?;
    }
    model.to_device(gpu)?;
    let mut x = Generator::new(1).normal(&[batch, 3, size, size], 0.0, 1.0, DType::F32)?;
    if channels_last {
        x = x.to_memory_format(MemoryFormat::ChannelsLast)?;
    }
    let x = x.to_device(gpu)?;
    let y =
        Tensor::from_vec((0..batch as i64).map(|i| i % 10).collect(), &[batch])?.to_device(gpu)?;
    let dev = kiln::engine::cuda::device(0)?;
    dev.synchronize()?;
    let _ = std::fs::remove_file(&stats);
    let loss = model.forward(&x)?.cross_entropy(&y, 0.1)?;
    loss.backward()?;
    dev.synchronize()?;

    let text = std::fs::read_to_string(&stats)?;
    let _ = std::fs::remove_file(&stats);
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for line in text.lines() {
        let r = rows.entry(kernel(line)).or_default();
        r.launches += 1;
        r.load += field(line, "global_load_bytes");
        r.store += field(line, "global_store_bytes");
        r.instructions += field(line, "instructions");
    }
    let mut sorted: Vec<_> = rows.into_iter().collect();
    sorted.sort_by_key(|(_, r)| std::cmp::Reverse(r.load + r.store));
    let total: u64 = sorted.iter().map(|(_, r)| r.load + r.store).sum();
    let layout = if channels_last {
        "channels-last"
    } else {
        "NCHW"
    };
    println!(
        "resnet18 training step, batch {batch}, 3x{size}x{size}, f32, {layout}: loss {:.4}",
        loss.item()?
    );
    println!("| kernel | launches | global MB read | global MB written | share of traffic |");
    println!("|---|---:|---:|---:|---:|");
    let mb = |b: u64| b as f64 / 1e6;
    for (name, r) in &sorted {
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.1} % |",
            r.launches,
            mb(r.load),
            mb(r.store),
            100.0 * (r.load + r.store) as f64 / total.max(1) as f64
        );
    }
    let launches: u64 = sorted.iter().map(|(_, r)| r.launches).sum();
    println!("| **total** | {launches} | | | {:.2} MB |", mb(total));
    Ok(())
}
