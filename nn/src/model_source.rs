//! What a model name means, as timm's `create_model` reads it: a registered architecture with an
//! optional pretrained tag (`resnet50`, `resnet50.a1_in1k`), `hf-hub:org/name[@revision]` (the
//! architecture and pretrained config from the repo's config.json in the Hugging Face hub cache)
//! or `local-dir:/path` (the same from a folder); and where its pretrained weights are.

use crate::hub_cache::HubCache;
use crate::hub_config::parse_hub_config;
use crate::pretrained::PretrainedSource;
use crate::pretrained_tags::find_tag;
use crate::registry::{close_names, lookup};
use crate::{load_pretrained, Error, Model, ModelArgs, PretrainedCfg, Result};
use std::path::{Path, PathBuf};

/// A resolved model name: the architecture to build, its pretrained config, and where the
/// weights `pretrained=True` loads are (timm's `_resolve_pretrained_source`).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// The name as given.
    pub name: String,
    /// The registered architecture.
    pub arch: String,
    /// The pretrained config: the tag's, or the hub repo's or folder's config.json.
    pub cfg: PretrainedCfg,
    weights: WeightsAt,
    cache: HubCache,
}

/// Where a model's pretrained weights are.
#[derive(Debug, Clone, PartialEq)]
enum WeightsAt {
    /// A hub repo at a revision, with its weight files in order of preference.
    Hub {
        repo: String,
        revision: Option<String>,
        files: Vec<String>,
    },
    /// A local folder (timm's `load_state_dict_from_path`).
    Dir(PathBuf),
    /// None exist (timm's `untrained` tags).
    Nowhere,
}

/// timm's weight files of a folder, preferred first (`_PREFERRED_FILES`), then the first of each
/// extension in this order (`_EXT_PRIORITY`).
const PREFERRED_FILES: [&str; 8] = [
    "model.safetensors",
    "pytorch_model.bin",
    "pytorch_model.pth",
    "model.pth",
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
];
const EXT_PRIORITY: [&str; 4] = [".safetensors", ".pth", ".pth.tar", ".bin"];

impl ModelSpec {
    /// Resolves `name`, reading hub repos from [`HubCache::from_env`].
    pub fn resolve(name: &str) -> Result<ModelSpec> {
        ModelSpec::resolve_in(name, &HubCache::from_env())
    }

    /// Resolves `name` (an `arch`, `arch.tag`, `hf-hub:` or `local-dir:` name) with hub repos
    /// read from `cache`. Unknown architectures suggest close names; unknown tags list the known.
    pub fn resolve_in(name: &str, cache: &HubCache) -> Result<ModelSpec> {
        let bad = |msg: String| Error::BadArgument {
            model: name.into(),
            msg,
        };
        let (arch, cfg, weights) = match parse_model_name(name).map_err(bad)? {
            (None, id) => registry_name(name, id)?,
            (Some("hf-hub"), id) => {
                let (repo, revision) = match id.split_once('@') {
                    Some((r, rev)) => (r, Some(rev.to_string())),
                    None => (id, None),
                };
                let file = cache.find(repo, revision.as_deref(), &["config.json"])?;
                let (arch, mut cfg, filename) = parse_hub_config(&file)?;
                cfg.hf_hub_id = Some(id.into());
                let files = match filename {
                    Some(f) => with_safe_alternatives(&f),
                    None => with_safe_alternatives("pytorch_model.bin"),
                };
                let weights = WeightsAt::Hub {
                    repo: repo.into(),
                    revision,
                    files,
                };
                (arch, cfg, weights)
            }
            (Some(_), dir) => {
                let file = Path::new(dir).join("config.json");
                if !file.is_file() {
                    return Err(bad(format!("config file not found: {}", file.display())));
                }
                let (arch, cfg, _) = parse_hub_config(&file)?;
                (arch, cfg, WeightsAt::Dir(dir.into()))
            }
        };
        Ok(ModelSpec {
            name: name.into(),
            arch,
            cfg,
            weights,
            cache: cache.clone(),
        })
    }

