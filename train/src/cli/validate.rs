//! `kiln validate`: evaluates a checkpoint, as timm's `validate.py`.

use super::args::ValidateArgs;
use super::setup::{embedded_data, layout, open_device, DataRoot};
use crate::checkpoint::Checkpoint;
use crate::loader::DataConfig;
use crate::trainer::{validate as run_validation, BatchStages};
use crate::{Error, Result};
use kiln_nn::{create_model, load_state_dict, ModelArgs};

/// Runs `kiln validate` and prints timm's result line.
pub fn validate(a: ValidateArgs) -> Result<()> {
    let dir = a.data.clone().unwrap_or_else(embedded_data);
    let root = DataRoot::detect(&dir)?;
    let in_chans = a.in_chans.unwrap_or(if root.is_idx() { 1 } else { 3 });
    let ds = root.open(&a.split, false, in_chans, None)?;
    let ck = Checkpoint::load(&a.checkpoint)?;
    let arch = a
        .model
        .clone()
        .or_else(|| (!ck.meta.arch.is_empty()).then(|| ck.meta.arch.clone()));
    let arch = arch.ok_or_else(|| Error::Flag {
        flag: "--model".into(),
        msg: format!(
            "{} does not name its model; pass --model",
            a.checkpoint.display()
        ),
    })?;
    let num_classes = a.num_classes.unwrap_or(ds.num_classes());
    let mut model = create_model(
        &arch,
        &ModelArgs {
            num_classes,
            in_chans,
            ..Default::default()
        },
    )?;
    load_state_dict(model.as_ref(), &ck.model, true)?;
    if a.channels_last {
        model.set_memory_format(kiln_engine::MemoryFormat::ChannelsLast)?;
    }
    let device = open_device(&a.device)?;
    model.to_device(device)?;
    let img_size = a.img_size.unwrap_or(if root.is_idx() {
        ds.load(0)?.image.h
    } else {
        model.pretrained_cfg().input_size[1]
    });
    let crop_pct = a.crop_pct.or(if root.is_idx() {
        Some(1.0)
    } else {
        Some(model.pretrained_cfg().crop_pct)
    });
    let cfg = DataConfig {
        img_size,
        in_chans,
        workers: a.workers,
        crop_pct,
        ..DataConfig::default()
    };
    let mut loader = cfg.eval_loader(ds.clone(), a.batch_size, 0, 1)?;
    let stages = BatchStages {
        normalize: cfg.normalize(layout(a.channels_last)),
        erasing: None,
        mixup: None,
        smoothing: 0.0,
        seed: 0,
        device,
    };
    let r = run_validation(model.as_mut(), &mut loader, &stages, a.log_interval, None)?;
    println!(
        " * Acc@1 {:.3} ({:.3}) Acc@5 {:.3} ({:.3})",
        r.top1,
        100.0 - r.top1,
        r.top5,
        100.0 - r.top5
    );
    println!("--result\n{{\"model\": \"{arch}\", \"top1\": {:.3}, \"top5\": {:.3}, \"loss\": {:.4}, \"img_size\": {img_size}, \"samples\": {}, \"skipped\": {}}}", r.top1, r.top5, r.loss, r.samples, r.skipped);
    Ok(())
}
