//! A resnet18 training step on the CUDA backend (the emulator in CI) against the CPU backend:
//! same weights and batch, so the loss, every parameter gradient and the BatchNorm running
//! statistics must agree. Tolerances are relative to each tensor's largest magnitude: the
//! backends sum in different orders (tiled GEMMs vs the CPU's blocked ones), and that error grows
//! through 18 layers of the backward.

use kiln_engine::{DType, Device, Generator, MemoryFormat, Tensor};
use kiln_nn::{create_model, load_state_dict, state_dict, Model, ModelArgs};
use std::collections::BTreeMap;
use std::io::Write;

const LOSS_RTOL: f64 = 1e-4;
const GRAD_TOL: f64 = 2e-3;
const BUFFER_TOL: f64 = 1e-4;

struct Step {
    loss: f64,
    grads: BTreeMap<String, Vec<f32>>,
    buffers: BTreeMap<String, Vec<f32>>,
}

fn step(model: &dyn Model, device: Device, channels_last: bool) -> Step {
    let mut g = Generator::new(7);
    let mut x = g.normal(&[4, 3, 32, 32], 0.0, 1.0, DType::F32).unwrap();
    if channels_last {
        x = x.to_memory_format(MemoryFormat::ChannelsLast).unwrap();
    }
    let y = Tensor::from_vec(vec![3i64, 8, 0, 5], &[4]).unwrap();
    let loss = model
        .forward(&x.to_device(device).unwrap())
        .unwrap()
        .cross_entropy(&y.to_device(device).unwrap(), 0.1)
        .unwrap();
    loss.backward().unwrap();
    let mut grads = BTreeMap::new();
    let mut buffers = BTreeMap::new();
    for t in model.named_tensors() {
        if t.tensor.dtype() != DType::F32 {
            continue;
        }
        if let Some(gr) = t.tensor.grad() {
            assert_eq!(gr.device(), device, "{} grad left the device", t.name);
            grads.insert(t.name.clone(), gr.to_vec::<f32>().unwrap());
        } else if t.kind == kiln_nn::Kind::Buffer {
            buffers.insert(t.name.clone(), t.tensor.to_vec::<f32>().unwrap());
        }
    }
    Step {
        loss: loss.item().unwrap(),
        grads,
        buffers,
    }
}

fn close(name: &str, got: &[f32], want: &[f32], tol: f64) {
    let scale = want.iter().fold(1e-12f64, |m, &v| m.max(v.abs() as f64));
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        let err = (a as f64 - b as f64).abs() / scale;
        assert!(
            err <= tol,
            "{name}[{i}]: cuda {a}, cpu {b} ({err:.2e} of the largest value)"
        );
    }
}

#[test]
fn resnet18_step_matches_the_cpu() {
    if let Err(e) = kiln_engine::cuda::device(0) {
        let _ = writeln!(std::io::stderr(), "skipped: {e}");
        return;
    }
    let args = ModelArgs {
        num_classes: 10,
        ..Default::default()
    };
    for channels_last in [false, true] {
        kiln_engine::manual_seed(0);
        let mut cpu = create_model("resnet18", &args).unwrap();
        let mut gpu = create_model("resnet18", &args).unwrap();
        load_state_dict(gpu.as_ref(), &state_dict(cpu.as_ref()), true).unwrap();
        if channels_last {
            cpu.set_memory_format(MemoryFormat::ChannelsLast).unwrap();
            gpu.set_memory_format(MemoryFormat::ChannelsLast).unwrap();
        }
        gpu.to_device(Device::Cuda(0)).unwrap();
        let (a, b) = (
            step(gpu.as_ref(), Device::Cuda(0), channels_last),
            step(cpu.as_ref(), Device::Cpu, channels_last),
        );
        let what = if channels_last {
            "channels-last"
        } else {
            "NCHW"
        };
        assert!(
            (a.loss - b.loss).abs() <= LOSS_RTOL * b.loss.abs(),
            "{what} loss: cuda {}, cpu {}",
            a.loss,
            b.loss
        );
        assert_eq!(a.grads.len(), 62, "{what}: every parameter has a gradient");
        for (name, want) in &b.grads {
            close(
                &format!("{what} {name}.grad"),
                &a.grads[name],
                want,
                GRAD_TOL,
            );
        }
        for (name, want) in &b.buffers {
            close(
                &format!("{what} {name}"),
                &a.buffers[name],
                want,
                BUFFER_TOL,
            );
        }
    }
}
