//! The model side of `train.py`'s flags: `--model-kwargs` applied to `ModelArgs`, and the settings
//! applied after creation (`--bn-momentum`, `--bn-eps`, `--head-init-scale`, `--head-init-bias`,
//! `--drop-block`).

use super::args::TrainArgs;
use kiln_nn::{init_head, set_batch_norm, Model, ModelArgs};
use kiln_train::{Error, Result};

/// Applies `--model-kwargs key=value ...` to `args`: the keys `ModelArgs` knows, with values as
/// timm's `ParseKwargs` reads them (Python literals: `True`, `0.1`, `'avg'`); other keys are the
/// model's own (`ModelArgs::kwargs`), which its family takes or refuses, naming those it takes.
pub fn apply_model_kwargs(args: &mut ModelArgs, kwargs: &[String]) -> Result<()> {
    for kv in kwargs {
        let (key, raw) = kv
            .split_once('=')
            .ok_or_else(|| Error::flag("--model-kwargs", format!("'{kv}' is not key=value")))?;
        let value = raw.trim_matches(|c| c == '\'' || c == '"');
        let bad =
            |what: &str| Error::flag("--model-kwargs", format!("{key}: '{raw}' is not {what}"));
        match key {
            "num_classes" => args.num_classes = value.parse().map_err(|_| bad("a count"))?,
            "in_chans" => args.in_chans = value.parse().map_err(|_| bad("a count"))?,
            "global_pool" => args.global_pool = Some(value.to_string()),
            "img_size" => args.img_size = Some(value.parse().map_err(|_| bad("a size"))?),
            "drop_rate" => args.drop_rate = value.parse().map_err(|_| bad("a number"))?,
            "drop_path_rate" => {
                args.drop_path_rate = Some(value.parse().map_err(|_| bad("a number"))?)
            }
            "zero_init_last" => {
                args.zero_init_last = match value {
                    "True" | "true" | "1" => true,
                    "False" | "false" | "0" => false,
                    _ => return Err(bad("True or False")),
                }
            }
            // The model's own arguments, checked by its family when it is built.
            _ => args.kwargs.push((key.to_string(), raw.to_string())),
        }
    }
    Ok(())
}

/// What `train.py` does to a model right after `create_model`: BN momentum and eps on every
/// BatchNorm, then the classifier scaled and its bias set; `--drop-block` places DropBlock
/// (timm passes it to the model's constructor as `drop_block_rate`; it holds no parameters);
/// `--grad-checkpointing` calls `set_grad_checkpointing(true)`.
pub fn apply_after_creation(model: &mut dyn Model, a: &TrainArgs) -> Result<()> {
    if a.bn_momentum.is_some() || a.bn_eps.is_some() {
        set_batch_norm(model, a.bn_momentum, a.bn_eps);
    }
    init_head(model, a.head_init_scale, a.head_init_bias)?;
    if let Some(rate) = a.drop_block.filter(|r| *r > 0.0) {
        model
            .set_drop_block(rate)
            .map_err(|e| Error::flag("--drop-block", e.to_string()))?;
    }
    if a.grad_checkpointing {
        model
            .set_grad_checkpointing(true)
            .map_err(|e| Error::flag("--grad-checkpointing", e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kwargs(list: &[&str]) -> Result<ModelArgs> {
        let mut args = ModelArgs::default();
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        apply_model_kwargs(&mut args, &list).map(|_| args)
    }

    #[test]
    fn model_kwargs_set_known_keys_as_python_literals() {
        let args = kwargs(&[
            "zero_init_last=False",
            "drop_path_rate=0.05",
            "global_pool='max'",
        ])
        .unwrap();
        assert!(!args.zero_init_last);
        assert_eq!(args.drop_path_rate, Some(0.05));
        assert_eq!(args.global_pool.as_deref(), Some("max"));
    }

    #[test]
    fn model_kwargs_pass_the_models_own_keys_on_and_refuse_bad_pairs() {
        let args = kwargs(&["stem_width=32", "depths=(2, 2)"]).unwrap();
        let own = [("stem_width", "32"), ("depths", "(2, 2)")];
        let own: Vec<(String, String)> = (own.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(args.kwargs, own, "the model's family checks them");
        let e = kwargs(&["drop_rate"]).unwrap_err().to_string();
        assert!(e.starts_with("--model-kwargs: "), "{e}");
        assert!(kwargs(&["zero_init_last=maybe"]).is_err());
    }

    #[test]
    fn grad_checkpointing_reaches_the_model() {
        let mut model = kiln_nn::create_model("resnet18", &ModelArgs::default()).unwrap();
        let a = TrainArgs {
            grad_checkpointing: true,
            ..TrainArgs::default()
        };
        assert!(!model.grad_checkpointing());
        apply_after_creation(model.as_mut(), &a).unwrap();
        assert!(model.grad_checkpointing());
    }

    #[test]
    fn drop_block_reaches_the_model_and_bad_rates_name_the_flag() {
        let mut model = kiln_nn::create_model("resnet18", &ModelArgs::default()).unwrap();
        let mut a = TrainArgs {
            drop_block: Some(0.1),
            ..TrainArgs::default()
        };
        apply_after_creation(model.as_mut(), &a).unwrap();
        a.drop_block = Some(1.5);
        let e = apply_after_creation(model.as_mut(), &a)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--drop-block"), "{e}");
    }
}