    /// Builds the model (parameters from the global Philox stream: seed it first), its config
    /// this spec's with `args.num_classes`, and loads `args.pretrained` if given.
    pub fn create(&self, args: &ModelArgs) -> Result<Box<dyn Model>> {
        if args.in_chans == 0 {
            return Err(Error::BadArgument {
                model: self.name.clone(),
                msg: "in_chans must be at least 1".into(),
            });
        }
        let (_, build) = lookup(&self.arch).ok_or_else(|| self.unknown())?;
        let cfg = PretrainedCfg {
            num_classes: args.num_classes,
            ..self.cfg.clone()
        };
        let model = build(cfg, args)?;
        if let Some(source) = &args.pretrained {
            load_pretrained(model.as_ref(), source)?;
        }
        Ok(model)
    }

    fn unknown(&self) -> Error {
        Error::UnknownModel {
            name: self.name.clone(),
            suggestions: close_names(&self.arch),
        }
    }

    /// The file `pretrained=True` loads: the first of the hub repo's weight files in the cache
    /// (`model.safetensors`, then `pytorch_model.bin`), or a local folder's weights as timm picks
    /// them. A missing file is one error naming every place looked.
    pub fn weights_file(&self) -> Result<PathBuf> {
        match &self.weights {
            WeightsAt::Hub {
                repo,
                revision,
                files,
            } => {
                let files: Vec<&str> = files.iter().map(String::as_str).collect();
                self.cache.find(repo, revision.as_deref(), &files)
            }
            WeightsAt::Dir(dir) => folder_weights(dir),
            WeightsAt::Nowhere => Err(Error::BadArgument {
                model: self.name.clone(),
                msg: "no pretrained weights exist for this tag; leave out --pretrained for random init"
                    .into(),
            }),
        }
    }

    /// timm's `pretrained=True` for a model of `num_classes` classes: [`ModelSpec::weights_file`],
    /// the classifier re-initialized when `num_classes` differs from the weights' (timm's
    /// `load_pretrained`).
    pub fn pretrained_source(&self, num_classes: usize) -> Result<PretrainedSource> {
        Ok(PretrainedSource {
            file: self.weights_file()?,
            reset_classifier: num_classes != self.cfg.num_classes,
        })
    }
}

/// `arch` or `arch.tag`: the architecture's config with the tag's values.
fn registry_name(name: &str, id: &str) -> Result<(String, PretrainedCfg, WeightsAt)> {
    let (arch, tag) = match id.split_once('.') {
        Some((a, t)) => (a, Some(t)),
        None => (id, None),
    };
    let (mut cfg, _) = lookup(arch).ok_or_else(|| Error::UnknownModel {
        name: name.into(),
        suggestions: close_names(arch),
    })?;
    let (arch_tags, tag) = find_tag(arch, tag)?;
    tag.apply(arch_tags, &mut cfg);
    let weights = match tag.hf_hub_id {
        Some(repo) => WeightsAt::Hub {
            repo: repo.into(),
            revision: None,
            files: with_safe_alternatives("pytorch_model.bin"),
        },
        None => WeightsAt::Nowhere,
    };
    Ok((arch.into(), cfg, weights))
}

