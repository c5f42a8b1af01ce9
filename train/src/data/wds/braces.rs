//! Shard-name patterns as webdataset's `expand_urls` reads them: `a::b` joins lists, and each
//! part is brace-expanded as the `braceexpand` package does (`{000..099}` zero-padded ranges,
//! `{1..9..2}` steps, `{a..e}` letters, `{x,y}` alternatives, nesting). Backslash escapes are
//! refused rather than read differently.

/// The names `pattern` expands to, in webdataset's order; `Err` says why the pattern is malformed.
pub fn expand_urls(pattern: &str) -> Result<Vec<String>, String> {
    if pattern.contains('\\') {
        return Err(format!("{pattern:?}: backslash escapes are not supported"));
    }
    let mut out = Vec::new();
    for part in pattern.split("::") {
        out.extend(expand(part)?);
    }
    Ok(out)
}

/// `parse_pattern`: literals and brace groups, their product.
fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let unbalanced = || format!("unbalanced braces: {pattern:?}");
    let mut items: Vec<Vec<String>> = Vec::new();
    let (mut start, mut depth) = (0usize, 0usize);
    for (pos, c) in pattern.char_indices() {
        match c {
            '{' => {
                if depth == 0 && pos > start {
                    items.push(vec![pattern[start..pos].to_string()]);
                    start = pos;
                }
                depth += 1;
            }
            '}' => {
                depth = depth.checked_sub(1).ok_or_else(unbalanced)?;
                if depth == 0 {
                    let expr = &pattern[start + 1..pos];
                    match expression(expr)? {
                        Some(alts) => items.push(alts),
                        None => {
                            items.push(vec!["{".into()]);
                            items.push(expand(expr)?);
                            items.push(vec!["}".into()]);
                        }
                    }
                    start = pos + 1;
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(unbalanced());
    }
    if start < pattern.len() {
        items.push(vec![pattern[start..].to_string()]);
    }
    Ok(items.iter().fold(vec![String::new()], |acc, alts| {
        acc.iter()
            .flat_map(|a| alts.iter().map(move |b| format!("{a}{b}")))
            .collect()
    }))
}

/// A brace group's alternatives: an integer or letter range, or a comma sequence; `None` for
/// neither (the group is then kept literally, braces and all).
fn expression(expr: &str) -> Result<Option<Vec<String>>, String> {
    let parts: Vec<&str> = expr.split("..").collect();
    if (2..=3).contains(&parts.len()) {
        let step = match parts.get(2) {
            Some(s) => match s.parse::<i64>() {
                Ok(v) => Some(v),
                Err(_) => return sequence(expr),
            },
            None => None,
        };
        if let (Ok(a), Ok(b)) = (parts[0].parse::<i64>(), parts[1].parse::<i64>()) {
            if is_int(parts[0]) && is_int(parts[1]) {
                return Ok(Some(int_range(parts[0], parts[1], a, b, step)));
            }
        }
        let letter = |s: &str| {
            let mut cs = s.chars();
            cs.next()
                .filter(|c| c.is_ascii_alphabetic() && cs.next().is_none())
        };
        if let (Some(a), Some(b)) = (letter(parts[0]), letter(parts[1])) {
            return Ok(Some(char_range(a, b, step)));
        }
    }
    sequence(expr)
}

/// `-?[0-9]+`.
fn is_int(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `make_int_range`: padded to the wider end when either end has a leading zero.
fn int_range(sa: &str, sb: &str, a: i64, b: i64, step: Option<i64>) -> Vec<String> {
    let padded = [sa, sb]
        .iter()
        .any(|s| *s != "0" && *s != "-0" && (s.starts_with('0') || s.starts_with("-0")));
    let width = if padded { sa.len().max(sb.len()) } else { 0 };
    let step = step.filter(|&s| s != 0).map_or(1, i64::abs);
    let values: Vec<i64> = if a < b {
        (a..=b).step_by(step as usize).collect()
    } else {
        (b..=a).rev().step_by(step as usize).collect()
    };
    values
        .into_iter()
        .map(|v| match v < 0 {
            true => format!("-{:0>w$}", -v, w = width.saturating_sub(1)),
            false => format!("{v:0>width$}"),
        })
        .collect()
}

/// `make_char_range`, for letters of one case.
fn char_range(a: char, b: char, step: Option<i64>) -> Vec<String> {
    let step = step.filter(|&s| s != 0).map_or(1, i64::abs) as usize;
    let (a, b) = (a as u8, b as u8);
    let values: Vec<u8> = if a < b {
        (a..=b).step_by(step).collect()
    } else {
        (b..=a).rev().step_by(step).collect()
    };
    values
        .into_iter()
        .map(|c| (c as char).to_string())
        .collect()
}

/// `parse_sequence`: top-level comma alternatives, each expanded; `None` without a comma.
fn sequence(seq: &str) -> Result<Option<Vec<String>>, String> {
    let (mut parts, mut start, mut depth) = (Vec::new(), 0usize, 0i64);
    for (pos, c) in seq.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&seq[start..pos]);
                start = pos + 1;
            }
            _ => {}
        }
    }
    if depth != 0 || parts.is_empty() {
        return Ok(None);
    }
    parts.push(&seq[start..]);
    let mut out = Vec::new();
    for p in parts {
        out.extend(expand(p)?);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::expand_urls;

    fn x(p: &str) -> Vec<String> {
        expand_urls(p).unwrap()
    }

    /// The cases of braceexpand's docstring, and webdataset's `::` lists.
    #[test]
    fn braceexpand_examples() {
        assert_eq!(x("item{1..3}"), ["item1", "item2", "item3"]);
        assert_eq!(x("{a..c}"), ["a", "b", "c"]);
        assert_eq!(
            x("index.html{,.backup}"),
            ["index.html", "index.html.backup"]
        );
        assert_eq!(
            x("python{2.{5..7},3.{2,3}}"),
            [
                "python2.5",
                "python2.6",
                "python2.7",
                "python3.2",
                "python3.3"
            ]
        );
        assert_eq!(x("{07..10}"), ["07", "08", "09", "10"]);
        assert_eq!(x("{a..g..2}"), ["a", "c", "e", "g"]);
        assert_eq!(x("{4..1}"), ["4", "3", "2", "1"]);
        assert_eq!(x("{2..-1}"), ["2", "1", "0", "-1"]);
        assert_eq!(
            x("s-{000..002}.tar::t.tar"),
            ["s-000.tar", "s-001.tar", "s-002.tar", "t.tar"]
        );
        assert_eq!(x("a{b}c"), ["a{b}c"]);
        assert_eq!(x("{-05..3}")[..2], ["-05", "-04"]);
        assert_eq!(x("{-05..3}")[5..7], ["000", "001"]);
        assert_eq!(x("{10..1..3}"), ["10", "7", "4", "1"]);
        assert_eq!(x("x{,a}{1..2}"), ["x1", "x2", "xa1", "xa2"]);
        assert!(expand_urls("{1{2,3}").is_err());
    }
}
