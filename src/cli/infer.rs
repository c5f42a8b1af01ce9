//! `kiln infer`: the top-k classes of every image in a folder, as timm's `inference.py`, on
//! `kiln validate`'s model, data and loader.

use super::data_source::is_stream_or_cache;
use super::infer_args::InferArgs;
use super::model_record::recorded_multi_label;
use super::setup::DataRoot;
use super::unsupported::{check_supported, VALIDATE_REFUSED};
use super::validate::{prepare, Prepared};
use kiln_engine::Tensor;
use kiln_train::data::{load_class_map, Dataset, Source};
use kiln_train::trainer::{validate_observed, EvalOptions};
use kiln_train::{Error, Result};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// One image's result: its file, its top-k class indices and their outputs (every class's
/// output, no indices, with `--topk 0`).
struct Prediction {
    file: String,
    indices: Vec<usize>,
    outputs: Vec<f32>,
}

/// Runs `kiln infer`: predicts every image of the split and writes inference.py's results files.
pub fn infer(a: InferArgs) -> Result<()> {
    let mut va = a.eval_args();
    check_supported(&va, VALIDATE_REFUSED)?;
    check_flags(&a)?;
    kiln_engine::cpu::threads::compute_on_calling_thread();
    kiln_engine::manual_seed(va.seed);
    // inference.py: --model defaults to resnet50, pretrained unless a checkpoint is given.
    if va.eval.model.is_none() && a.checkpoint.is_none() {
        va.eval.model = Some("resnet50".into());
    }
    // inference.py's create_dataset: without the split's folder, the folder itself (its images
    // at any depth).
    let dir = va.eval.source.root();
    if !DataRoot::detect(&dir)?.has_eval_split(&va.eval.split) {
        println!(
            "No '{}' split in {}: reading the folder itself",
            va.eval.split,
            dir.display()
        );
        va.eval.split = String::new();
    }
    let (amp, dtype) = a.eval.precision()?;
    let Prepared {
        mut model,
        arch,
        source,
        mut loader,
        stages,
        img_size,
        ..
    } = prepare(&va, a.checkpoint.as_deref(), dtype)?;
    let Source::Indexed(dataset) = source else {
        return Err(not_a_folder());
    };
    let classes = model.num_classes();
    let multi_label =
        a.eval.multi_label.multi_label || recorded_multi_label(a.checkpoint.as_deref());
    if multi_label {
        println!(
            "Multi-label: every class with probability from {} (--multi-label-thresh)",
            a.eval.multi_label.multi_label_thresh
        );
    }
    if multi_label && a.results_separate_col {
        return Err(Error::flag(
            "--results-separate-col",
            "multi-label results list a varying number of classes per image: one list cell each",
        ));
    }
    if a.topk > classes {
        let msg = format!("{} is more than the model's {classes} classes", a.topk);
        return Err(Error::flag("--topk", msg));
    }
    let labels = label_names(&a)?;
    let opts = EvalOptions {
        log_interval: a.log_freq,
        amp,
        ..EvalOptions::default()
    };
    let mut preds = Vec::with_capacity(dataset.len());
    validate_observed(
        model.as_mut(),
        &mut loader,
        &stages,
        &opts,
        &mut |logits, _, files| {
            preds.extend(match multi_label {
                true => predict_multi_label(logits, files, &a)?,
                false => predict(logits, files, &a)?,
            });
            Ok(())
        },
    )?;
    check_all_read(dataset.as_ref(), &preds)?;
    let columns = columns(&a, &preds, labels.as_deref(), multi_label);
    let stem = results_stem(&a, &arch, img_size)?;
    for format in &a.results_format {
        let (ext, text) = match format.as_str() {
            "csv" => ("csv", csv(&columns)),
            "json" => ("json", pretty(&by_file(&columns))?),
            _ => ("json", pretty(&split(&columns))?),
        };
        let path = PathBuf::from(format!("{}.{ext}", stem.display()));
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        println!("Wrote {}", path.display());
    }
    if !a.no_console_results {
        println!("--result\n{}", pretty(&by_file(&columns))?);
    }
    Ok(())
}

/// Refuses the values inference.py cannot use, naming the flag.
/// kiln infer names each prediction by its image file: it reads image folders.
fn not_a_folder() -> Error {
    Error::flag(
        "--dataset",
        "kiln infer reads image folders (each prediction named by its file); evaluate wds/ \
         shards and hfds/ datasets with kiln validate",
    )
}

fn check_flags(a: &InferArgs) -> Result<()> {
    if is_stream_or_cache(&a.eval.source.dataset) {
        return Err(not_a_folder());
    }
    for f in &a.results_format {
        match f.as_str() {
            "csv" | "json" | "json-split" => {}
            "parquet" => {
                return Err(Error::flag(
                    "--results-format",
                    "parquet needs an Arrow writer, which kiln does not carry; use csv or json",
                ))
            }
            _ => {
                let msg = format!("'{f}' is not csv, json, json-split or parquet");
                return Err(Error::flag("--results-format", msg));
            }
        }
    }
    if !matches!(a.output_type.as_str(), "prob" | "logit") {
        let msg = format!("'{}' is not prob or logit", a.output_type);
        return Err(Error::flag("--output-type", msg));
    }
    if !matches!(
        a.label_type.as_str(),
        "none" | "name" | "description" | "detail" | "detailed"
    ) {
        let msg = format!(
            "'{}' is not none, name, description, detail or detailed",
            a.label_type
        );
        return Err(Error::flag("--label-type", msg));
    }
    if a.exclude_output && a.topk == 0 {
        return Err(Error::flag(
            "--exclude-output",
            "needs --topk above 0 (the indices are all that is left)",
        ));
    }
    Ok(())
}

