//! Flag values as timm's argparse reads and writes them: finite numbers, `key=value` items, and
//! the shapes `args.yaml` holds them in (a `key=value` list as a mapping, an unset path as `''`).
//! The config structs' clap derives (feature `clap`) and the `kiln` command parse with these.

use serde::ser::SerializeMap;
use serde::Serializer;
use std::path::Path;

/// A float flag's value: any number Rust parses but NaN and the infinities (no flag of timm's
/// means anything with them).
fn finite<T: std::str::FromStr + Into<f64> + Copy>(s: &str) -> Result<T, String> {
    let v: T = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    match v.into().is_finite() {
        true => Ok(v),
        false => Err(format!("'{s}' is not a finite number")),
    }
}

/// An `f64` flag's value (finite).
pub fn finite_f64(s: &str) -> Result<f64, String> {
    finite(s)
}

/// An `f32` flag's value (finite).
pub fn finite_f32(s: &str) -> Result<f32, String> {
    finite(s)
}

/// Where a flag's value must lie: timm's train.py takes most values unchecked and fails later (a
/// math domain error, a division by zero) or trains on nonsense; kiln refuses them before the run,
/// naming the flag (after parsing, which accepts whatever argparse accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// A probability: [0, 1].
    Unit,
    /// A drop rate or smoothing: [0, 1).
    UnitOpen,
    /// [0, ∞).
    NonNegative,
    /// (0, ∞).
    Positive,
}

impl Range {
    fn holds(self, v: f64) -> bool {
        match self {
            Range::Unit => (0.0..=1.0).contains(&v),
            Range::UnitOpen => (0.0..1.0).contains(&v),
            Range::NonNegative => v >= 0.0,
            Range::Positive => v > 0.0,
        }
    }

    fn says(self) -> &'static str {
        match self {
            Range::Unit => "must be in [0, 1]",
            Range::UnitOpen => "must be in [0, 1)",
            Range::NonNegative => "must not be negative",
            Range::Positive => "must be positive",
        }
    }
}

/// Refuses the first (flag, values, range) rule with a value outside its range.
pub fn first_outside<const N: usize>(rules: [(&str, Vec<f64>, Range); N]) -> crate::Result<()> {
    for (flag, values, range) in rules {
        if let Some(v) = values.into_iter().find(|&v| !range.holds(v)) {
            return Err(crate::Error::flag(
                flag,
                format!("{}, got {v}", range.says()),
            ));
        }
    }
    Ok(())
}

/// A `key=value` item (timm's `ParseKwargs`), both sides trimmed; a bare `key` has the value `''`.
pub fn key_value(s: &str) -> Result<(String, String), String> {
    let (key, value) = s.split_once('=').unwrap_or((s, ""));
    match key.trim() {
        "" => Err(format!("'{s}' is not key=value")),
        key => Ok((key.to_string(), value.trim().to_string())),
    }
}

/// A `key=value` item as a flag holds it: text (`--model-kwargs`) or split (`--opt-kwargs`).
pub trait Kwarg {
    /// The key and the value's text (`None` for a bare key).
    fn key_and_value(&self) -> (&str, &str);
}

impl Kwarg for String {
    fn key_and_value(&self) -> (&str, &str) {
        self.split_once('=').unwrap_or((self, "None"))
    }
}

impl Kwarg for (String, String) {
    fn key_and_value(&self) -> (&str, &str) {
        (&self.0, &self.1)
    }
}

/// Writes `key=value` items as the mapping timm's `ParseKwargs` makes of them: each value read as
/// a Python literal (`False`, `None`, `3`, `0.1`, `'avg'`), else kept as its text.
pub fn kwargs_as_mapping<S: Serializer, K: Kwarg>(items: &[K], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(items.len()))?;
    for item in items {
        let (key, value) = item.key_and_value();
        map.serialize_entry(key, &literal_value(value.trim()))?;
    }
    map.end()
}

/// A Python literal's YAML value, as `ast.literal_eval` reads it (else the text, as timm's
/// `ParseKwargs` keeps it): bools, None, ints, floats, quoted strings, and tuples or lists of those
/// (`8,10`, `(8, 10)`, `[8, 10]`: a sequence).
fn literal_value(text: &str) -> serde_yaml::Value {
    scalar_literal(text)
        .or_else(|| sequence_literal(text))
        .unwrap_or_else(|| serde_yaml::Value::from(text))
}

