//! "Did you mean" suggestions for unknown names (keys, taps, metrics, architectures).

/// The closest candidate to `name` as `", did you mean `x`?"`, or an empty string when none is
/// close. Case, `_` and `-` are ignored first; otherwise the edit distance must be small for
/// the candidate's length.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let bare = |s: &str| s.to_ascii_lowercase().replace(['_', '-'], "");
    let candidates: Vec<&str> = candidates.into_iter().collect();
    if let Some(c) = candidates.iter().find(|c| bare(c) == bare(name)) {
        return format!(", did you mean `{c}`?");
    }
    let lower = name.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (levenshtein(&c.to_ascii_lowercase(), &lower), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!(", did you mean `{c}`?"))
        .unwrap_or_default()
}

/// The Levenshtein edit distance between two strings.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(
            did_you_mean("max_epocs", ["initial_lr", "max_epochs"]),
            ", did you mean `max_epochs`?"
        );
        assert_eq!(
            did_you_mean("resnet_8", ["resnet18", "resnet8"]),
            ", did you mean `resnet8`?"
        );
        assert_eq!(did_you_mean("zzz", ["resnet18"]), "");
    }
}
