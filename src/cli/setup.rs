//! What `train` and `validate` share: opening datasets, the data config, building the model.

use kiln_engine::{cuda, Device, MemoryFormat};
use kiln_nn::PretrainedCfg;
use kiln_train::data::{
    load_class_map, ClassMap, Dataset, IdxDataset, ImageFolder, MultiLabelFolder, TarDataset,
};
use kiln_train::loader::{Layout, MultiLabelConfig, ResolvedData};
use kiln_train::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The Fashion-MNIST subset shipped in the repository.
pub fn embedded_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist")
}

/// A dataset root: IDX files (native 28×28), an ImageFolder tree, or one `.tar` of class folders.
pub enum DataRoot {
    /// MNIST-style IDX files.
    Idx(PathBuf),
    /// Class folders (or per-class tars) under split folders.
    Folder(PathBuf),
    /// A `.tar` of class folders, read for every split (as timm's `create_dataset` does).
    Tar(PathBuf),
}

impl DataRoot {
    /// Classifies `dir`, failing with its path when it does not exist.
    pub fn detect(dir: &Path) -> Result<DataRoot> {
        if dir.is_file()
            && dir
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("tar"))
        {
            return Ok(DataRoot::Tar(dir.to_path_buf()));
        }
        if !dir.is_dir() {
            return Err(Error::MissingDataDir(dir.to_path_buf()));
        }
        let idx = [
            "train-images-idx3-ubyte",
            "train-images-idx3-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-images-idx3-ubyte",
        ];
        Ok(if idx.iter().any(|f| dir.join(f).is_file()) {
            DataRoot::Idx(dir.to_path_buf())
        } else {
            DataRoot::Folder(dir.to_path_buf())
        })
    }

    /// Whether images are small and fixed-size (trained at native size with pad-and-crop).
    pub fn is_idx(&self) -> bool {
        matches!(self, DataRoot::Idx(_))
    }

    /// Whether `split` (an eval split, or one of its aliases) is there: always for IDX files.
    pub fn has_eval_split(&self, split: &str) -> bool {
        match self {
            DataRoot::Idx(_) | DataRoot::Tar(_) => true,
            DataRoot::Folder(root) => find_split(root, split, false).is_ok(),
        }
    }

    /// Opens `split` ("train" or a validation name; empty: the root itself) with `chans` channels:
    /// a split folder holding `.tar` files and no folder is read as per-class tars (timm's
    /// `ReaderImageInTar`), and a `.tar` root is read whole for every split.
    pub fn open(
        &self,
        split: &str,
        train: bool,
        chans: usize,
        class_map: Option<&Path>,
    ) -> Result<Arc<dyn Dataset>> {
        match self {
            DataRoot::Idx(dir) => Ok(Arc::new(IdxDataset::open(
                dir,
                if train { "train" } else { "t10k" },
                chans,
            )?)),
            DataRoot::Folder(root) => {
                let dir = find_split(root, split, train)?;
                match holds_only_tars(&dir)? {
                    true => Ok(Arc::new(TarDataset::open(&dir, class_map, chans)?)),
                    false => Ok(Arc::new(ImageFolder::open(&dir, class_map, chans)?)),
                }
            }
            DataRoot::Tar(tar) => Ok(Arc::new(TarDataset::open(tar, class_map, chans)?)),
        }
    }
}

/// Whether `dir` holds `.tar` files and no folder (a split of per-class tars).
fn holds_only_tars(dir: &Path) -> Result<bool> {
    let (mut tars, mut folders) = (0, 0);
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = e.map_err(|e| Error::io(dir, e))?.path();
        folders += usize::from(p.is_dir());
        tars += usize::from(p.is_file() && p.extension().is_some_and(|e| e == "tar"));
    }
    Ok(tars > 0 && folders == 0)
}

/// The training and validation splits of multi-label data (`--multi-label`): each split folder's
/// label file read with the classes of `class_map` when given, else of the training split's file
/// (so both splits index the classes alike).
pub fn open_multi_label(
    root: &DataRoot,
    (train_split, val_split): (&str, &str),
    chans: usize,
    class_map: Option<&Path>,
    cfg: &MultiLabelConfig,
) -> Result<(Arc<MultiLabelFolder>, Arc<MultiLabelFolder>)> {
    let classes = class_map.map(load_class_map).transpose()?;
    let train = open_multi_label_split(root, train_split, true, chans, classes, cfg)?;
    let classes = Some(train.classes().clone());
    let val = open_multi_label_split(root, val_split, false, chans, classes, cfg)?;
    Ok((train, val))
}

