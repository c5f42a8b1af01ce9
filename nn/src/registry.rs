//! The model registry: `create_model` by name, `list_models` with wildcards.

use crate::models::{Build, FAMILIES};
use crate::{Model, ModelArgs, ModelSpec, PretrainedCfg, Result};

/// Builds a registered model (parameters from the global Philox stream: seed it first). `name`
/// is an architecture, `arch.tag` (a bare architecture takes timm's default tag), or a hub repo
/// or folder (`hf-hub:org/name`, `local-dir:/path`; see [`ModelSpec`]); the model's pretrained
/// config is the tag's, with `args.num_classes`.
pub fn create_model(name: &str, args: &ModelArgs) -> Result<Box<dyn Model>> {
    ModelSpec::resolve(name)?.create(args)
}

/// The default pretrained config and the builder of registered architecture `arch`.
pub(crate) fn lookup(arch: &str) -> Option<(PretrainedCfg, Build)> {
    FAMILIES.iter().find_map(|f| f.lookup(arch))
}

/// Registered model names matching a shell-style pattern (`*` and `?`), sorted.
pub fn list_models(pattern: &str) -> Vec<String> {
    let mut names: Vec<String> = all_names()
        .into_iter()
        .filter(|n| wildcard(pattern, n))
        .map(String::from)
        .collect();
    names.sort();
    names
}

fn all_names() -> Vec<&'static str> {
    FAMILIES.iter().flat_map(|f| f.names()).collect()
}

/// Whether `name` matches `pattern` with `*` (any run) and `?` (any one char).
pub(crate) fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Up to three registered names within edit distance 3 of `name`, closest first.
pub(crate) fn close_names(name: &str) -> Vec<String> {
    let mut scored: Vec<(usize, &str)> = all_names()
        .into_iter()
        .map(|n| (edit_distance(name, n), n))
        .filter(|(d, _)| *d <= 3)
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(3)
        .map(|(_, n)| n.to_string())
        .collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_fnmatch() {
        assert!(wildcard("resnet*", "resnet50d"));
        assert!(wildcard("*50*", "resnet50d"));
        assert!(wildcard("resnet?8", "resnet18"));
        assert!(!wildcard("resnet1?", "resnet152"));
        assert_eq!(list_models("resnet1*d"), vec!["resnet101d", "resnet18d"]);
    }

    #[test]
    fn unknown_model_suggests_close_names() {
        let err = create_model("resnet5O", &ModelArgs::default())
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unknown model 'resnet5O' (did you mean resnet50, resnet152, resnet18?)")
        );
    }
}
