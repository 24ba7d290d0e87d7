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
    /// The default `(.*)`: matches any text, group 1 being all of it. Most
    /// rules use it, and answering without running the regex saves a
    /// captures search per rule and target.
    matches_everything: bool,
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
        Ok(RelabelRegex { source: source.to_string(), regex, matches_everything: source == DEFAULT_REGEX })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.matches_everything || self.regex.is_match(text)
    }

    /// Whether this is the default `(.*)`.
    pub fn matches_everything(&self) -> bool {
        self.matches_everything
    }

    /// The groups of the match of `text`, or `None` when it does not match.
    pub fn captures<'t>(&self, text: &'t str) -> Option<Groups<'t>> {
        if self.matches_everything {
            return Some(Groups::Everything(text));
        }
        self.regex.captures(text).map(Groups::Captures)
    }

    /// Expands `template` against the match of `text`, or `None` when the
    /// regex does not match.
    pub fn expand(&self, template: &str, text: &str) -> Option<String> {
        let mut out = String::new();
        self.captures(text)?.expand(template, &mut out);
        Some(out)
    }
}

/// The groups of one match.
pub enum Groups<'t> {
    /// `(.*)` matched all of the text.
    Everything(&'t str),
    Captures(regex::Captures<'t>),
}

impl<'t> Groups<'t> {
    fn index(&self, i: usize) -> Option<&'t str> {
        match self {
            Groups::Everything(text) => (i <= 1).then_some(*text),
            Groups::Captures(c) => c.get(i).map(|m| m.as_str()),
        }
    }

    fn name(&self, name: &str) -> Option<&'t str> {
        match self {
            Groups::Everything(_) => None,
            Groups::Captures(c) => c.name(name).map(|m| m.as_str()),
        }
    }

    /// Appends `template` with its group references replaced, by Go's
    /// `Regexp.Expand` rules (what Prometheus uses): `$$` is a literal `$`;
    /// `$name` takes the longest run of letters, digits and `_`, `${name}` is
    /// braced; a number names a group by index (no leading zeros); a missing
    /// group expands to nothing; a `$` starting no valid reference stays as is.
    pub fn expand(&self, template: &str, out: &mut String) {
        let mut rest = template;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                out.push('$');
                rest = after;
                continue;
            }
            let Some((name, after)) = reference(rest) else {
                out.push('$');
                continue;
            };
            rest = after;
            let group = match group_number(name) {
                Some(i) => self.index(i),
                None => self.name(name),
            };
            out.push_str(group.unwrap_or(""));
        }
        out.push_str(rest);
    }
}

/// The group name at the start of `text` (just after a `$`) and what follows it.
fn reference(text: &str) -> Option<(&str, &str)> {
    let (body, braced) = match text.strip_prefix('{') {
        Some(body) => (body, true),
        None => (text, false),
    };
    let end = body.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(body.len());
    if end == 0 {
        return None;
    }
    let (name, after) = body.split_at(end);
    if braced {
        return after.strip_prefix('}').map(|after| (name, after));
    }
    Some((name, after))
}

/// A group index: decimal digits without a leading zero, below 10^8 as in Go.
fn group_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|b| b.is_ascii_digit())
        || (name.len() > 1 && name.starts_with('0'))
        || name.len() > 8
    {
        return None;
    }
    name.parse().ok()
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
        assert_eq!(e("a$"), "a$", "a trailing $ is literal");
        assert_eq!(e("${host"), "${host", "an unclosed brace is literal");
        assert_eq!(e("$-x"), "$-x");
        assert_eq!(e("$01"), "", "a leading zero makes a name, which does not exist");
        assert_eq!(e("${0}"), "example.org:9100");
        assert_eq!(r.expand("$1", "nope"), None);
        // The default regex answers without running.
        let all = RelabelRegex::new(DEFAULT_REGEX).unwrap();
        assert!(all.matches_everything());
        assert_eq!(all.expand("<$1|${0}|$2|$name>", "a\nb").unwrap(), "<a\nb|a\nb||>");
        assert!(RelabelRegex::new("(").unwrap_err().contains("invalid regex \"(\""));
    }
}