/// A bool, None, number or quoted string literal; None for anything else.
fn scalar_literal(text: &str) -> Option<serde_yaml::Value> {
    use serde_yaml::Value;
    let numeric = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE_".contains(&b));
    let unquoted = ['\'', '"']
        .iter()
        .find_map(|q| text.strip_prefix(*q)?.strip_suffix(*q));
    match text {
        "True" => Some(Value::Bool(true)),
        "False" => Some(Value::Bool(false)),
        "None" => Some(Value::Null),
        _ if numeric => match (text.parse::<i64>(), text.parse::<f64>()) {
            (Ok(i), _) => Some(Value::from(i)),
            (_, Ok(f)) => Some(Value::from(f)),
            _ => None,
        },
        _ => unquoted.map(Value::from),
    }
}

/// A tuple or list of scalar literals (`8,10`, `(8, 10)`, `[8, 10]`, `(8,)`); None when it is not
/// one (an item that is no literal makes the whole text a string, as `literal_eval` fails on it).
fn sequence_literal(text: &str) -> Option<serde_yaml::Value> {
    let inner = ["()", "[]"]
        .iter()
        .find_map(|p| text.strip_prefix(&p[..1])?.strip_suffix(&p[1..]));
    let bracketed = inner.is_some();
    let inner = inner.unwrap_or(text).trim();
    if !bracketed && !inner.contains(',') {
        return None;
    }
    let items = inner.strip_suffix(',').unwrap_or(inner);
    if items.is_empty() {
        return Some(serde_yaml::Value::Sequence(Vec::new()));
    }
    items
        .split(',')
        .map(|item| scalar_literal(item.trim()))
        .collect::<Option<Vec<_>>>()
        .map(serde_yaml::Value::Sequence)
}

/// Writes an unset path or name as timm writes its unset string flags: `''`.
pub fn empty_if_none<S: Serializer, P: AsRef<Path>>(
    path: &Option<P>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match path {
        Some(p) => s.serialize_str(&p.as_ref().to_string_lossy()),
        None => s.serialize_str(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_must_be_finite() {
        assert_eq!(finite_f64(" 0.5"), Ok(0.5));
        assert!(finite_f64("nan")
            .unwrap_err()
            .contains("not a finite number"));
        assert!(finite_f32("1e39")
            .unwrap_err()
            .contains("not a finite number"));
        assert!(finite_f64("x").unwrap_err().contains("not a number"));
    }

    #[test]
    fn ranges_name_the_flag_and_what_it_needs() {
        assert!(first_outside([("--a", vec![1.0], Range::Unit)]).is_ok());
        let e = first_outside([
            ("--a", vec![0.5], Range::Unit),
            ("--b", vec![0.0, 1.0], Range::UnitOpen),
        ]);
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("--b: must be in [0, 1), got 1"));
        for (range, bad) in [(Range::NonNegative, -0.5), (Range::Positive, 0.0)] {
            assert!(first_outside([("--c", vec![bad], range)]).is_err());
        }
    }

    #[test]
    fn key_value_items_split_once() {
        assert_eq!(key_value("a = b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(key_value("foreach"), Ok(("foreach".into(), String::new())));
        assert!(key_value("=1").is_err());
    }

    #[test]
    fn kwargs_become_python_literals() {
        let items: Vec<(String, String)> =
            ["x=False", "n=3", "f=0.5", "s='avg'", "t=gelu", "z=None"]
                .iter()
                .map(|s| key_value(s).unwrap())
                .collect();
        let mut out = Vec::new();
        kwargs_as_mapping(&items, &mut serde_yaml::Serializer::new(&mut out)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "x: false\nn: 3\nf: 0.5\ns: avg\nt: gelu\nz: null\n"
        );
    }

    #[test]
    fn tuples_and_lists_of_literals_become_sequences() {
        use serde_yaml::Value;
        let seq = |v: &[i64]| Value::Sequence(v.iter().map(|&i| Value::from(i)).collect());
        assert_eq!(literal_value("8,10"), seq(&[8, 10]));
        assert_eq!(literal_value("(8, 10)"), seq(&[8, 10]));
        assert_eq!(literal_value("[8,10,]"), seq(&[8, 10]));
        assert_eq!(literal_value("(8,)"), seq(&[8]));
        assert_eq!(literal_value("()"), seq(&[]));
        // literal_eval fails on a bare name, so the whole text stays a string.
        assert_eq!(literal_value("a,b"), Value::from("a,b"));
        assert_eq!(literal_value("'a,b'"), Value::from("a,b"));
    }
}
