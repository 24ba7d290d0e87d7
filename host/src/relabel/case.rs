//! The `lowercase` and `uppercase` actions' case mapping, as Go's
//! `strings.ToLower` / `strings.ToUpper` (which Prometheus uses) do it: each
//! char on its own, by its simple mapping (one char to one char).
//!
//! Rust's `str::to_lowercase` / `to_uppercase` use the full mappings instead
//! (`ß` → `SS`, `İ` → `i̇`) and lowercase a word-final `Σ` to `ς`; chars
//! whose full mapping is a single char map the same way in both.

/// `strings.ToLower`.
pub fn go_lowercase(text: &str) -> String {
    text.chars()
        .map(|c| {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) => l,
                // Only U+0130 (`İ`) lowercases to more than one char; its
                // simple mapping is `i`.
                _ if c == '\u{130}' => 'i',
                _ => c,
            }
        })
        .collect()
}

/// `strings.ToUpper`.
pub fn go_uppercase(text: &str) -> String {
    text.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                // A full mapping to several chars. The simple mapping keeps
                // the char (`ß`, ligatures), except for Greek letters with
                // ypogegrammeni, which map to their titlecase letter.
                _ => {
                    let titlecase = match c {
                        '\u{1F80}'..='\u{1F87}' | '\u{1F90}'..='\u{1F97}' | '\u{1FA0}'..='\u{1FA7}' => 8,
                        '\u{1FB3}' | '\u{1FC3}' | '\u{1FF3}' => 9,
                        _ => 0,
                    };
                    char::from_u32(c as u32 + titlecase).expect("a Greek letter")
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expectations from Go's strings.ToLower / strings.ToUpper.
    #[test]
    fn one_char_for_one_char_like_go() {
        assert_eq!(go_lowercase("İSTANBUL"), "istanbul");
        assert_eq!(go_lowercase("ΟΔΟΣ"), "οδοσ", "no final sigma");
        assert_eq!(go_lowercase("ǅ Prod"), "ǆ prod");
        assert_eq!(go_uppercase("straße"), "STRAßE");
        assert_eq!(go_uppercase("ﬀŉ"), "ﬀŉ");
        assert_eq!(go_uppercase("ᾀᾳῃῳ"), "ᾈᾼῌῼ");
        assert_eq!(go_uppercase("ǆ prod"), "Ǆ PROD");
        assert_eq!(go_uppercase("héllo"), "HÉLLO");
    }
}