/// timm's `parse_model_name`: (`hf-hub` or `local-dir`, the rest) for a source-prefixed name,
/// (None, name) for a registry name; a name that looks like a path or repo without a prefix is
/// refused, as timm refuses it.
pub fn parse_model_name(name: &str) -> std::result::Result<(Option<&'static str>, &str), String> {
    let prefix_ok = |s: &str| {
        let mut c = s.chars();
        c.next().is_some_and(|f| f.is_ascii_alphabetic())
            && s.len() >= 2
            && c.all(|ch| ch.is_ascii_alphanumeric() || "+.-_".contains(ch))
    };
    match name.split_once(':') {
        Some((source, id)) if prefix_ok(source) => {
            let source = match source.to_ascii_lowercase().as_str() {
                "hf-hub" | "hf_hub" => "hf-hub",
                "local-dir" => "local-dir",
                s => return Err(format!("unknown model source '{s}' (known: hf-hub, local-dir)")),
            };
            if id.is_empty() {
                return Err(format!("no model id or path after '{source}:'"));
            }
            Ok((Some(source), id))
        }
        _ if name.contains(['/', '\\', ':']) => Err(format!(
            "looks like a Hugging Face hub repo or a path; name it hf-hub:{name} or local-dir:{name}"
        )),
        _ => Ok((None, name)),
    }
}

/// timm's `_get_safe_alternatives` of `filename` followed by `filename` itself: the files
/// `load_state_dict_from_hf` tries, in order.
fn with_safe_alternatives(filename: &str) -> Vec<String> {
    let safe = match filename {
        "pytorch_model.bin" => Some("model.safetensors".to_string()),
        "open_clip_pytorch_model.bin" => Some("open_clip_model.safetensors".to_string()),
        f => f.strip_suffix(".bin").map(|s| format!("{s}.safetensors")),
    };
    safe.into_iter().chain([filename.to_string()]).collect()
}

/// timm's `load_state_dict_from_path` choice of file in `dir`.
fn folder_weights(dir: &Path) -> Result<PathBuf> {
    if let Some(p) = PREFERRED_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
    {
        return Ok(p);
    }
    let names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::File {
            path: dir.display().to_string(),
            msg: e.to_string(),
        })?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    EXT_PRIORITY
        .iter()
        .find_map(|ext| {
            let mut found: Vec<&String> = names.iter().filter(|n| n.ends_with(ext)).collect();
            found.sort();
            found.first().map(|n| dir.join(n))
        })
        .ok_or_else(|| Error::File {
            path: dir.display().to_string(),
            msg: format!(
                "no weights: none of {} nor any *.safetensors, *.pth, *.pth.tar or *.bin",
                PREFERRED_FILES.join(", ")
            ),
        })
}

/// Builds a registered model (parameters from the global Philox stream: seed it first). `name`
/// is an architecture, `arch.tag` (a bare architecture takes timm's default tag), or a hub repo
/// or folder (`hf-hub:org/name`, `local-dir:/path`; see [`ModelSpec`]); the model's pretrained
/// config is the tag's, with `args.num_classes`.
pub fn create_model(name: &str, args: &ModelArgs) -> Result<Box<dyn Model>> {
    ModelSpec::resolve(name)?.create(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_as_timms_parse_model_name() {
        assert_eq!(
            parse_model_name("resnet50.a1_in1k"),
            Ok((None, "resnet50.a1_in1k"))
        );
        assert_eq!(
            parse_model_name("hf_hub:timm/resnet50.a1_in1k"),
            Ok((Some("hf-hub"), "timm/resnet50.a1_in1k"))
        );
        assert_eq!(
            parse_model_name("local-dir:/m"),
            Ok((Some("local-dir"), "/m"))
        );
        assert!(parse_model_name("timm/resnet50").is_err());
        assert!(parse_model_name("s3:bucket/x")
            .unwrap_err()
            .contains("unknown model source 's3'"));
        assert!(parse_model_name("hf-hub:").is_err());
    }

    #[test]
    fn safe_alternatives_come_first() {
        assert_eq!(
            with_safe_alternatives("pytorch_model.bin"),
            ["model.safetensors", "pytorch_model.bin"]
        );
        assert_eq!(
            with_safe_alternatives("weights.bin"),
            ["weights.safetensors", "weights.bin"]
        );
        assert_eq!(with_safe_alternatives("w.safetensors"), ["w.safetensors"]);
    }
}
