//! Matching names: shell-style wildcards and the edit distance that ranks close names.

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

/// The Levenshtein distance between `a` and `b`, in chars.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
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
    }

    #[test]
    fn edit_distance_counts_single_char_edits() {
        assert_eq!(edit_distance("resnet5O", "resnet50"), 1);
        assert_eq!(edit_distance("resnet", "resnet50d"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