/// The class names labelling the predictions: the class map's, by index (inference.py's labels
/// come from the model's `label_names` or ImageNet's tables, which kiln's models do not carry).
fn label_names(a: &InferArgs) -> Result<Option<Vec<String>>> {
    if a.label_type == "none" {
        return Ok(None);
    }
    let Some(path) = &a.eval.class_map else {
        println!("No class names (--class-map), no labelling will be performed.");
        return Ok(None);
    };
    let map = load_class_map(path)?;
    let mut names = vec![String::new(); map.len()];
    for (name, &i) in &map {
        names[i] = name.clone();
    }
    Ok(Some(names))
}

/// The file name as the results show it: whole with `--fullname`, else its base name.
fn shown_name(f: &str, a: &InferArgs) -> String {
    match a.fullname {
        true => f.to_string(),
        false => Path::new(f)
            .file_name()
            .map_or(f.to_string(), |n| n.to_string_lossy().into_owned()),
    }
}

/// One batch's multi-label predictions: per image every class whose probability (sigmoid)
/// reaches `--multi-label-thresh`, most probable first, with its probability (or logit); with
/// `--topk 0` every class's output, no indices.
fn predict_multi_label(
    logits: &Tensor,
    files: &[String],
    a: &InferArgs,
) -> Result<Vec<Prediction>> {
    let classes = logits.shape()[1].max(1);
    let values = logits.to_vec_f32()?;
    let thresh = a.eval.multi_label.multi_label_thresh;
    let preds = files.iter().zip(values.chunks(classes)).map(|(f, row)| {
        let prob = |x: f32| 1.0 / (1.0 + (-x).exp());
        let output = |x: f32| match a.output_type.as_str() {
            "prob" => prob(x),
            _ => x,
        };
        let mut indices: Vec<usize> = match a.topk {
            0 => Vec::new(),
            _ => (0..row.len())
                .filter(|&c| f64::from(prob(row[c])) >= thresh)
                .collect(),
        };
        indices.sort_by(|&i, &j| row[j].total_cmp(&row[i]));
        let outputs = match a.topk {
            0 => row.iter().map(|&x| output(x)).collect(),
            _ => indices.iter().map(|&c| output(row[c])).collect(),
        };
        Prediction {
            file: shown_name(f, a),
            indices,
            outputs,
        }
    });
    Ok(preds.collect())
}

/// One batch's predictions: softmax (or logits), then the top k.
fn predict(logits: &Tensor, files: &[String], a: &InferArgs) -> Result<Vec<Prediction>> {
    let out = match a.output_type.as_str() {
        "prob" => logits.softmax(-1)?,
        _ => logits.clone(),
    };
    let classes = out.shape()[1];
    let values = out.to_vec::<f32>()?;
    let preds = files.iter().zip(values.chunks(classes)).map(|(f, row)| {
        let file = shown_name(f, a);
        if a.topk == 0 {
            let outputs = row.to_vec();
            return Prediction {
                file,
                indices: Vec::new(),
                outputs,
            };
        }
        let mut order: Vec<usize> = (0..classes).collect();
        order.sort_by(|&i, &j| row[j].total_cmp(&row[i]));
        order.truncate(a.topk);
        let outputs = order.iter().map(|&i| row[i]).collect();
        Prediction {
            file,
            indices: order,
            outputs,
        }
    });
    Ok(preds.collect())
}

/// An unreadable image, which the loader skipped, as the error that names it.
fn check_all_read(dataset: &dyn Dataset, preds: &[Prediction]) -> Result<()> {
    if preds.len() == dataset.len() {
        return Ok(());
    }
    let read: HashSet<&str> = preds.iter().map(|p| p.file.as_str()).collect();
    let unread = (0..dataset.len()).find(|&i| {
        let name = dataset.filename(i);
        let base = Path::new(&name).file_name().map(|n| n.to_string_lossy());
        !read.contains(name.as_str()) && !base.is_some_and(|b| read.contains(b.as_ref()))
    });
    match unread {
        Some(i) => {
            dataset.load(i)?;
            Err(Error::Decode {
                path: dataset.filename(i),
                msg: "the loader skipped it".into(),
            })
        }
        None => Ok(()),
    }
}