/// One split folder of multi-label data (a training split when `train`, which picks the folder
/// name aliases tried): its label file read with `classes` when given, else the file's own.
pub fn open_multi_label_split(
    root: &DataRoot,
    split: &str,
    train: bool,
    chans: usize,
    classes: Option<ClassMap>,
    cfg: &MultiLabelConfig,
) -> Result<Arc<MultiLabelFolder>> {
    let DataRoot::Folder(dir) = root else {
        return Err(Error::flag(
            "--multi-label",
            "reads image folders with a label file (labels.csv or labels.json), not IDX files or tars",
        ));
    };
    let dir = find_split(dir, split, train)?;
    Ok(Arc::new(cfg.open(&dir, classes, chans)?))
}

/// The split folder, trying timm's aliases for validation; an empty split is `root` itself.
fn find_split(root: &Path, split: &str, train: bool) -> Result<PathBuf> {
    if split.is_empty() {
        return Ok(root.to_path_buf());
    }
    let aliases: &[&str] = if train {
        &["train", "training"]
    } else {
        &["validation", "val", "valid", "eval", "evaluation", "test"]
    };
    std::iter::once(split)
        .chain(aliases.iter().copied())
        .map(|s| root.join(s))
        .find(|p| p.is_dir())
        .ok_or_else(|| Error::MissingDataDir(root.join(split)))
}

/// The pretrained config the data settings resolve against: the model's, or for IDX data (of
/// `native`×`native` images) the model's at that size with no test size and crop 1, so small
/// images are used whole at their own size.
pub fn data_cfg(model: &PretrainedCfg, native: Option<usize>) -> PretrainedCfg {
    let Some(side) = native else {
        return model.clone();
    };
    PretrainedCfg {
        input_size: [model.input_size[0], side, side],
        test_input_size: None,
        crop_pct: 1.0,
        test_crop_pct: None,
        ..model.clone()
    }
}

/// Prints the resolved data settings, as timm's verbose `resolve_data_config` logs them.
pub fn print_data_config(r: &ResolvedData) {
    println!(
        "Data processing configuration: input_size ({}, {}, {}), interpolation {}, mean {:?}, \
         std {:?}, crop_pct {}, crop_mode {}",
        r.in_chans, r.img_size, r.img_size, r.interpolation, r.mean, r.std, r.crop_pct, r.crop_mode
    );
}

/// The memory layout the normalize stage writes.
pub fn layout(channels_last: bool) -> Layout {
    if channels_last {
        Layout::Nhwc
    } else {
        Layout::Nchw
    }
}

/// Says once that `--channels-last` changes nothing on the CPU (the Trainer lays models out
/// channels-last there anyway: `MemoryFormat::preferred_on`).
pub fn note_cpu_layout(device: Device) {
    if MemoryFormat::preferred_on(device) == Some(MemoryFormat::ChannelsLast) {
        println!("--channels-last: no effect on the CPU, where kiln runs channels-last whatever the flag");
    }
}

/// `--device auto` (the default) as the device it stands for: `cuda` (the first GPU, or the
/// local rank's under a launcher) when a GPU is present, else `cpu`. kiln's CUDA emulator, which
/// the tests put on the library path, is no GPU.
pub fn resolve_device(flag: &str) -> String {
    if flag != "auto" {
        return flag.to_string();
    }
    match kiln_engine::cuda::device(0) {
        Ok(dev) if !dev.is_emulated() => "cuda".into(),
        _ => "cpu".into(),
    }
}

/// The `--device` value parsed and opened, so a missing driver is reported before any work. The
/// first time a process opens a device it says which one and what serves it (and, on a GPU
/// without cuBLAS or cuDNN, what that costs and how to install them).
pub fn open_device(flag: &str) -> Result<Device> {
    let flag = resolve_device(flag);
    let device = Device::parse(&flag).ok_or_else(|| Error::Flag {
        flag: "--device".into(),
        msg: format!(
            "'{flag}' is not auto, cpu, cuda or cuda:N (kiln train also takes cuda:0,1,...)"
        ),
    })?;
    let serving = match device {
        Device::Cuda(n) => {
            let dev = kiln_engine::cuda::device(n)?;
            let line = format!(
                "{device} ({}): {}",
                dev.name(),
                cuda::libraries_serving(&dev)
            );
            Some((line, cuda::missing_libraries_warning(&dev)))
        }
        _ => None,
    };
    static ANNOUNCED: Mutex<Vec<Device>> = Mutex::new(Vec::new());
    let mut announced = ANNOUNCED.lock().unwrap_or_else(|e| e.into_inner());
    if !announced.contains(&device) {
        announced.push(device);
        match serving {
            Some((line, warning)) => {
                println!("Device {line}");
                if let Some(w) = warning {
                    eprintln!("{w}");
                }
            }
            None => println!("Device {device}"),
        }
    }
    Ok(device)
}
