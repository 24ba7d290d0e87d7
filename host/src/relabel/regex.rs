//! Prometheus relabel regexes: Go RE2 syntax, fully anchored, `.` matching
//! newlines (`^(?s:<regex>)$`, as Prometheus 3 compiles them).
//!
//! Rust's `regex` crate speaks nearly the same dialect. The difference that
//! matters is that Go's Perl classes (`\d`, `\w`, `\s`, `\b`) are ASCII while
//! Rust's are Unicode, so those are rewritten to their ASCII meaning.

/// A compiled relabel regex, remembering its source for printing and errors.
#[derive(Clone, Debug)]
pub struct RelabelRegex {
    source: String,
    regex: regex::Regex,
}

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// The default, `(.*)`.
pub const DEFAULT_REGEX: &str = "(.*)";

impl RelabelRegex {
    pub fn new(source: &str) -> Result<RelabelRegex, String> {
        let anchored = format!("^(?s:{})$", go_to_rust(source));
        let regex = regex::Regex::new(&anchored).map_err(|e| format!("invalid regex {source:?}: {e}"))?;
        Ok(RelabelRegex { source: source.to_string(), regex })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// Expands `template` (`$1`, `${1}`, `$name`, `$$`) against the match of
    /// `text`, or `None` when the regex does not match.
    pub fn expand(&self, template: &str, text: &str) -> Option<String> {
        let captures = self.regex.captures(text)?;
        let mut out = String::new();
        captures.expand(template, &mut out);
        Some(out)
    }
}

/// Rewrites Go-only meanings into equivalent Rust syntax.
fn go_to_rust(source: &str) -> String {
    let mut out = String::with_capacity(source.len() + 16);
    let mut chars = source.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let replacement = match (next, in_class) {
                    ('d', false) => Some("[0-9]"),
                    ('D', false) => Some("[^0-9]"),
                    ('w', false) => Some("[0-9A-Za-z_]"),
                    ('W', false) => Some("[^0-9A-Za-z_]"),
                    ('s', false) => Some("[\\t\\n\\f\\r ]"),
                    ('S', false) => Some("[^\\t\\n\\f\\r ]"),
                    ('b', false) => Some("(?-u:\\b)"),
                    ('B', false) => Some("(?-u:\\B)"),
                    ('d', true) => Some("0-9"),
                    ('w', true) => Some("0-9A-Za-z_"),
                    ('s', true) => Some("\\t\\n\\f\\r "),
                    _ => None,
                };
                match replacement {
                    Some(r) => out.push_str(r),
                    None => {
                        out.push('\\');
                        out.push(next);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // A leading `^` and a leading `]` belong to the class.
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().unwrap());
                }
                if chars.peek() == Some(&']') {
                    out.push_str("\\]");
                    chars.next();
                }
            }
            '[' if in_class && chars.peek() == Some(&':') => {
                // A POSIX class such as [:alpha:] inside a bracket expression.
                out.push('[');
                for p in chars.by_ref() {
                    out.push(p);
                    if p == ']' {
                        break;
                    }
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchored_and_dot_matches_newline() {
        let r = RelabelRegex::new("a.c").unwrap();
        assert!(r.is_match("a\nc"));
        assert!(!r.is_match("xabc"));
        assert!(!r.is_match("abcx"));
        assert!(RelabelRegex::new("a|b").unwrap().is_match("b"), "alternation stays inside the anchors");
    }

    #[test]
    fn perl_classes_are_ascii_like_go() {
        let digits = RelabelRegex::new(r"\d+").unwrap();
        assert!(digits.is_match("123"));
        assert!(!digits.is_match("١٢٣"), "Arabic-Indic digits are not \\d in Go");
        assert!(!RelabelRegex::new(r"\w+").unwrap().is_match("héllo"));
        assert!(RelabelRegex::new(r"[\w.-]+").unwrap().is_match("a.b-c_1"));
        assert!(RelabelRegex::new(r"[^\d]+").unwrap().is_match("abc"));
        assert!(RelabelRegex::new(r"[]a]+").unwrap().is_match("]a"));
        assert!(RelabelRegex::new(r"[[:alpha:]]+").unwrap().is_match("abc"));
    }

    #[test]
    fn expansion_follows_go_template_rules() {
        let r = RelabelRegex::new("(?P<host>[^:]+):(\\d+)").unwrap();
        let e = |t: &str| r.expand(t, "example.org:9100").unwrap();
        assert_eq!(e("$1"), "example.org");
        assert_eq!(e("${2}x"), "9100x");
        assert_eq!(e("$2x"), "", "$2x names the group `2x`, which does not exist");
        assert_eq!(e("$host"), "example.org");
        assert_eq!(e("$$1"), "$1");
        assert_eq!(r.expand("$1", "nope"), None);
        assert!(RelabelRegex::new("(").unwrap_err().contains("invalid regex \"(\""));
    }
}
