//! Which members of a webdataset sample hold its image and its label (timm's `_decode`): the
//! first of the `;`-separated image keys present, and the `.cls` member, or a field of the
//! `.json` sidecar named by the target key or the split's `alt_label`.
use serde_json::Value;

/// The image and label keys of a webdataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleKeys {
    /// Image member extensions, in preference order (timm's default `jpg;png;webp`).
    pub image: Vec<String>,
    /// The JSON-sidecar field holding the label (a `/`-separated path into nested objects), or
    /// `None` for the `.cls` member.
    pub target: Option<String>,
}

/// timm's default `input_key`.
pub const DEFAULT_INPUT_KEY: &str = "jpg;png;webp";

/// What one sample's label lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    /// The class index.
    Class(usize),
    /// A negative JSON label: timm's "skipped" label, the sample is dropped without a warning.
    Unlabelled,
    /// The label cannot be read (a missing or unparsable `.cls`, ...): the sample is skipped
    /// with a warning, as timm's `log_and_continue` does.
    Skip(String),
    /// The target key cannot be resolved (no sidecar, no such field): a dataset or
    /// configuration error that timm raises rather than skips.
    Refuse(String),
}

impl SampleKeys {
    /// Keys from timm's flags: `input_key` (`None`: the default), `target_key` (`None`: `.cls`,
    /// unless the split names an `alt_label`). Comma-separated multi-field targets (multi-label)
    /// are refused: kiln trains single-label classifiers.
    pub fn new(
        input_key: Option<&str>,
        target_key: Option<&str>,
        alt_label: &str,
    ) -> Result<Self, String> {
        let image = input_key
            .unwrap_or(DEFAULT_INPUT_KEY)
            .split(';')
            .map(str::to_string)
            .collect::<Vec<_>>();
        if image.iter().any(|k| k.is_empty() || k.contains(' ')) {
            return Err(format!(
                "input key {:?}: extensions separated by ';', without spaces",
                input_key.unwrap_or_default()
            ));
        }
        let target = target_key
            .filter(|t| !t.is_empty())
            .or(Some(alt_label).filter(|a| !a.is_empty()))
            .map(str::to_string);
        if let Some(t) = target.as_deref().filter(|t| t.contains(',')) {
            return Err(format!(
                "target key {t:?}: several binary fields form a multi-label target, which kiln does not train"
            ));
        }
        Ok(SampleKeys { image, target })
    }

    /// The label of a sample whose `.cls` and `.json` members hold `cls` and `json`.
    pub fn label(&self, cls: Option<&[u8]>, json: Option<&[u8]>) -> Label {
        let Some(field) = &self.target else {
            let Some(cls) = cls else {
                return Label::Skip("no .cls member".into());
            };
            let text = String::from_utf8_lossy(cls);
            return match text.trim().parse::<i64>() {
                Ok(v) if v >= 0 => Label::Class(v as usize),
                Ok(v) => Label::Skip(format!("negative class {v} in .cls")),
                Err(_) => Label::Skip(format!(".cls holds {:?}, not an integer", text.trim())),
            };
        };
        let Some(json) = json else {
            return Label::Refuse(format!("target key {field:?} requires a json sidecar"));
        };
        let meta: Value = match serde_json::from_slice(json) {
            Ok(v) => v,
            Err(e) => return Label::Skip(format!("json sidecar: {e}")),
        };
        let Some(v) = get_field(&meta, field) else {
            let keys: Vec<&String> = meta
                .as_object()
                .map(|m| m.keys().collect())
                .unwrap_or_default();
            return Label::Refuse(format!(
                "target key {field:?} not found in the json sidecar, available keys: {keys:?}"
            ));
        };
        // Python's int(): integers, floats truncated, and integer strings.
        let class = (v.as_i64())
            .or_else(|| v.as_f64().map(|f| f.trunc() as i64))
            .or_else(|| v.as_str().and_then(|t| t.trim().parse().ok()));
        match class {
            Some(c) if c >= 0 => Label::Class(c as usize),
            Some(_) => Label::Unlabelled,
            None => Label::Refuse(format!(
                "target key {field:?} holds {v}, not a class index (lists are multi-label targets)"
            )),
        }
    }
}

/// timm's `get_field`: the literal key, else a `/`-separated path into nested objects.
fn get_field<'a>(meta: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = meta.get(path) {
        return Some(v);
    }
    path.split('/').try_fold(meta, |v, k| v.get(k))
}

#[cfg(test)]
mod tests {
    use super::{Label, SampleKeys};

    #[test]
    fn labels_from_cls_and_json() {
        let cls = SampleKeys::new(None, None, "").unwrap();
        assert_eq!(cls.image, ["jpg", "png", "webp"]);
        assert_eq!(cls.label(Some(b" 7\n"), None), Label::Class(7));
        assert!(matches!(cls.label(None, None), Label::Skip(_)));
        let json = SampleKeys::new(Some("png"), Some("meta/label"), "").unwrap();
        assert_eq!(
            json.label(None, Some(br#"{"meta":{"label":3}}"#)),
            Label::Class(3)
        );
        assert_eq!(
            json.label(None, Some(br#"{"meta":{"label":-1}}"#)),
            Label::Unlabelled
        );
        assert_eq!(
            json.label(None, Some(br#"{"meta":{"label":" 4"}}"#)),
            Label::Class(4)
        );
        assert!(matches!(json.label(Some(b"1"), None), Label::Refuse(_)));
        assert!(matches!(json.label(None, Some(b"{}")), Label::Refuse(_)));
        let alt = SampleKeys::new(None, None, "y").unwrap();
        assert_eq!(alt.label(Some(b"1"), Some(br#"{"y":2}"#)), Label::Class(2));
        assert!(SampleKeys::new(None, Some("a,b"), "").is_err());
    }
}