/// inference.py's results table, column by column: the file, then the indices (with
/// `--include-index`, and always for `multi_label` results), labels and outputs, one list cell
/// each (a list even of one class when `multi_label`) or, with `--results-separate-col`, one
/// column per rank.
fn columns(
    a: &InferArgs,
    preds: &[Prediction],
    labels: Option<&[String]>,
    multi_label: bool,
) -> Vec<(String, Vec<Value>)> {
    let mut cols = vec![(
        a.filename_col.clone(),
        preds.iter().map(|p| Value::from(p.file.clone())).collect(),
    )];
    let label = |i: usize| {
        let name = labels.and_then(|l| l.get(i));
        Value::from(name.cloned().unwrap_or_else(|| format!("<unmapped:{i}>")))
    };
    let width = preds.first().map_or(0, |p| p.outputs.len());
    let mut groups: Vec<(&str, Vec<Vec<Value>>)> = Vec::new();
    if a.topk > 0 && (a.include_index || multi_label) {
        let rows = preds
            .iter()
            .map(|p| p.indices.iter().map(|&i| Value::from(i)).collect());
        groups.push((&a.index_col, rows.collect()));
    }
    if a.topk > 0 && labels.is_some() {
        let rows = preds
            .iter()
            .map(|p| p.indices.iter().map(|&i| label(i)).collect());
        groups.push((&a.label_col, rows.collect()));
    }
    let output_col = a
        .output_col
        .clone()
        .unwrap_or_else(|| a.output_type.clone());
    if !a.exclude_output {
        let rows = preds
            .iter()
            .map(|p| p.outputs.iter().map(|&v| float(v)).collect());
        groups.push((&output_col, rows.collect()));
    }
    for (name, rows) in groups {
        if a.results_separate_col && width > 1 {
            let k = rows.first().map_or(0, Vec::len);
            for i in 0..k {
                cols.push((
                    format!("{name}_{i}"),
                    rows.iter().map(|r| r[i].clone()).collect(),
                ));
            }
        } else {
            let cells = rows.into_iter().map(|mut r| match r.len() {
                1 if !multi_label => r.remove(0),
                _ => Value::Array(r),
            });
            cols.push((name.to_string(), cells.collect()));
        }
    }
    cols
}

/// An output as JSON: the float32's shortest decimal, not its float64 expansion.
fn float(v: f32) -> Value {
    let shortest: f64 = v.to_string().parse().unwrap_or(f64::NAN);
    serde_json::Number::from_f64(shortest).map_or(Value::Null, Value::Number)
}

/// The table as pandas' `to_csv(index=False)`: list cells as numpy prints arrays (`[3 1]`).
fn csv(cols: &[(String, Vec<Value>)]) -> String {
    let header: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
    let rows = cols.first().map_or(0, |(_, v)| v.len());
    let mut text = header.join(",") + "\n";
    for r in 0..rows {
        let cells: Vec<String> = cols.iter().map(|(_, v)| csv_cell(&v[r])).collect();
        text += &(cells.join(",") + "\n");
    }
    text
}

fn csv_cell(v: &Value) -> String {
    let plain = match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| match i {
                    Value::String(s) => format!("'{s}'"),
                    other => other.to_string(),
                })
                .collect();
            format!("[{}]", parts.join(" "))
        }
        other => other.to_string(),
    };
    match plain.contains([',', '"', '\n']) {
        true => format!("\"{}\"", plain.replace('"', "\"\"")),
        false => plain,
    }
}

/// pandas' `set_index(filename_col).to_json(orient='index')`: each file's other columns.
fn by_file(cols: &[(String, Vec<Value>)]) -> Value {
    let Some(((_, files), rest)) = cols.split_first() else {
        return Value::Object(Map::new());
    };
    let rows = files.iter().enumerate().map(|(r, f)| {
        let row = rest.iter().map(|(n, v)| (n.clone(), v[r].clone()));
        let key = f.as_str().unwrap_or_default().to_string();
        (key, Value::Object(row.collect()))
    });
    Value::Object(rows.collect())
}

/// pandas' `to_json(orient='split', index=False)`: the column names and the rows.
fn split(cols: &[(String, Vec<Value>)]) -> Value {
    let names: Vec<Value> = cols.iter().map(|(n, _)| Value::from(n.clone())).collect();
    let rows = cols.first().map_or(0, |(_, v)| v.len());
    let data: Vec<Value> = (0..rows)
        .map(|r| Value::Array(cols.iter().map(|(_, v)| v[r].clone()).collect()))
        .collect();
    serde_json::json!({ "columns": names, "data": data })
}

fn pretty(v: &Value) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| Error::flag("--results-format", e.to_string()))
}

/// inference.py's results path without its extension: --results-file less a results extension,
/// else `<model>-<img_size>`, inside --results-dir (created) when given.
fn results_stem(a: &InferArgs, arch: &str, img_size: usize) -> Result<PathBuf> {
    let name = match &a.results_file {
        Some(f) => {
            let p = Path::new(f);
            match p.extension().and_then(|e| e.to_str()) {
                Some("json" | "csv" | "parquet") => p.with_extension(""),
                _ => p.to_path_buf(),
            }
        }
        None => PathBuf::from(format!("{arch}-{img_size}")),
    };
    match &a.results_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            Ok(dir.join(name))
        }
        None => Ok(name),
    }
}
