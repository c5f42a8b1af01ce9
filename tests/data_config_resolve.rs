//! `resolve_data_config` (kiln-train's loader) against timm's `resolve_data_config` on the same
//! models and data flags, with and without the test size: input size, interpolation, mean, std,
//! crop fraction and crop mode in timm's precedence (scripts/fixtures/make_data_config_fixtures.py).

use kiln::nn::{create_model, ModelArgs, PretrainedCfg};
use kiln::train::loader::{resolve_data_config, DataFlags};
use serde_json::Value;
use std::collections::HashMap;

const CASES: &str = include_str!("fixtures/timm_data_config.json");

fn usizes(v: &Value) -> Option<Vec<usize>> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_u64().unwrap() as usize).collect())
}

fn floats(v: &Value) -> Option<Vec<f64>> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_f64().unwrap()).collect())
}

fn flags(args: &Value) -> DataFlags {
    let f32s = |v: &Value| floats(v).map(|v| v.iter().map(|&x| x as f32).collect());
    DataFlags {
        input_size: usizes(&args["input_size"]).map(|s| [s[0], s[1], s[2]]),
        img_size: args["img_size"].as_u64().map(|s| s as usize),
        in_chans: args["in_chans"].as_u64().map(|s| s as usize),
        interpolation: args["interpolation"].as_str().unwrap().to_string(),
        mean: f32s(&args["mean"]),
        std: f32s(&args["std"]),
        crop_pct: args["crop_pct"].as_f64(),
        crop_mode: args["crop_mode"].as_str().map(String::from),
    }
}

/// Where kiln's pretrained config of a model differs from timm's.
fn cfg_differences(kiln: &PretrainedCfg, timm: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |what: &str, same: bool| {
        if !same {
            out.push(format!("{what}: timm {}", timm[what]));
        }
    };
    check(
        "input_size",
        usizes(&timm["input_size"]) == Some(kiln.input_size.to_vec()),
    );
    check(
        "test_input_size",
        usizes(&timm["test_input_size"]) == kiln.test_input_size.map(|s| s.to_vec()),
    );
    check("crop_pct", timm["crop_pct"].as_f64() == Some(kiln.crop_pct));
    check(
        "test_crop_pct",
        timm["test_crop_pct"].as_f64() == kiln.test_crop_pct,
    );
    check(
        "interpolation",
        timm["interpolation"].as_str() == Some(&kiln.interpolation),
    );
    // timm's cfgs leave the mode out (None) where it is the default, center.
    check(
        "crop_mode",
        timm["crop_mode"].as_str().unwrap_or("center") == kiln.crop_mode,
    );
    check("mean", floats(&timm["mean"]) == Some(kiln.mean.to_vec()));
    check("std", floats(&timm["std"]) == Some(kiln.std.to_vec()));
    out
}

#[test]
fn resolves_as_timm_does() {
    let cases: Vec<Value> = serde_json::from_str(CASES).unwrap();
    assert!(cases.len() > 100);
    let mut failures = Vec::new();
    let mut cfgs: HashMap<&str, PretrainedCfg> = HashMap::new();
    for case in &cases {
        let name = case["model"].as_str().unwrap();
        let cfg = cfgs.entry(name).or_insert_with(|| {
            let model = create_model(name, &ModelArgs::default()).unwrap();
            let cfg = model.pretrained_cfg().clone();
            for d in cfg_differences(&cfg, &case["pretrained_cfg"]) {
                failures.push(format!("{name}'s pretrained cfg: {d}"));
            }
            cfg
        });
        let flags = flags(&case["args"]);
        let use_test_size = case["use_test_size"].as_bool().unwrap();
        let what = format!("{name} {flags:?} use_test_size={use_test_size}");
        let got = resolve_data_config(&flags, cfg, use_test_size);
        let (want, got) = match (&case["config"], got) {
            (Value::Null, Err(_)) => continue,
            (Value::Null, Ok(r)) => {
                failures.push(format!("{what}: timm's assertion fails, kiln gives {r:?}"));
                continue;
            }
            (_, Err(e)) => {
                failures.push(format!("{what}: kiln fails: {e}"));
                continue;
            }
            (want, Ok(got)) => (want, got),
        };
        let size = usizes(&want["input_size"]).unwrap();
        // kiln's one difference: the channels come from the flags (or 3), never from the cfg's
        // input size, which timm takes when no size flag is given.
        let sized_by_flags = flags.input_size.is_some() || flags.img_size.is_some();
        let chans = if sized_by_flags {
            size[0]
        } else {
            flags.in_chans.unwrap_or(3)
        };
        // For one channel kiln averages the cfg's three values (in f32); flags are taken as given.
        let per_channel = |values: Vec<f64>| -> Vec<f32> {
            let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            if values.len() == 3 && chans == 1 {
                vec![values.iter().sum::<f32>() / 3.0]
            } else {
                values
            }
        };
        let checks = [
            ("in_chans", got.in_chans == chans),
            ("size", [got.img_size; 2] == [size[1], size[2]]),
            (
                "interpolation",
                want["interpolation"] == got.interpolation.as_str(),
            ),
            (
                "mean",
                per_channel(floats(&want["mean"]).unwrap()) == got.mean,
            ),
            ("std", per_channel(floats(&want["std"]).unwrap()) == got.std),
            ("crop_pct", want["crop_pct"].as_f64() == Some(got.crop_pct)),
            ("crop_mode", want["crop_mode"] == got.crop_mode.as_str()),
        ];
        for (field, ok) in checks {
            if !ok {
                failures.push(format!("{what}: {field}: timm {want}, kiln {got:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
