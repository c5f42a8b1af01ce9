//! The Hugging Face hub cache, read offline as huggingface_hub's `try_to_load_from_cache` reads
//! it: `<cache>/models--<org>--<name>/refs/<revision>` holds a commit hash and
//! `snapshots/<commit>/<file>` the file (a link into `blobs/`).

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// A hub cache folder and the setting that chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubCache {
    root: PathBuf,
    origin: String,
}

impl HubCache {
    /// The cache huggingface_hub uses: `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE`, else
    /// `HF_HOME/hub`, else `XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
    pub fn from_env() -> HubCache {
        HubCache::from_vars(|k| std::env::var(k).ok())
    }

    /// [`HubCache::from_env`] with each variable read through `var` (`~` expanded as
    /// huggingface_hub's `expanduser` does; `$VAR`s are not).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> HubCache {
        let home = || var("HOME").unwrap_or_default();
        let expand = |p: String| match p.strip_prefix('~') {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{}{rest}", home()),
            _ => p,
        };
        for key in ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"] {
            if let Some(v) = var(key) {
                return HubCache::named(expand(v.clone()).into(), format!("{key}={v}"));
            }
        }
        let (hf_home, origin) = match (var("HF_HOME"), var("XDG_CACHE_HOME")) {
            (Some(h), _) => (PathBuf::from(expand(h.clone())), format!("HF_HOME={h}")),
            (None, Some(x)) => (
                PathBuf::from(expand(x.clone())).join("huggingface"),
                format!("XDG_CACHE_HOME={x}"),
            ),
            (None, None) => (
                PathBuf::from(home()).join(".cache/huggingface"),
                "the default; HF_HUB_CACHE and HF_HOME unset".into(),
            ),
        };
        HubCache::named(hf_home.join("hub"), origin)
    }

    /// The cache at `root`.
    pub fn at(root: impl Into<PathBuf>) -> HubCache {
        let root = root.into();
        let origin = "given".into();
        HubCache { root, origin }
    }

    fn named(root: PathBuf, origin: String) -> HubCache {
        HubCache { root, origin }
    }

    /// The cache folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The first of `filenames` cached for model repo `repo_id` at `revision` (`None`: `main`),
    /// as `try_to_load_from_cache` finds each. When none is, the error names every place looked
    /// and the command that downloads the repo.
    pub fn find(
        &self,
        repo_id: &str,
        revision: Option<&str>,
        filenames: &[&str],
    ) -> Result<PathBuf> {
        let repo = self
            .root
            .join(format!("models--{}", repo_id.replace('/', "--")));
        let missing = |looked: Vec<String>| Error::NotCached {
            repo: repo_id.into(),
            revision: revision.map(String::from),
            cache: format!("{} ({})", self.root.display(), self.origin),
            looked,
        };
        if !repo.is_dir() {
            return Err(missing(vec![format!("{} (absent)", repo.display())]));
        }
        let rev = revision.unwrap_or("main");
        let ref_file = repo.join("refs").join(rev);
        let commit = match std::fs::read_to_string(&ref_file) {
            Ok(c) => c.trim().to_string(),
            Err(_) => rev.to_string(),
        };
        let snapshot = repo.join("snapshots").join(&commit);
        let mut looked = Vec::new();
        if commit == rev && revision.is_none() {
            looked.push(format!("{} (absent)", ref_file.display()));
        }
        for name in filenames {
            let file = snapshot.join(name);
            let marked_absent = repo.join(".no_exist").join(&commit).join(name).is_file();
            if file.is_file() && !marked_absent {
                return Ok(file);
            }
            looked.push(file.display().to_string());
        }
        Err(missing(looked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cache_of(vars: &[(&str, &str)]) -> PathBuf {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubCache::from_vars(|k| vars.get(k).cloned())
            .root()
            .to_path_buf()
    }

    #[test]
    fn the_cache_folder_follows_huggingface_hubs_order() {
        let all = [
            ("HF_HUB_CACHE", "/a"),
            ("HUGGINGFACE_HUB_CACHE", "/b"),
            ("HF_HOME", "/c"),
            ("XDG_CACHE_HOME", "/d"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(cache_of(&all), Path::new("/a"));
        assert_eq!(cache_of(&all[1..]), Path::new("/b"));
        assert_eq!(cache_of(&all[2..]), Path::new("/c/hub"));
        assert_eq!(cache_of(&all[3..]), Path::new("/d/huggingface/hub"));
        assert_eq!(
            cache_of(&all[4..]),
            Path::new("/home/u/.cache/huggingface/hub")
        );
        assert_eq!(
            cache_of(&[("HF_HOME", "~/hf"), ("HOME", "/home/u")]),
            Path::new("/home/u/hf/hub")
        );
    }
}
