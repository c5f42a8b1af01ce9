//! What the CPU (`mod.rs`) and GPU (`cuda.rs`) libtorch twins share: the channels-last layout,
//! torchvision's resnets in it, and Nesterov SGD.

use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Tensor};

/// `t` laid out channels-last (strides N, 1, W·C, C) as `.to(memory_format=torch.channels_last)`
/// gives; tch has no memory-format argument, but libtorch picks the format from the strides.
pub fn channels_last(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// torchvision's `name` (resnet18, else resnet50; timm's architecture at default args) on
/// `device` with every 4-d weight channels-last, and the store that owns its variables.
pub fn resnet_channels_last(name: &str, device: Device) -> (nn::VarStore, Box<dyn ModuleT>) {
    let vs = nn::VarStore::new(device);
    let model: Box<dyn ModuleT> = match name {
        "resnet18" => Box::new(tch::vision::resnet::resnet18(&vs.root(), 1000)),
        _ => Box::new(tch::vision::resnet::resnet50(&vs.root(), 1000)),
    };
    tch::no_grad(|| {
        for (_, mut v) in vs.variables() {
            if v.dim() == 4 {
                let nhwc = channels_last(&v);
                v.set_data(&nhwc);
            }
        }
    });
    (vs, model)
}

/// Nesterov SGD over `vs` (momentum 0.9, lr 0.1) with weight decay `wd`.
pub fn sgd(vs: &nn::VarStore, wd: f64) -> nn::Optimizer {
    nn::Sgd {
        momentum: 0.9,
        dampening: 0.0,
        wd,
        nesterov: true,
    }
    .build(vs, 0.1)
    .expect("libtorch SGD")
}
