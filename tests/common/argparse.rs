//! Comparing kiln's parsed, serialized flags with the namespaces timm's argparse parsers make of
//! the same command lines (the fixtures of scripts/fixtures/make_*_flag_fixtures.py).

use serde_json::Value;

/// A value as kiln's serialized arguments hold it: unset (null, '', [], {}) is None, numbers are
/// f64.
pub fn unset_or(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::Array(a) if a.is_empty() => None,
        Value::Object(o) if o.is_empty() => None,
        Value::Number(n) => Some(Value::from(n.as_f64().unwrap())),
        Value::Array(a) => Some(Value::Array(a.iter().filter_map(unset_or).collect())),
        Value::Object(o) => Some(Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), unset_or(v).unwrap_or(Value::Null)))
                .collect(),
        )),
        other => Some(other.clone()),
    }
}

/// Numbers rounded to f32 (kiln keeps --mean and --std as f32).
pub fn to_f32(v: Value) -> Value {
    match v {
        Value::Number(n) => Value::from(n.as_f64().unwrap() as f32 as f64),
        Value::Array(a) => Value::Array(a.into_iter().map(to_f32).collect()),
        other => other,
    }
}

/// A fixture case's command line.
pub fn argv_of(case: &Value) -> Vec<&str> {
    strings(&case["argv"])
}

/// A fixture's JSON list of strings.
pub fn strings(list: &Value) -> Vec<&str> {
    (list.as_array().unwrap().iter())
        .map(|w| w.as_str().unwrap())
        .collect()
}

/// Every long spelling (`--name`, long names then aliases) of `sub`'s options, in the order they
/// are defined.
pub fn long_options(sub: &clap::Command) -> Vec<String> {
    sub.get_arguments()
        .flat_map(|a| {
            let aliases = a.get_all_aliases().unwrap_or_default();
            a.get_long()
                .into_iter()
                .chain(aliases)
                .map(|n| format!("--{n}"))
        })
        .collect()
}
