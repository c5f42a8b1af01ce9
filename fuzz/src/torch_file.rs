//! Files `torch.save` wrote (timm's `.pth.tar`, `.pth` state dicts): `Checkpoint::load` (zip or
//! legacy format, the pickle machine, storages and strided views, timm's checkpoint dict), then
//! what `--resume` does with it: the model's state dict into a small model (strict and not) and
//! torch's optimizer state mapped onto AdamW's and SGD's.
use kiln_nn::layers::{BatchNorm2d, Linear, Sequential};
use kiln_nn::{load_state_dict, Module};
use kiln_train::checkpoint::{torch_optimizer_state, Checkpoint};
use kiln_train::optim::{create_optimizer, OptimizerConfig};

/// Reads `data` as a torch file and restores what it holds into a small model.
pub fn run(data: &[u8]) {
    let path = crate::scratch::write("fuzz.pth", data);
    let Ok(ck) = Checkpoint::load(&path) else {
        return;
    };
    let Ok(model) = model() else { return };
    for strict in [true, false] {
        let _ = load_state_dict(&model, &ck.model, strict);
    }
    let Some(torch) = &ck.torch_optimizer else {
        return;
    };
    for opt in ["adamw", "sgd"] {
        let args = OptimizerConfig {
            opt: opt.into(),
            weight_decay: 0.05,
            ..OptimizerConfig::default()
        };
        if let Ok(mut o) = create_optimizer(&args, model.named_parameters()) {
            if let Ok((state, _)) = torch_optimizer_state(torch, o.as_mut()) {
                let _ = o.load_state_dict(&state);
            }
        }
    }
}

/// The model the optimizer seeds were written for: Linear(4, 3), then BatchNorm(3).
fn model() -> kiln_nn::Result<Sequential> {
    Ok(Sequential::new()
        .push(Linear::new(4, 3, true)?)
        .push(BatchNorm2d::new(3)?))
}
